// Berth Desktop's window: mounts the app over Tauri's calls and events.
import { mount } from "svelte";
import App from "./App.svelte";
import { tauriApi } from "./lib/api";
import "./style.css";

const target = document.getElementById("app");
if (!target) throw new Error("missing #app");
mount(App, { target, props: { api: tauriApi } });
