import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/svelte";
import Settings from "./Settings.svelte";
import { FakeApi } from "../test/fakeApi";

describe("Settings", () => {
  it("shows the engine the app uses, and the reason when it failed", () => {
    const { unmount } = render(Settings, {
      api: new FakeApi({}),
      vm: { state: "ready", accel: "tcg", engine: { engine_version: "0.1.0", api_version: "1.43", kernel_version: "6.1.0-28", os: "linux", arch: "amd64" } },
    });
    expect(screen.getByText("6.1.0-28")).toBeTruthy();
    unmount();
    render(Settings, { api: new FakeApi({}), vm: { state: "error", reason: "no qemu-system-x86_64" } });
    expect(screen.getByText("no qemu-system-x86_64")).toBeTruthy();
  });
});
