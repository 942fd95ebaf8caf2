//! The Tauri commands the UI invokes. Each turns the call into one berth-host call
//! (`berth_host::ui::engine::Engine` for the engine, the session for the VM). Their
//! names are `berth_host::ui::names::Command`; `cargo xtask codegen --check` holds the
//! two lists equal.

use berth_compose::desktop::Projects;
use berth_host::ui::engine::ContainerAction;
use berth_host::ui::names::{Channel, EngineTarget};
use berth_host::ui::rows::ComposeProjectRow;
use berth_host::ui::rows::{ContainerDetail, ContainerRow, ImageRow, LogLine, NetworkDetail, NetworkRequest, NetworkRow, RunRequest, SearchRow, VolumeRow};
use berth_host::ui::rows::{FileRow, HistoryRow, Pruned, StatsSample, TerminalEvent};
use berth_host::ui::settings::{self, SettingsForm};
use berth_host::ui::UiError;
use berth_host::vm::VmState;
use tauri::ipc::Channel as Sink;
use tauri::{AppHandle, Emitter, State};

use crate::desktop::{Desktop, Stream};

/// The VM's state as last seen.
#[tauri::command]
pub fn vm_state(desktop: State<'_, Desktop>) -> VmState {
    desktop.current()
}

/// Starts the VM in the background; progress arrives as `vm-state` events.
#[tauri::command]
pub async fn start_vm(app: AppHandle, desktop: State<'_, Desktop>) -> Result<(), UiError> {
    desktop.begin_start(app)
}

/// Stops the VM; the final state arrives as a `vm-state` event.
#[tauri::command]
pub async fn stop_vm(app: AppHandle, desktop: State<'_, Desktop>) -> Result<(), UiError> {
    desktop.begin_stop(app)
}

/// The session's VM, or the engine `BERTH_HOST` names.
#[tauri::command]
pub fn engine_target(desktop: State<'_, Desktop>) -> EngineTarget {
    desktop.target().clone()
}

#[tauri::command]
pub async fn list_containers(desktop: State<'_, Desktop>) -> Result<Vec<ContainerRow>, UiError> {
    desktop.engine().await?.containers().await
}

#[tauri::command]
pub async fn container_action(desktop: State<'_, Desktop>, id: String, action: ContainerAction) -> Result<(), UiError> {
    desktop.engine().await?.container_action(&id, action).await
}

#[tauri::command]
pub async fn remove_containers(desktop: State<'_, Desktop>, ids: Vec<String>, force: bool) -> Result<(), UiError> {
    desktop.engine().await?.remove_containers(&ids, force).await
}

#[tauri::command]
pub async fn run_image(desktop: State<'_, Desktop>, request: RunRequest) -> Result<String, UiError> {
    desktop.engine().await?.run(&request).await
}

#[tauri::command]
pub async fn list_images(desktop: State<'_, Desktop>) -> Result<Vec<ImageRow>, UiError> {
    desktop.engine().await?.images().await
}

/// Pulls; each step arrives as a `pull-progress` event, the last being done or failed.
/// The image's id, or `None` when [`cancel_pull`] stopped it.
#[tauri::command]
pub async fn pull_image(app: AppHandle, desktop: State<'_, Desktop>, reference: String) -> Result<Option<String>, UiError> {
    let engine = desktop.engine().await?;
    desktop.pulls().run(&reference, engine.pull(&reference, |step| drop(app.emit(Channel::PullProgress.name(), step)))).await
}

/// Docker Hub's (or a registry's) images matching `term`, as `docker search` finds them.
#[tauri::command]
pub async fn search_images(desktop: State<'_, Desktop>, term: String, limit: u32) -> Result<Vec<SearchRow>, UiError> {
    desktop.engine().await?.search_images(&term, limit).await
}

/// Stops a pull under way; false when none of that name runs.
#[tauri::command]
pub fn cancel_pull(desktop: State<'_, Desktop>, reference: String) -> bool {
    desktop.pulls().cancel(&reference)
}

#[tauri::command]
pub async fn remove_image(desktop: State<'_, Desktop>, reference: String, force: bool) -> Result<(), UiError> {
    desktop.engine().await?.remove_image(&reference, force).await
}

#[tauri::command]
pub async fn tag_image(desktop: State<'_, Desktop>, source: String, target: String) -> Result<(), UiError> {
    desktop.engine().await?.tag_image(&source, &target).await
}

#[tauri::command]
pub async fn list_volumes(desktop: State<'_, Desktop>) -> Result<Vec<VolumeRow>, UiError> {
    desktop.engine().await?.volumes().await
}

#[tauri::command]
pub async fn create_volume(desktop: State<'_, Desktop>, name: String) -> Result<VolumeRow, UiError> {
    desktop.engine().await?.create_volume(&name).await
}

#[tauri::command]
pub async fn remove_volume(desktop: State<'_, Desktop>, name: String) -> Result<(), UiError> {
    desktop.engine().await?.remove_volume(&name).await
}

#[tauri::command]
pub async fn inspect_container(desktop: State<'_, Desktop>, id: String) -> Result<ContainerDetail, UiError> {
    desktop.engine().await?.inspect_container(&id).await
}

#[tauri::command]
pub async fn inspect_network(desktop: State<'_, Desktop>, name: String) -> Result<NetworkDetail, UiError> {
    desktop.engine().await?.inspect_network(&name).await
}

/// Opens a published port in the user's browser (nothing but local http(s) URLs).
#[tauri::command]
pub fn open_url(app: AppHandle, url: String) -> Result<(), UiError> {
    use tauri_plugin_opener::OpenerExt;
    let url = berth_host::ui::browser::local_url(&url)?;
    app.opener().open_url(url, None::<&str>).map_err(|e| UiError::from_error(berth_host::ErrorKind::Unavailable, &e))
}

/// The native chooser for a compose file (or a folder); `None` when dismissed.
#[tauri::command]
pub async fn choose_path(app: AppHandle, folder: bool) -> Option<String> {
    use tauri_plugin_dialog::DialogExt;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let chooser = app.dialog().file().set_title(if folder { "Choose a compose project's folder" } else { "Choose a compose file" });
    let send = move |path: Option<tauri_plugin_dialog::FilePath>| drop(sender.send(path.map(|p| p.to_string())));
    if folder {
        chooser.pick_folder(send);
    } else {
        chooser.add_filter("Compose files", &["yaml", "yml"]).pick_file(send);
    }
    receiver.await.ok().flatten()
}

#[tauri::command]
pub async fn list_networks(desktop: State<'_, Desktop>) -> Result<Vec<NetworkRow>, UiError> {
    desktop.engine().await?.networks().await
}

#[tauri::command]
pub async fn create_network(desktop: State<'_, Desktop>, request: NetworkRequest) -> Result<(), UiError> {
    desktop.engine().await?.create_network(&request).await
}

#[tauri::command]
pub async fn remove_network(desktop: State<'_, Desktop>, name: String) -> Result<(), UiError> {
    desktop.engine().await?.remove_network(&name).await
}

#[tauri::command]
pub async fn list_compose_projects(desktop: State<'_, Desktop>) -> Result<Vec<ComposeProjectRow>, UiError> {
    Projects::new(desktop.home()).list(desktop.engine().await?.client()).await
}

/// Adds the project of a compose file or folder (kept across restarts).
#[tauri::command]
pub fn add_compose_project(desktop: State<'_, Desktop>, path: String) -> Result<ComposeProjectRow, UiError> {
    Projects::new(desktop.home()).add(&path)
}

#[tauri::command]
pub fn forget_compose_project(desktop: State<'_, Desktop>, name: String) -> Result<(), UiError> {
    Projects::new(desktop.home()).forget(&name)
}

#[tauri::command]
pub async fn compose_up(desktop: State<'_, Desktop>, name: String) -> Result<Vec<String>, UiError> {
    Projects::new(desktop.home()).up(desktop.engine().await?.client(), &name).await
}

#[tauri::command]
pub async fn compose_down(desktop: State<'_, Desktop>, name: String) -> Result<Vec<String>, UiError> {
    Projects::new(desktop.home()).down(desktop.engine().await?.client(), &name).await
}

/// Builds the project's services that have `build:`; returns the build's lines.
#[tauri::command]
pub async fn compose_build(desktop: State<'_, Desktop>, name: String) -> Result<Vec<String>, UiError> {
    Projects::new(desktop.home()).build(desktop.engine().await?.client(), &name).await
}

#[tauri::command]
pub async fn compose_pull(desktop: State<'_, Desktop>, name: String) -> Result<Vec<String>, UiError> {
    Projects::new(desktop.home()).pull(desktop.engine().await?.client(), &name).await
}

#[tauri::command]
pub fn read_settings(desktop: State<'_, Desktop>) -> Result<SettingsForm, UiError> {
    settings::read(desktop.home())
}

/// Saves the settings; returns the keys that changed (they apply at the next VM start).
#[tauri::command]
pub fn apply_settings(desktop: State<'_, Desktop>, form: SettingsForm) -> Result<Vec<String>, UiError> {
    settings::apply(desktop.home(), &form)
}

#[tauri::command]
pub async fn registry_login(desktop: State<'_, Desktop>, registry: String, username: String, password: String) -> Result<String, UiError> {
    desktop.engine().await?.login(&registry, &username, &password).await
}

/// Forgets a registry login; false when there was none.
#[tauri::command]
pub fn registry_logout(registry: String) -> Result<bool, UiError> {
    berth_host::credentials::erase(&registry).map_err(|e| UiError::from_error(e.kind(), &e))
}

/// Writes the diagnostics archive; returns its path.
#[tauri::command]
pub async fn write_diagnostics(desktop: State<'_, Desktop>) -> Result<String, UiError> {
    settings::diagnose(desktop.home()).await
}

/// Wipes the VM's data (the window asked first); false when there was none.
#[tauri::command]
pub fn reset_vm(desktop: State<'_, Desktop>) -> Result<bool, UiError> {
    settings::reset_vm(desktop.home())
}

/// Streams a container's stats to the window until `close_stream`; returns the stream.
#[tauri::command]
pub async fn watch_stats(desktop: State<'_, Desktop>, id: String, sink: Sink<StatsSample>) -> Result<u32, UiError> {
    let engine = desktop.engine().await?;
    Ok(desktop.spawn_stream(async move {
        let ended = engine.follow_stats(&id, |sample| drop(sink.send(sample))).await;
        tracing::debug!(container = %id, reason = %ended.message, "stats ended");
    }))
}

/// Opens a shell with a tty in a container; its output goes to `sink`. Returns the
/// terminal's number for `terminal_input`, `terminal_resize` and `close_stream`.
#[tauri::command]
pub async fn open_terminal(desktop: State<'_, Desktop>, id: String, cols: u32, rows: u32, sink: Sink<TerminalEvent>) -> Result<u32, UiError> {
    let terminal = desktop.engine().await?.open_terminal(&id, cols, rows, move |event| drop(sink.send(event))).await?;
    Ok(desktop.keep_stream(Stream::Terminal(terminal)))
}

#[tauri::command]
pub async fn terminal_input(desktop: State<'_, Desktop>, terminal: u32, data: String) -> Result<(), UiError> {
    desktop.terminal(terminal)?.write(&data).await
}

#[tauri::command]
pub async fn terminal_resize(desktop: State<'_, Desktop>, terminal: u32, cols: u32, rows: u32) -> Result<(), UiError> {
    desktop.terminal(terminal)?.resize(cols, rows).await
}

#[tauri::command]
pub fn close_stream(desktop: State<'_, Desktop>, stream: u32) {
    desktop.close_stream(stream);
}

#[tauri::command]
pub async fn image_history(desktop: State<'_, Desktop>, reference: String) -> Result<Vec<HistoryRow>, UiError> {
    desktop.engine().await?.image_history(&reference).await
}

#[tauri::command]
pub async fn push_image(desktop: State<'_, Desktop>, reference: String) -> Result<String, UiError> {
    desktop.engine().await?.push_image(&reference).await
}

#[tauri::command]
pub async fn prune_images(desktop: State<'_, Desktop>, all: bool) -> Result<Pruned, UiError> {
    desktop.engine().await?.prune_images(all).await
}

#[tauri::command]
pub async fn prune_volumes(desktop: State<'_, Desktop>) -> Result<Pruned, UiError> {
    desktop.engine().await?.prune_volumes().await
}

#[tauri::command]
pub async fn clone_volume(desktop: State<'_, Desktop>, source: String, target: String) -> Result<(), UiError> {
    desktop.engine().await?.clone_volume(&source, &target).await
}

#[tauri::command]
pub async fn export_volume(desktop: State<'_, Desktop>, name: String, path: String) -> Result<u64, UiError> {
    desktop.engine().await?.export_volume(&name, &path).await
}

#[tauri::command]
pub async fn import_volume(desktop: State<'_, Desktop>, name: String, path: String) -> Result<(), UiError> {
    desktop.engine().await?.import_volume(&name, &path).await
}

#[tauri::command]
pub async fn volume_files(desktop: State<'_, Desktop>, name: String, dir: String) -> Result<Vec<FileRow>, UiError> {
    desktop.engine().await?.volume_files(&name, &dir).await
}

#[tauri::command]
pub async fn volume_preview(desktop: State<'_, Desktop>, name: String, file: String) -> Result<String, UiError> {
    desktop.engine().await?.volume_preview(&name, &file).await
}

#[tauri::command]
pub async fn connect_network(desktop: State<'_, Desktop>, network: String, container: String) -> Result<(), UiError> {
    desktop.engine().await?.connect_network(&network, &container).await
}

#[tauri::command]
pub async fn disconnect_network(desktop: State<'_, Desktop>, network: String, container: String) -> Result<(), UiError> {
    desktop.engine().await?.disconnect_network(&network, &container).await
}

/// Streams a container's log (the last `tail` lines, then new ones) until `close_stream`.
#[tauri::command]
pub async fn follow_logs(desktop: State<'_, Desktop>, id: String, tail: i64, sink: Sink<LogLine>) -> Result<u32, UiError> {
    let engine = desktop.engine().await?;
    Ok(desktop.spawn_stream(async move {
        let ended = engine.follow_logs(&id, tail, |line| drop(sink.send(line))).await;
        tracing::debug!(container = %id, reason = %ended.message, "log stream ended");
    }))
}

/// Saves a container's whole log to a new file; returns the number of lines.
#[tauri::command]
pub async fn save_logs(desktop: State<'_, Desktop>, id: String, path: String) -> Result<u64, UiError> {
    desktop.engine().await?.save_logs(&id, &path).await
}
