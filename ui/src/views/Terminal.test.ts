import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import { FakeApi } from "../test/fakeApi";
import { container } from "../test/rows";

// xterm.js needs a real layout engine; this test checks the component's wiring, with a
// stand-in terminal that records what it is given. (The real xterm runs in the
// end-to-end test, in the app's window.)
const written: string[] = [];
const handlers: { data?: (d: string) => void; resize?: (s: { cols: number; rows: number }) => void } = {};
vi.mock("@xterm/xterm", () => ({
  Terminal: class {
    cols = 80;
    rows = 24;
    loadAddon() {}
    open() {}
    focus() {}
    dispose() {}
    write(data: string) {
      written.push(data);
    }
    getSelection() {
      return "";
    }
    paste() {}
    attachCustomKeyEventHandler() {}
    onData(f: (d: string) => void) {
      handlers.data = f;
    }
    onResize(f: (s: { cols: number; rows: number }) => void) {
      handlers.resize = f;
    }
  },
}));
vi.mock("@xterm/addon-fit", () => ({ FitAddon: class { fit() {} } }));

import Terminal from "./Terminal.svelte";

describe("Terminal", () => {
  it("opens a shell at the terminal's size, sends keys and sizes, shows output and the exit, closes the stream", async () => {
    // Calls run concurrently in the app: the terminal must never have two keys in flight.
    let inflight = 0;
    let most = 0;
    const slowInput = () => {
      inflight++;
      most = Math.max(most, inflight);
      return new Promise<null>((resolve) => setTimeout(() => (inflight--, resolve(null)), 2));
    };
    const fake = new FakeApi({ open_terminal: () => 7, terminal_input: slowInput, terminal_resize: () => null, close_stream: () => null });
    const { unmount } = render(Terminal, { api: fake, container: container({ id: "abc", name: "web" }), onclose: () => {} });
    await waitFor(() => expect(fake.called("open_terminal")).toHaveLength(1));
    expect(fake.called("open_terminal")[0].args).toEqual({ id: "abc", cols: 80, rows: 24 });
    fake.push("open_terminal", { kind: "output", data: "/ # " });
    expect(written).toEqual(["/ # "]);
    await waitFor(() => expect(handlers.data).toBeDefined());
    await waitFor(() => expect(fake.called("open_terminal")).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 0));
    // Typed fast: sent in order, one call at a time.
    for (const key of ["e", "c", "h", "o", " ", "4", "2", "\r"]) handlers.data?.(key);
    await waitFor(() => expect(fake.called("terminal_input").map((c) => (c.args as { data: string }).data).join("")).toBe("echo 42\r"));
    expect(fake.called("terminal_input").every((c) => (c.args as { terminal: number }).terminal === 7)).toBe(true);
    expect(most).toBe(1);
    handlers.resize?.({ cols: 120, rows: 30 });
    expect(fake.called("terminal_resize")[0].args).toEqual({ terminal: 7, cols: 120, rows: 30 });
    fake.push("open_terminal", { kind: "exit", code: 0 });
    expect((await screen.findByRole("status")).textContent).toBe("The shell exited (0).");
    unmount();
    expect(fake.called("close_stream")[0].args).toEqual({ stream: 7 });
  });

  it("shows why the terminal failed", async () => {
    const fake = new FakeApi({ open_terminal: () => 3 });
    render(Terminal, { api: fake, container: container({}), onclose: () => {} });
    await waitFor(() => expect(fake.called("open_terminal")).toHaveLength(1));
    fake.push("open_terminal", { kind: "failed", error: { code: "conflict", message: "exec: container web is not running" } });
    expect((await screen.findByRole("alert")).textContent).toBe("conflict: exec: container web is not running");
  });
});
