import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import Images from "./Images.svelte";
import { FakeApi, refusal } from "../test/fakeApi";
import { image } from "../test/rows";

describe("Images", () => {
  it("lists size, use and names", async () => {
    render(Images, { api: new FakeApi({ list_images: () => [image({ containers: 2 }), image({ id: "sha256:" + "b".repeat(64), tags: [], size: 5_000 })] }) });
    expect(await screen.findByText("busybox:latest")).toBeTruthy();
    expect(screen.getByText("1.2 MB")).toBeTruthy();
    expect(screen.getByText("2 containers")).toBeTruthy();
    expect(screen.getByText("<none>")).toBeTruthy();
  });

  it("shows which images a key verified", async () => {
    const key = "sha256:" + "c".repeat(12) + "d".repeat(52);
    render(Images, {
      api: new FakeApi({ list_images: () => [image({ signed_by: [key] }), image({ id: "sha256:" + "b".repeat(64), tags: ["plain:1"] })] }),
    });
    const signed = await screen.findByText("signed (cccccccccccc)");
    expect(signed.getAttribute("title")).toBe(key);
    const plainRow = screen.getByText("plain:1").closest("tr");
    expect(plainRow?.textContent).not.toContain("signed");
  });

  it("pulls with one progress bar per layer", async () => {
    let finish: (id: string | null) => void = () => {};
    const fake = new FakeApi({ list_images: () => [], pull_image: () => new Promise<string | null>((r) => (finish = r)) });
    render(Images, { api: fake });
    await fireEvent.input(screen.getByRole("textbox", { name: "Image to pull" }), { target: { value: "registry.test/app:1" } });
    await fireEvent.click(screen.getByRole("button", { name: "Pull" }));
    fake.emit("pull-progress", { kind: "layer", reference: "registry.test/app:1", digest: "sha256:" + "1".repeat(64), done: 50, total: 100 });
    fake.emit("pull-progress", { kind: "layer", reference: "registry.test/app:1", digest: "sha256:" + "2".repeat(64), done: 10, total: 100 });
    fake.emit("pull-progress", { kind: "layer_done", reference: "registry.test/app:1", digest: "sha256:" + "2".repeat(64), cached: false });
    const bars = await screen.findAllByRole("progressbar");
    expect(bars.map((b) => (b as HTMLProgressElement).value)).toEqual([50, 100]);
    finish("sha256:" + "f".repeat(64));
    await waitFor(() => expect(screen.queryAllByRole("progressbar")).toHaveLength(0));
    expect(screen.getByRole("status").textContent).toBe("Pulled registry.test/app:1 (ffffffffffff)");
    expect(fake.called("pull_image")[0].args).toEqual({ reference: "registry.test/app:1" });
  });

  it("searches and pulls a result, from the registry the search named", async () => {
    const fake = new FakeApi({
      list_images: () => [],
      search_images: ({ term }) =>
        term === "registry.test:5000/redis"
          ? [
              { name: "redis", description: "Redis, the official image", stars: 13087, official: true },
              { name: "bitnami/redis", description: "Bitnami container image for Redis", stars: 339, official: false },
            ]
          : [],
      pull_image: () => "sha256:" + "e".repeat(64),
    });
    render(Images, { api: fake });
    await fireEvent.input(screen.getByRole("textbox", { name: "Search images" }), { target: { value: " registry.test:5000/redis " } });
    await fireEvent.click(screen.getByRole("button", { name: "Search" }));
    const results = await screen.findByRole("region", { name: "Search results for registry.test:5000/redis" });
    expect(fake.called("search_images")[0].args).toEqual({ term: "registry.test:5000/redis", limit: 25 });
    const rows = [...results.querySelectorAll("tbody tr")].map((r) => [...r.querySelectorAll("td")].slice(0, 4).map((c) => c.textContent));
    expect(rows).toEqual([
      ["redis", "Redis, the official image", "13087", "official"],
      ["bitnami/redis", "Bitnami container image for Redis", "339", ""],
    ]);
    await fireEvent.click(screen.getByRole("button", { name: "Pull bitnami/redis" }));
    await waitFor(() => expect(fake.called("pull_image")).toHaveLength(1));
    expect(fake.called("pull_image")[0].args).toEqual({ reference: "registry.test:5000/bitnami/redis" });
    expect((await screen.findByRole("status")).textContent).toBe("Pulled registry.test:5000/bitnami/redis (eeeeeeeeeeee)");
  });

  it("says when a search finds nothing, and shows a refused search in the engine's words", async () => {
    let refuse = false;
    const fake = new FakeApi({
      list_images: () => [],
      search_images: () => (refuse ? refusal("unavailable", "search: cannot reach registry index.docker.io: dns error") : []),
    });
    render(Images, { api: fake });
    await fireEvent.input(screen.getByRole("textbox", { name: "Search images" }), { target: { value: "nothing-like-this" } });
    await fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect(await screen.findByText("Nothing found for “nothing-like-this”.")).toBeTruthy();
    refuse = true;
    await fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect((await screen.findByRole("alert")).textContent).toContain("search: cannot reach registry index.docker.io: dns error");
  });

  it("cancels a pull under way and says so", async () => {
    let finish: (id: string | null) => void = () => {};
    const fake = new FakeApi({
      list_images: () => [],
      pull_image: () => new Promise<string | null>((r) => (finish = r)),
      // The app stops the pull; its call then ends with no image.
      cancel_pull: () => {
        finish(null);
        return true;
      },
    });
    render(Images, { api: fake });
    await fireEvent.input(screen.getByRole("textbox", { name: "Image to pull" }), { target: { value: "registry.test/big:1" } });
    await fireEvent.click(screen.getByRole("button", { name: "Pull" }));
    fake.emit("pull-progress", { kind: "layer", reference: "registry.test/big:1", digest: "sha256:" + "1".repeat(64), done: 5, total: 100 });
    await fireEvent.click(await screen.findByRole("button", { name: "Cancel the pull of registry.test/big:1" }));
    expect(fake.called("cancel_pull")[0].args).toEqual({ reference: "registry.test/big:1" });
    expect((await screen.findByRole("status")).textContent).toBe("Cancelled the pull of registry.test/big:1");
    expect(screen.queryAllByRole("progressbar")).toHaveLength(0);
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("shows a failed pull and a refused removal in the engine's words", async () => {
    const fake = new FakeApi({
      list_images: () => [image({ containers: 1 })],
      pull_image: () => refusal("not_found", "pull: manifest unknown"),
      remove_image: () => refusal("conflict", "remove image: image is being used by running container web"),
    });
    render(Images, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Remove busybox:latest" }));
    expect((await screen.findByRole("alert")).textContent).toContain("conflict: remove image: image is being used");
    await fireEvent.input(screen.getByRole("textbox", { name: "Image to pull" }), { target: { value: "nope/nothing" } });
    await fireEvent.click(screen.getByRole("button", { name: "Pull" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("not_found: pull: manifest unknown"));
  });

  it("runs an image from the Run dialog", async () => {
    const fake = new FakeApi({ list_images: () => [image({})], run_image: () => "abc" });
    render(Images, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Run busybox:latest" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog).toBeTruthy();
    await fireEvent.input(screen.getByLabelText("Name"), { target: { value: "web" } });
    await fireEvent.input(screen.getByLabelText("Ports"), { target: { value: "8080:80, 127.0.0.1:9000:9000" } });
    await fireEvent.input(screen.getByLabelText("Environment"), { target: { value: "A=1\nB=2" } });
    await fireEvent.change(screen.getByLabelText("Restart"), { target: { value: "always" } });
    await fireEvent.click(screen.getByRole("button", { name: "Run" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(fake.called("run_image")[0].args).toEqual({
      request: { image: "busybox:latest", name: "web", ports: ["8080:80", "127.0.0.1:9000:9000"], env: ["A=1", "B=2"], volumes: [], network: "", restart: "always" },
    });
  });

  it("keeps the Run dialog open with the engine's refusal", async () => {
    const fake = new FakeApi({ list_images: () => [image({})], run_image: () => refusal("invalid_argument", "invalid port 99999") });
    render(Images, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "Run busybox:latest" }));
    await fireEvent.click(screen.getByRole("button", { name: "Run" }));
    expect((await screen.findByRole("alert")).textContent).toBe("invalid_argument: invalid port 99999");
    expect(screen.getByRole("dialog")).toBeTruthy();
  });

  it("shows an image's history, pushes a tagged one and prunes", async () => {
    const fake = new FakeApi({
      list_images: () => [image({})],
      image_history: () => [{ created: "2026-12-04T10:00:00Z", created_by: "/bin/sh -c #(nop) CMD [\"sh\"]", size: 0, empty_layer: true }],
      push_image: () => "sha256:abc",
      prune_images: () => ({ removed: [], reclaimed_bytes: 0 }),
    });
    render(Images, { api: fake });
    await fireEvent.click(await screen.findByRole("button", { name: "History of busybox:latest" }));
    expect(await screen.findByText('/bin/sh -c #(nop) CMD ["sh"]')).toBeTruthy();
    await fireEvent.click(screen.getByRole("button", { name: "Push busybox:latest" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Pushed busybox:latest: sha256:abc"));
    await fireEvent.click(screen.getByRole("button", { name: "Prune dangling" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Pruned 0 image(s), 0 B freed"));
  });
});
