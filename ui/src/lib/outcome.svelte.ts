// What a view's last action came to: the engine's refusal in its words, a notice, and
// what is under way. Every view shows these the same way (lib/Said.svelte).
import { describe } from "./api";

export class Outcome {
  error = $state("");
  notice = $state("");
  working = $state("");
  #after: () => void;

  /// `after` runs once each action ends, however it ends (a view reloads its list).
  constructor(after: () => void = () => {}) {
    this.#after = after;
  }

  /// Runs `work`, shown as `label` while it runs. A string it returns becomes the
  /// notice; a failure becomes the error. Returns what `work` returned, or undefined
  /// when it failed.
  async run<T>(work: () => Promise<T>, label = ""): Promise<T | undefined> {
    this.error = "";
    this.notice = "";
    this.working = label;
    try {
      const said = await work();
      if (typeof said === "string") this.notice = said;
      return said;
    } catch (err) {
      this.error = describe(err);
      return undefined;
    } finally {
      this.working = "";
      this.#after();
    }
  }

  /// Shows a failure that happened outside `run`.
  fail(err: unknown) {
    this.error = describe(err);
  }
}
