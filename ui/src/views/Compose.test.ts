import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, within } from "@testing-library/svelte";
import Compose from "./Compose.svelte";
import { FakeApi } from "../test/fakeApi";
import { container } from "../test/rows";

describe("Compose", () => {
  it("lists each project's services and stops only the running ones", async () => {
    const fake = new FakeApi({
      list_containers: () => [
        container({ id: "1", name: "shop-web-1", project: "shop", service: "web" }),
        container({ id: "2", name: "shop-db-1", project: "shop", service: "db", state: "exited" }),
        container({ id: "3", name: "alone" }),
      ],
      container_action: () => null,
    });
    render(Compose, { api: fake });
    const shop = await screen.findByRole("article", { name: "Project shop" });
    expect(within(shop).getByText("web")).toBeTruthy();
    expect(within(shop).getByText("db")).toBeTruthy();
    expect(screen.queryByText("alone")).toBeNull();
    await fireEvent.click(within(shop).getByRole("button", { name: "Stop shop" }));
    expect(fake.called("container_action").map((c) => c.args)).toEqual([{ id: "1", action: "stop" }]);
  });
});
