//! The Tauri commands the UI invokes. Each turns the call into one berth-host call
//! (`berth_host::ui::engine::Engine` for the engine, the session for the VM). Their
//! names are `berth_host::ui::names::Command`; `cargo xtask codegen --check` holds the
//! two lists equal.

use berth_host::ui::engine::ContainerAction;
use berth_host::ui::names::{Channel, EngineTarget};
use berth_host::ui::rows::{ContainerRow, ImageRow, LogLine, NetworkRequest, NetworkRow, RunRequest, VolumeRow};
use berth_host::ui::UiError;
use berth_host::vm::VmState;
use tauri::{AppHandle, Emitter, State};

use crate::desktop::Desktop;

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
pub async fn container_logs(desktop: State<'_, Desktop>, id: String, tail: i64) -> Result<Vec<LogLine>, UiError> {
    desktop.engine().await?.logs(&id, tail).await
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
#[tauri::command]
pub async fn pull_image(app: AppHandle, desktop: State<'_, Desktop>, reference: String) -> Result<String, UiError> {
    let engine = desktop.engine().await?;
    engine.pull(&reference, |step| drop(app.emit(Channel::PullProgress.name(), step))).await
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
