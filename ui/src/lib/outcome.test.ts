import { describe, expect, it } from "vitest";
import { Outcome } from "./outcome.svelte";

describe("Outcome", () => {
  it("shows what is under way, then a returned string as the notice, and runs after", async () => {
    let after = 0;
    const outcome = new Outcome(() => after++);
    let release: (s: string) => void = () => {};
    const running = outcome.run(() => new Promise<string>((r) => (release = r)), "pulling");
    expect(outcome.working).toBe("pulling");
    release("Pulled busybox");
    expect(await running).toBe("Pulled busybox");
    expect([outcome.working, outcome.notice, outcome.error, after]).toEqual(["", "Pulled busybox", "", 1]);
  });

  it("shows a failure in the engine's words, clears the last notice, and still runs after", async () => {
    let after = 0;
    const outcome = new Outcome(() => after++);
    await outcome.run(async () => "Saved");
    const result = await outcome.run(async () => {
      throw { code: "conflict", message: "image is in use" };
    });
    expect(result).toBeUndefined();
    expect([outcome.notice, outcome.error, after]).toEqual(["", "conflict: image is in use", 2]);
  });
});
