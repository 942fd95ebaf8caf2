import type { ContainerRow } from "../bindings/ContainerRow";
import type { ImageRow } from "../bindings/ImageRow";

export function container(over: Partial<ContainerRow>): ContainerRow {
  return {
    id: "c".repeat(64), name: "web", image: "busybox", command: "sh", state: "running", status: "Up 3 seconds",
    created: 1, ports: [], networks: ["bridge"], project: null, service: null, ...over,
  };
}

export function image(over: Partial<ImageRow>): ImageRow {
  return { id: "sha256:" + "a".repeat(64), tags: ["busybox:latest"], size: 1_200_000, created: "2026-12-04T10:00:00Z", containers: 0, signed_by: [], ...over };
}
