//! The Tauri commands the UI invokes. Each only turns the call into a berth-host action.

use berth_host::ui::UiError;
use berth_host::vm::VmState;
use tauri::{AppHandle, State};

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
