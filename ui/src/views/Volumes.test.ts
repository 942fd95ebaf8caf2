import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import Volumes from "./Volumes.svelte";
import { FakeApi, refusal } from "../test/fakeApi";
import type { VolumeRow } from "../bindings/VolumeRow";

const volume = (over: Partial<VolumeRow>): VolumeRow => ({ name: "data", driver: "local", created: "2026-12-04T10:00:00Z", size: 4096, anonymous: false, used_by: [], ...over });

describe("Volumes", () => {
  it("lists size and users, creates and reloads on the engine's volume events", async () => {
    let list = [volume({ used_by: ["db"] })];
    const fake = new FakeApi({ list_volumes: () => list, create_volume: ({ name }) => volume({ name }) });
    render(Volumes, { api: fake });
    expect(await screen.findByText("db")).toBeTruthy();
    expect(screen.getByText("4.1 KB")).toBeTruthy();
    await fireEvent.input(screen.getByRole("textbox", { name: "New volume's name" }), { target: { value: "cache" } });
    await fireEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(fake.called("create_volume")[0].args).toEqual({ name: "cache" });
    list = [...list, volume({ name: "cache" })];
    fake.emit("engine-event", { kind: "volume", action: "create", id: "cache" });
    await waitFor(() => expect(screen.getByRole("button", { name: "Remove cache" })).toBeTruthy());
  });

  it("shows why a volume in use is not removed", async () => {
    const fake = new FakeApi({ list_volumes: () => [volume({ used_by: ["db"] })], remove_volume: () => refusal("conflict", "remove volume: volume is in use by db") });
    render(Volumes, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Remove data" }));
    expect(fake.called("remove_volume")).toHaveLength(0);
    await fireEvent.click(screen.getByRole("button", { name: "Delete data and its data" }));
    expect((await screen.findByRole("alert")).textContent).toBe("conflict: remove volume: volume is in use by db");
    expect(screen.getByText("data")).toBeTruthy();
  });

  it("browses folders and previews a text file", async () => {
    const fake = new FakeApi({
      list_volumes: () => [volume({})],
      volume_files: ({ dir }) => (dir === "" ? [{ name: "conf", kind: "dir", size: 0 }, { name: "notes.txt", kind: "file", size: 12 }] : [{ name: "app.ini", kind: "file", size: 5 }]),
      volume_preview: ({ file }) => (file === "conf/app.ini" ? "a = 1" : "hello notes"),
    });
    render(Volumes, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Browse data" }));
    await fireEvent.click(await screen.findByRole("button", { name: "conf/" }));
    await fireEvent.click(await screen.findByRole("button", { name: "app.ini" }));
    await waitFor(() => expect(document.getElementById("volume-preview")?.textContent).toBe("a = 1"));
    expect(fake.called("volume_files").map((c) => c.args)).toEqual([{ name: "data", dir: "" }, { name: "data", dir: "conf" }]);
  });

  it("exports to a path, clones and prunes, saying what happened", async () => {
    const fake = new FakeApi({
      list_volumes: () => [volume({})],
      export_volume: () => 10240,
      clone_volume: () => null,
      prune_volumes: () => ({ removed: ["old"], reclaimed_bytes: 2048 }),
    });
    render(Volumes, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Export data" }));
    await fireEvent.input(screen.getByLabelText("Save data as"), { target: { value: "/tmp/data.tar" } });
    await fireEvent.click(screen.getByRole("button", { name: "Export" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Exported data: 10 KB written to /tmp/data.tar"));
    expect(fake.called("export_volume")[0].args).toEqual({ name: "data", path: "/tmp/data.tar" });
    await fireEvent.click(screen.getByRole("button", { name: "Clone data" }));
    await fireEvent.click(screen.getByRole("button", { name: "Clone" }));
    expect(fake.called("clone_volume")[0].args).toEqual({ source: "data", target: "data-copy" });
    await fireEvent.click(screen.getByRole("button", { name: "Prune unused" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Pruned 1 volume(s), 2.0 KB freed"));
  });
});
