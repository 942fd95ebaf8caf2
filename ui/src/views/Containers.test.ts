import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import Containers from "./Containers.svelte";
import { FakeApi, refusal } from "../test/fakeApi";
import { container } from "../test/rows";

const rows = [
  container({ id: "1".repeat(64), name: "shop-web-1", project: "shop", service: "web", ports: [{ host_ip: "127.0.0.1", host_port: 8080, container_port: 80, protocol: "tcp" }] }),
  container({ id: "2".repeat(64), name: "shop-db-1", project: "shop", service: "db", state: "exited", status: "Exited (0)" }),
  container({ id: "3".repeat(64), name: "lonely", image: "alpine" }),
];

describe("Containers", () => {
  it("groups by compose project, shows ports, and searches", async () => {
    render(Containers, { api: new FakeApi({ list_containers: () => rows }) });
    const shop = await screen.findByRole("table", { name: "Compose project shop" });
    expect(within(shop).getByText("shop-web-1")).toBeTruthy();
    expect(within(shop).getByText("127.0.0.1:8080→80/tcp")).toBeTruthy();
    expect(within(screen.getByRole("table", { name: "Containers" })).getByText("lonely")).toBeTruthy();
    await fireEvent.input(screen.getByRole("searchbox", { name: "Search containers" }), { target: { value: "alpine" } });
    expect(screen.queryByText("shop-web-1")).toBeNull();
    expect(screen.getByText("lonely")).toBeTruthy();
  });

  it("offers the actions that fit the state and reloads on the engine's events", async () => {
    let list = rows;
    const fake = new FakeApi({ list_containers: () => list, container_action: () => null });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Stop shop-web-1" }));
    expect(fake.called("container_action")[0].args).toEqual({ id: "1".repeat(64), action: "stop" });
    expect(screen.getByRole("button", { name: "Start shop-db-1" })).toBeTruthy();
    list = [container({ id: "1".repeat(64), name: "shop-web-1", state: "exited" })];
    fake.emit("engine-event", { kind: "container", action: "die", id: "1" });
    await waitFor(() => expect(screen.getByRole("button", { name: "Start shop-web-1" })).toBeTruthy());
    expect(screen.queryByText("lonely")).toBeNull();
  });

  it("removes many at once and shows a refusal as the engine words it", async () => {
    const fake = new FakeApi({ list_containers: () => rows, remove_containers: () => refusal("conflict", "container is busy") });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("checkbox", { name: "Select lonely" }));
    await fireEvent.click(screen.getByRole("checkbox", { name: "Select shop-db-1" }));
    await fireEvent.click(screen.getByRole("button", { name: "Remove selected (2)" }));
    expect(fake.called("remove_containers")[0].args).toEqual({ ids: ["3".repeat(64), "2".repeat(64)], force: true });
    expect((await screen.findByRole("alert")).textContent).toBe("conflict: container is busy");
  });

  it("streams a container's log, searchable, and renders only the lines in view", async () => {
    const fake = new FakeApi({ list_containers: () => rows, follow_logs: () => 9, close_stream: () => null });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Logs of lonely" }));
    const panel = await screen.findByRole("region", { name: "Logs of lonely" });
    await waitFor(() => expect(fake.called("follow_logs")).toHaveLength(1));
    expect(fake.called("follow_logs")[0].args).toEqual({ id: "3".repeat(64), tail: 10000 });
    fake.push("follow_logs", { stream: "stdout", time: "2026-12-04T10:00:00Z", text: "listening on 80" });
    fake.push("follow_logs", { stream: "stderr", time: "2026-12-04T10:00:01Z", text: "warning: slow" });
    for (let i = 0; i < 100_000; i++) fake.push("follow_logs", { stream: "stdout", time: "", text: `line ${i}` });
    await waitFor(() => expect(within(panel).getByText("100002 lines")).toBeTruthy());
    // 100k lines, a few dozen in the page.
    expect(panel.querySelectorAll(".line").length).toBeLessThan(100);
    await fireEvent.input(within(panel).getByRole("searchbox"), { target: { value: "slow" } });
    await waitFor(() => expect(within(panel).getByText("1 lines matching “slow”")).toBeTruthy());
    expect(within(panel).getByText("warning: slow")).toBeTruthy();
  });

  it("opens a published port in the browser, through the app", async () => {
    const fake = new FakeApi({ list_containers: () => rows, open_url: () => null });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Open http://127.0.0.1:8080/ (shop-web-1)" }));
    expect(fake.called("open_url")[0].args).toEqual({ url: "http://127.0.0.1:8080/" });
  });

  it("inspects a container: env, mounts, ports, networks and labels", async () => {
    const fake = new FakeApi({
      list_containers: () => rows,
      open_url: () => null,
      inspect_container: ({ id }) => ({
        id, name: "lonely", image: "alpine", command: "sh -c sleep", created: "2026-12-04T10:00:00Z", restart: "always",
        env: ["PATH=/bin", "MODE=dev"],
        mounts: [{ kind: "volume", source: "data", target: "/data", read_only: true }],
        ports: [{ host_ip: "0.0.0.0", host_port: 9000, container_port: 90, protocol: "tcp" }, { host_ip: "", host_port: 53, container_port: 53, protocol: "udp" }],
        networks: [{ name: "backend", ipv4: "10.9.0.2/24", mac: "02:00:00:00:00:02" }],
        labels: [["tier", "front"]],
      }),
    });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Inspect lonely" }));
    const panel = await screen.findByRole("region", { name: "Inspect lonely" });
    expect(fake.called("inspect_container")[0].args).toEqual({ id: "3".repeat(64) });
    expect(await within(panel).findByText("MODE=dev")).toBeTruthy();
    expect(within(panel).getByText("always")).toBeTruthy();
    const mount = within(within(panel).getByRole("table", { name: "Mounts of lonely" })).getByText("/data").closest("tr");
    expect(mount?.textContent).toContain("ro");
    expect(within(panel).getByText("10.9.0.2/24")).toBeTruthy();
    expect(within(panel).getByText("tier=front")).toBeTruthy();
    // A TCP port bound to every address opens as localhost; UDP has nothing to open.
    await fireEvent.click(within(panel).getByRole("button", { name: "Open http://localhost:9000/" }));
    expect(fake.called("open_url")[0].args).toEqual({ url: "http://localhost:9000/" });
    expect(within(panel).getAllByRole("button", { name: /^Open / })).toHaveLength(1);
  });

  it("shows an inspect the engine refuses in its words", async () => {
    const fake = new FakeApi({ list_containers: () => rows, inspect_container: () => refusal("not_found", "inspect: no such container: lonely") });
    render(Containers, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Inspect lonely" }));
    expect((await screen.findByRole("alert")).textContent).toBe("not_found: inspect: no such container: lonely");
  });
});
