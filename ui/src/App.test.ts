import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import App from "./App.svelte";
import { FakeApi } from "./test/fakeApi";
import { tick } from "svelte";

const ready = {
  state: "ready" as const,
  accel: "tcg",
  engine: { engine_version: "0.1.0", api_version: "1.43", kernel_version: "6.1.0", os: "linux", arch: "amd64" },
};

function api(state: object = ready) {
  return new FakeApi({
    vm_state: () => state as never,
    engine_target: () => ({ kind: "session" }),
    list_containers: () => [],
    list_images: () => [],
    list_volumes: () => [],
    list_networks: () => [],
  });
}

describe("App", () => {
  it("has exactly the six sidebar entries, in order", () => {
    render(App, { api: api() });
    const tabs = screen.getAllByRole("tab").map((t) => t.textContent);
    expect(tabs).toEqual(["Containers", "Images", "Volumes", "Networks", "Compose", "Settings"]);
  });

  it("walks the sidebar with the arrow keys and shows the chosen view", async () => {
    const fake = api();
    render(App, { api: fake });
    await tick();
    const first = screen.getByRole("tab", { name: "Containers" });
    first.focus();
    await fireEvent.keyDown(first, { key: "ArrowDown" });
    const images = screen.getByRole("tab", { name: "Images" });
    expect(images.getAttribute("aria-selected")).toBe("true");
    expect(document.activeElement).toBe(images);
    expect(await screen.findByRole("heading", { name: "Images" })).toBeTruthy();
    await fireEvent.keyDown(images, { key: "ArrowUp" });
    await fireEvent.keyDown(screen.getByRole("tab", { name: "Containers" }), { key: "ArrowUp" });
    expect(screen.getByRole("tab", { name: "Settings" }).getAttribute("aria-selected")).toBe("true");
  });

  it("shows a clear state with Start when the engine is not running, not an empty list", async () => {
    render(App, { api: api({ state: "stopped" }) });
    expect(await screen.findByText("The engine is not running")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Start" })).toBeTruthy();
  });
});
