import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import Compose from "./Compose.svelte";
import { FakeApi, refusal } from "../test/fakeApi";
import type { ComposeProjectRow } from "../bindings/ComposeProjectRow";

const shop: ComposeProjectRow = {
  name: "shop",
  files: ["/src/shop/compose.yaml"],
  added: true,
  error: null,
  services: [
    { name: "db", state: "exited", status: "Exited (0)", container: "shop-db-1" },
    { name: "web", state: "not created", status: "", container: null },
  ],
};
const elsewhere: ComposeProjectRow = { name: "other", files: [], added: false, error: null, services: [{ name: "api", state: "running", status: "Up", container: "other-api-1" }] };

describe("Compose", () => {
  it("lists added projects with Up one click away, and ones started elsewhere without it", async () => {
    const fake = new FakeApi({ list_compose_projects: () => [shop, elsewhere], compose_up: () => ["Container shop-web-1  Started"] });
    render(Compose, { api: fake });
    const card = await screen.findByRole("article", { name: "Project shop" });
    expect(within(card).getByText("/src/shop/compose.yaml")).toBeTruthy();
    expect(within(card).getByText("not created")).toBeTruthy();
    const other = screen.getByRole("article", { name: "Project other" });
    expect(within(other).queryByRole("button", { name: "Up other" })).toBeNull();
    await fireEvent.click(within(card).getByRole("button", { name: "Up shop" }));
    expect(fake.called("compose_up")[0].args).toEqual({ name: "shop" });
    await waitFor(() => expect(screen.getByLabelText("What the last action did").textContent).toBe("Container shop-web-1  Started"));
    await fireEvent.click(within(card).getByRole("button", { name: "Start service db of shop" }));
    expect(fake.called("container_action")).toHaveLength(1);
  });

  it("adds a project by path and shows a file that does not parse in compose's words", async () => {
    const fake = new FakeApi({
      list_compose_projects: () => [],
      add_compose_project: ({ path }) => (path.endsWith("bad.yaml") ? refusal("invalid_argument", "bad.yaml: line 3: did not find expected node content") : shop),
    });
    render(Compose, { api: fake });
    const field = await screen.findByRole("textbox", { name: "Compose file or folder" });
    await fireEvent.input(field, { target: { value: "/src/bad.yaml" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add project" }));
    expect((await screen.findByRole("alert")).textContent).toBe("invalid_argument: bad.yaml: line 3: did not find expected node content");
    await fireEvent.input(field, { target: { value: "/src/shop" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add project" }));
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
    expect(fake.called("add_compose_project").map((c) => c.args)).toEqual([{ path: "/src/bad.yaml" }, { path: "/src/shop" }]);
  });

  it("refuses Up while the project's files do not load", async () => {
    render(Compose, { api: new FakeApi({ list_compose_projects: () => [{ ...shop, error: "compose.yaml: services.web.image: invalid type" }] }) });
    const card = await screen.findByRole("article", { name: "Project shop" });
    expect(within(card).getByText("compose.yaml: services.web.image: invalid type")).toBeTruthy();
    expect((within(card).getByRole("button", { name: "Up shop" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("adds what the system's chooser picks, and nothing when it is dismissed", async () => {
    let picked: string | null = null;
    const fake = new FakeApi({ list_compose_projects: () => [], choose_path: () => picked, add_compose_project: () => shop });
    render(Compose, { api: fake });
    await fireEvent.click(screen.getByRole("button", { name: "Choose folder…" }));
    await waitFor(() => expect(fake.called("choose_path")).toHaveLength(1));
    expect(fake.called("choose_path")[0].args).toEqual({ folder: true });
    expect(fake.called("add_compose_project")).toHaveLength(0);
    picked = "/src/shop/compose.yaml";
    await fireEvent.click(screen.getByRole("button", { name: "Choose file…" }));
    await waitFor(() => expect(fake.called("add_compose_project")).toHaveLength(1));
    expect(fake.called("choose_path")[1].args).toEqual({ folder: false });
    expect(fake.called("add_compose_project")[0].args).toEqual({ path: "/src/shop/compose.yaml" });
  });

  it("builds a project's images and shows the build's lines", async () => {
    const fake = new FakeApi({ list_compose_projects: () => [shop], compose_build: () => ["web  Step 1/2 : FROM busybox", "Image shop-web  Built"] });
    render(Compose, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Build shop" }));
    expect(fake.called("compose_build")[0].args).toEqual({ name: "shop" });
    await waitFor(() => expect(screen.getByLabelText("What the last action did").textContent).toContain("Image shop-web  Built"));
  });
});
