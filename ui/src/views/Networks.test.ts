import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, within } from "@testing-library/svelte";
import Networks from "./Networks.svelte";
import { FakeApi } from "../test/fakeApi";
import type { NetworkRow } from "../bindings/NetworkRow";

const network = (over: Partial<NetworkRow>): NetworkRow => ({ id: "n".repeat(64), name: "bridge", driver: "bridge", subnet: "172.17.0.0/16", gateway: "172.17.0.1", internal: false, builtin: true, containers: [], ...over });

describe("Networks", () => {
  it("never offers to remove a predefined network; creates with subnet and internal", async () => {
    const fake = new FakeApi({
      list_networks: () => [network({}), network({ id: "m".repeat(64), name: "backend", builtin: false, internal: true, containers: ["api", "db"] })],
      create_network: () => null,
      remove_network: () => null,
    });
    render(Networks, { api: fake });
    expect(await screen.findByRole("button", { name: "Disconnect api from backend" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Remove bridge" })).toBeNull();
    await fireEvent.click(screen.getByRole("button", { name: "Remove backend" }));
    expect(fake.called("remove_network")[0].args).toEqual({ name: "backend" });
    await fireEvent.input(screen.getByRole("textbox", { name: "New network's name" }), { target: { value: "front" } });
    await fireEvent.input(screen.getByRole("textbox", { name: "Subnet" }), { target: { value: "10.9.0.0/24" } });
    await fireEvent.click(screen.getByRole("checkbox", { name: "Internal" }));
    await fireEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(fake.called("create_network")[0].args).toEqual({ request: { name: "front", subnet: "10.9.0.0/24", gateway: "", internal: true } });
  });

  it("connects a container by name and disconnects one", async () => {
    const fake = new FakeApi({
      list_networks: () => [network({ id: "m".repeat(64), name: "backend", builtin: false, containers: ["db"] })],
      connect_network: () => null,
      disconnect_network: () => null,
    });
    render(Networks, { api: fake });
    await fireEvent.input(await screen.findByRole("textbox", { name: "Container to connect to backend" }), { target: { value: "web" } });
    await fireEvent.click(screen.getByRole("button", { name: "Connect to backend" }));
    expect(fake.called("connect_network")[0].args).toEqual({ network: "backend", container: "web" });
    await fireEvent.click(screen.getByRole("button", { name: "Disconnect db from backend" }));
    expect(fake.called("disconnect_network")[0].args).toEqual({ network: "backend", container: "db" });
  });

  it("inspects a network: each attached container with its addresses", async () => {
    const fake = new FakeApi({
      list_networks: () => [network({ id: "m".repeat(64), name: "backend", builtin: false, containers: ["db"] })],
      inspect_network: ({ name }) => ({
        id: "m".repeat(64), name, driver: "bridge", subnet: "10.9.0.0/24", gateway: "10.9.0.1", internal: false, created: "2026-12-04T10:00:00Z",
        labels: [["com.docker.compose.project", "shop"]],
        containers: [{ name: "db", ipv4: "10.9.0.2/24", mac: "02:00:00:00:00:02" }],
      }),
    });
    render(Networks, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Inspect backend" }));
    const panel = await screen.findByRole("region", { name: "Inspect backend" });
    expect(fake.called("inspect_network")[0].args).toEqual({ name: "backend" });
    const row = within(within(panel).getByRole("table", { name: "Containers on backend" })).getByText("db").closest("tr");
    expect(row?.textContent).toContain("10.9.0.2/24");
    expect(row?.textContent).toContain("02:00:00:00:00:02");
    expect(within(panel).getByText("com.docker.compose.project=shop")).toBeTruthy();
    // The predefined ones can be inspected too.
    expect(screen.queryByRole("button", { name: "Remove backend" })).toBeTruthy();
  });
});
