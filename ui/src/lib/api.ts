// The app's calls and events, typed from the Rust side (src/bindings, `cargo xtask
// codegen`). `Commands` maps every generated command name to its arguments and result;
// the type check below fails when the two lists drift apart.
import { Channel as Sink, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { Channel } from "../bindings/Channel";
import type { Command } from "../bindings/Command";
import type { ComposeProjectRow } from "../bindings/ComposeProjectRow";
import type { ContainerAction } from "../bindings/ContainerAction";
import type { ContainerDetail } from "../bindings/ContainerDetail";
import type { ContainerRow } from "../bindings/ContainerRow";
import type { EngineEvent } from "../bindings/EngineEvent";
import type { FileRow } from "../bindings/FileRow";
import type { HistoryRow } from "../bindings/HistoryRow";
import type { Pruned } from "../bindings/Pruned";
import type { EngineTarget } from "../bindings/EngineTarget";
import type { ImageRow } from "../bindings/ImageRow";
import type { LogLine } from "../bindings/LogLine";
import type { NetworkDetail } from "../bindings/NetworkDetail";
import type { NetworkRequest } from "../bindings/NetworkRequest";
import type { NetworkRow } from "../bindings/NetworkRow";
import type { PullProgress } from "../bindings/PullProgress";
import type { RunRequest } from "../bindings/RunRequest";
import type { SearchRow } from "../bindings/SearchRow";
import type { SettingsForm } from "../bindings/SettingsForm";
import type { StatsSample } from "../bindings/StatsSample";
import type { TerminalEvent } from "../bindings/TerminalEvent";
import type { UiError } from "../bindings/UiError";
import type { VmState } from "../bindings/VmState";
import type { VolumeRow } from "../bindings/VolumeRow";

type None = Record<string, never>;

export interface Commands {
  vm_state: [None, VmState];
  start_vm: [None, null];
  stop_vm: [None, null];
  engine_target: [None, EngineTarget];
  list_containers: [None, ContainerRow[]];
  container_action: [{ id: string; action: ContainerAction }, null];
  remove_containers: [{ ids: string[]; force: boolean }, null];
  run_image: [{ request: RunRequest }, string];
  list_images: [None, ImageRow[]];
  pull_image: [{ reference: string }, string | null];
  remove_image: [{ reference: string; force: boolean }, null];
  tag_image: [{ source: string; target: string }, null];
  list_volumes: [None, VolumeRow[]];
  create_volume: [{ name: string }, VolumeRow];
  remove_volume: [{ name: string }, null];
  list_networks: [None, NetworkRow[]];
  create_network: [{ request: NetworkRequest }, null];
  remove_network: [{ name: string }, null];
  list_compose_projects: [None, ComposeProjectRow[]];
  add_compose_project: [{ path: string }, ComposeProjectRow];
  forget_compose_project: [{ name: string }, null];
  compose_up: [{ name: string }, string[]];
  compose_down: [{ name: string }, string[]];
  compose_pull: [{ name: string }, string[]];
  read_settings: [None, SettingsForm];
  apply_settings: [{ form: SettingsForm }, string[]];
  registry_login: [{ registry: string; username: string; password: string }, string];
  registry_logout: [{ registry: string }, boolean];
  write_diagnostics: [None, string];
  reset_vm: [None, boolean];
  watch_stats: [{ id: string; sink: Sink<StatsSample> }, number];
  open_terminal: [{ id: string; cols: number; rows: number; sink: Sink<TerminalEvent> }, number];
  terminal_input: [{ terminal: number; data: string }, null];
  terminal_resize: [{ terminal: number; cols: number; rows: number }, null];
  close_stream: [{ stream: number }, null];
  image_history: [{ reference: string }, HistoryRow[]];
  push_image: [{ reference: string }, string];
  prune_images: [{ all: boolean }, Pruned];
  prune_volumes: [None, Pruned];
  clone_volume: [{ source: string; target: string }, null];
  export_volume: [{ name: string; path: string }, number];
  import_volume: [{ name: string; path: string }, null];
  volume_files: [{ name: string; dir: string }, FileRow[]];
  volume_preview: [{ name: string; file: string }, string];
  connect_network: [{ network: string; container: string }, null];
  disconnect_network: [{ network: string; container: string }, null];
  follow_logs: [{ id: string; tail: number; sink: Sink<LogLine> }, number];
  save_logs: [{ id: string; path: string }, number];
  cancel_pull: [{ reference: string }, boolean];
  inspect_container: [{ id: string }, ContainerDetail];
  inspect_network: [{ name: string }, NetworkDetail];
  open_url: [{ url: string }, null];
  choose_path: [{ folder: boolean }, string | null];
  compose_build: [{ name: string }, string[]];
  search_images: [{ term: string; limit: number }, SearchRow[]];
}

/// The commands that stream to the window, and what each sends.
export interface Streams {
  follow_logs: LogLine;
  watch_stats: StatsSample;
  open_terminal: TerminalEvent;
}
type StreamArgs<C extends keyof Streams> = Omit<Commands[C][0], "sink">;

// Drift checks: every Rust command has an entry here, and nothing else does.
type Missing = Exclude<Command, keyof Commands>;
type Extra = Exclude<keyof Commands, Command>;
const noneMissing: Missing extends never ? true : Missing = true;
const noneExtra: Extra extends never ? true : Extra = true;
export const commandListsAgree = noneMissing && noneExtra;

export interface Events {
  "vm-state": VmState;
  "engine-event": EngineEvent;
  "pull-progress": PullProgress;
}
type MissingChannel = Exclude<Channel, keyof Events>;
const noChannelMissing: MissingChannel extends never ? true : MissingChannel = true;
export const channelListsAgree = noChannelMissing;

/// What the views use to reach the app; the window's is Tauri's, tests give their own.
export interface Api {
  call<C extends Command>(command: C, args: Commands[C][0]): Promise<Commands[C][1]>;
  on<E extends Channel>(channel: E, handler: (payload: Events[E]) => void): Promise<UnlistenFn>;
  /// Starts a streaming command; its messages go to `onMessage`. Returns the stream's
  /// number (for `close_stream`).
  stream<C extends keyof Streams>(command: C, args: StreamArgs<C>, onMessage: (message: Streams[C]) => void): Promise<number>;
}

export const tauriApi: Api = {
  call: (command, args) => invoke(command, args),
  on: (channel, handler) => listen(channel, (event) => handler(event.payload as never)),
  stream: (command, args, onMessage) => {
    const sink = new Sink<never>();
    sink.onmessage = onMessage;
    return invoke(command, { ...args, sink });
  },
};

/// A stream the window opened: its number once the app has given one, and its end
/// (which also ends a stream whose opening is still under way).
export interface OpenStream {
  id(): number | null;
  close(): void;
}

export function openStream<C extends keyof Streams>(
  api: Api,
  command: C,
  args: StreamArgs<C>,
  onMessage: (message: Streams[C]) => void,
  onError: (err: unknown) => void,
): OpenStream {
  let id: number | null = null;
  let closed = false;
  const end = (n: number) => void api.call("close_stream", { stream: n }).catch(() => {});
  api
    .stream(command, args, onMessage)
    .then((n) => {
      if (closed) end(n);
      else id = n;
    })
    .catch(onError);
  return {
    id: () => id,
    close: () => {
      closed = true;
      if (id !== null) end(id);
    },
  };
}

/// An error from a call, in the engine's words: "conflict: image is in use".
export function describe(err: unknown): string {
  const e = err as Partial<UiError> | null;
  if (e && typeof e === "object" && typeof e.message === "string") {
    return e.code ? `${e.code}: ${e.message}` : e.message;
  }
  return String(err);
}

export function bytes(n: number | bigint): string {
  let v = Number(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

/// The address a published port answers on from this machine, for the browser: a port
/// bound to every address is reached as localhost. UDP ports, and ports bound to another
/// address, have none (the app opens only local ones).
export function portUrl(p: { host_ip: string; host_port: number; protocol: string }): string | null {
  if (p.protocol !== "tcp" || !p.host_port) return null;
  const hosts: Record<string, string> = { "": "localhost", "0.0.0.0": "localhost", "::": "localhost", "127.0.0.1": "127.0.0.1", "::1": "[::1]" };
  const host = hosts[p.host_ip];
  return host ? `http://${host}:${p.host_port}/` : null;
}
