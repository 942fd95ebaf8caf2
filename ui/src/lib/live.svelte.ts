// A list that reloads when the engine says something it shows changed (no polling).
import type { Api } from "./api";
import { describe } from "./api";

export class LiveList<T> {
  items = $state<T[]>([]);
  error = $state("");
  loaded = $state(false);
  #load: () => Promise<T[]>;
  #pending: Promise<void> | null = null;
  #again = false;

  constructor(load: () => Promise<T[]>) {
    this.#load = load;
  }

  /// Reloads; calls that arrive while one runs are folded into one more reload.
  reload(): Promise<void> {
    if (this.#pending) {
      this.#again = true;
      return this.#pending;
    }
    this.#pending = (async () => {
      do {
        this.#again = false;
        try {
          this.items = await this.#load();
          this.error = "";
        } catch (err) {
          this.error = describe(err);
        }
      } while (this.#again);
      this.loaded = true;
      this.#pending = null;
    })();
    return this.#pending;
  }

  /// Reloads now and on every engine event of these kinds; returns the unsubscribe.
  follow(api: Api, kinds: string[]): () => void {
    void this.reload();
    let stop: (() => void) | null = null;
    let stopped = false;
    void api
      .on("engine-event", (event) => {
        if (event.kind === "engine" || kinds.includes(event.kind)) void this.reload();
      })
      .then((unlisten) => {
        if (stopped) unlisten();
        else stop = unlisten;
      });
    return () => {
      stopped = true;
      stop?.();
    };
  }
}
