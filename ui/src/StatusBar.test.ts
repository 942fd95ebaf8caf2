import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import StatusBar from "./StatusBar.svelte";
import { FakeApi, refusal } from "./test/fakeApi";

describe("StatusBar", () => {
  it("follows the VM's state and starts it", async () => {
    const fake = new FakeApi({
      vm_state: () => ({ state: "stopped" }),
      engine_target: () => ({ kind: "session" }),
      start_vm: () => null,
    });
    const seen: string[] = [];
    render(StatusBar, { api: fake, onstate: (s) => seen.push(s.state) });
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("stopped"));
    const start = screen.getByRole("button", { name: "Start" }) as HTMLButtonElement;
    expect(start.disabled).toBe(false);
    expect((screen.getByRole("button", { name: "Stop" }) as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(start);
    expect(fake.called("start_vm")).toHaveLength(1);
    fake.emit("vm-state", { state: "error", reason: "qemu: not found" });
    await waitFor(() => expect(screen.getByText("qemu: not found")).toBeTruthy());
    expect(seen).toContain("error");
  });

  it("shows a refused start in the engine's words", async () => {
    const fake = new FakeApi({
      vm_state: () => ({ state: "stopped" }),
      engine_target: () => ({ kind: "session" }),
      start_vm: () => refusal("conflict", "the VM is already starting or stopping"),
    });
    render(StatusBar, { api: fake, onstate: () => {} });
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("stopped"));
    await fireEvent.click(screen.getByRole("button", { name: "Start" }));
    expect((await screen.findByRole("alert")).textContent).toBe("conflict: the VM is already starting or stopping");
  });

  it("offers no Start or Stop for an engine named by BERTH_HOST", async () => {
    const fake = new FakeApi({
      vm_state: () => ({ state: "stopped" }),
      engine_target: () => ({ kind: "host", address: "unix:/run/b.sock" }),
    });
    render(StatusBar, { api: fake, onstate: () => {} });
    expect(await screen.findByText("engine at unix:/run/b.sock")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Start" })).toBeNull();
  });
});
