import { describe, expect, it, vi } from "vitest";
import { render, screen, waitFor } from "@testing-library/svelte";
import { FakeApi } from "../test/fakeApi";
import { container } from "../test/rows";
import type { StatsSample } from "../bindings/StatsSample";

// uPlot draws on a canvas, which jsdom has not; a stand-in records the data it is given.
const plotted: unknown[][] = [];
vi.mock("uplot", () => ({
  default: class {
    setData(data: unknown[]) {
      plotted.push(data);
    }
    destroy() {}
  },
}));

import Stats from "./Stats.svelte";

const sample = (time: number, over: Partial<StatsSample>): StatsSample => ({
  time, cpu_percent: 0, memory_bytes: 0, memory_limit: 1e9, net_rx_bytes: 0, net_tx_bytes: 0, block_read_bytes: 0, block_write_bytes: 0, pids: 1, ...over,
});

describe("Stats", () => {
  it("charts each sample and shows the latest values, network as a rate", async () => {
    const fake = new FakeApi({ watch_stats: () => 4, close_stream: () => null });
    const { unmount } = render(Stats, { api: fake, container: container({ id: "abc", name: "web" }), onclose: () => {} });
    await waitFor(() => expect(fake.called("watch_stats")).toHaveLength(1));
    expect(fake.called("watch_stats")[0].args).toEqual({ id: "abc" });
    fake.push("watch_stats", sample(100, { cpu_percent: 12.5, memory_bytes: 5_000_000, net_rx_bytes: 1000 }));
    fake.push("watch_stats", sample(102, { cpu_percent: 50, memory_bytes: 6_000_000, net_rx_bytes: 5000, pids: 3 }));
    await waitFor(() => expect(screen.getByText("50.0 %")).toBeTruthy());
    expect(document.getElementById("stats-memory")?.textContent).toBe("6.0 MB of 1.0 GB");
    expect(document.getElementById("stats-network")?.textContent).toBe("↓ 2.0 KB/s ↑ 0 B/s");
    expect(document.getElementById("stats-pids")?.textContent).toBe("3");
    // Four charts, each given both samples.
    expect(plotted.length).toBe(8);
    unmount();
    expect(fake.called("close_stream")[0].args).toEqual({ stream: 4 });
  });
});
