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
    expect((await screen.findByRole("alert")).textContent).toBe("conflict: remove volume: volume is in use by db");
    expect(screen.getByText("data")).toBeTruthy();
  });
});
