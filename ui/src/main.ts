// Berth Desktop's window: renders the VM state the Rust side sends, and asks it to
// start or stop the VM. Types come from Rust (src/bindings, `cargo xtask codegen`).
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { UiError } from "./bindings/UiError";
import type { VmState } from "./bindings/VmState";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

function render(state: VmState): void {
  const badge = $("vm-state");
  badge.textContent = state.state;
  badge.dataset.state = state.state;

  const reason = $("vm-reason");
  reason.hidden = state.state !== "error";
  reason.textContent = state.state === "error" ? state.reason : "";

  const engine = $("engine");
  engine.hidden = state.state !== "ready";
  if (state.state === "ready") {
    $("engine-version").textContent = state.engine.engine_version;
    $("engine-api").textContent = state.engine.api_version;
    $("engine-kernel").textContent = state.engine.kernel_version;
    $("engine-platform").textContent = `${state.engine.os}/${state.engine.arch}`;
    $("vm-accel").textContent = state.accel;
  }

  const busy = state.state === "booting" || state.state === "stopping";
  $<HTMLButtonElement>("start").disabled = busy || state.state === "ready";
  $<HTMLButtonElement>("stop").disabled = busy || state.state === "stopped";
}

function showError(err: unknown): void {
  const box = $("action-error");
  const e = err as Partial<UiError>;
  box.textContent = e && e.message ? `${e.code}: ${e.message}` : String(err);
  box.hidden = false;
}

async function act(command: "start_vm" | "stop_vm"): Promise<void> {
  $("action-error").hidden = true;
  try {
    await invoke(command);
  } catch (err) {
    showError(err);
  }
}

async function main(): Promise<void> {
  // Listen first, then read the current state, so no change is missed.
  await listen<VmState>("vm-state", (event) => render(event.payload));
  render(await invoke<VmState>("vm_state"));
  $("start").addEventListener("click", () => void act("start_vm"));
  $("stop").addEventListener("click", () => void act("stop_vm"));
}

main().catch(showError);
