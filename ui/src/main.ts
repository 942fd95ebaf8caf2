// Berth Desktop's window: mounts the app over Tauri's calls and events. Should the
// window itself fail to start, it says why instead of staying blank.
import { mount } from "svelte";
import App from "./App.svelte";
import { tauriApi } from "./lib/api";
import "./style.css";

const target = document.getElementById("app");
try {
  if (!target) throw new Error("missing #app");
  mount(App, { target, props: { api: tauriApi } });
} catch (err) {
  const box = document.createElement("pre");
  box.id = "startup-error";
  box.className = "error";
  box.textContent = `Berth Desktop could not start its window: ${err instanceof Error ? `${err.message}\n${err.stack ?? ""}` : String(err)}`;
  document.body.append(box);
}
