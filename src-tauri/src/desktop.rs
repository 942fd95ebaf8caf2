//! The app's view of the VM: the state shown, the VM it started, and the watcher that
//! keeps the state live when something else (the CLI, a crash) changes it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_host::home::BerthHome;
use berth_host::ui::UiError;
use berth_host::vm::{self, RunningVm, VmConfig, VmState};
use berth_host::ErrorKind;
use tauri::{AppHandle, Emitter, Manager};

/// The event that carries each new [`VmState`] to the UI.
pub const VM_STATE_EVENT: &str = "vm-state";

#[derive(Debug)]
pub struct Desktop {
    home: BerthHome,
    shown: Mutex<VmState>,
    /// The VM this app started (stopped when the app quits).
    running: Arc<tokio::sync::Mutex<Option<RunningVm>>>,
    /// Held while a start or stop is under way: one at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Desktop {
    pub fn new(home: BerthHome) -> Desktop {
        Desktop {
            home,
            shown: Mutex::new(VmState::Stopped),
            running: Arc::default(),
            busy: Arc::default(),
        }
    }

    pub fn current(&self) -> VmState {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn publish(&self, app: &AppHandle, state: VmState) {
        let changed = {
            let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *shown != state;
            *shown = state.clone();
            changed
        };
        if changed {
            tracing::info!(state = state.name(), "vm state");
            if let Err(err) = app.emit(VM_STATE_EVENT, &state) {
                tracing::warn!(error = %err, "cannot send the VM state to the window");
            }
        }
    }

    pub fn begin_start(&self, app: AppHandle) -> Result<(), UiError> {
        let guard = self.busy.clone().try_lock_owned().map_err(|_| busy())?;
        if matches!(self.current(), VmState::Ready { .. }) {
            return Err(UiError::new(ErrorKind::Conflict, "the VM is already running"));
        }
        let home = self.home.clone();
        let running = self.running.clone();
        tauri::async_runtime::spawn(async move {
            let _guard = guard;
            let desktop = app.state::<Desktop>();
            let config = match VmConfig::from_env() {
                Ok(config) => config,
                Err(err) => {
                    desktop.publish(&app, VmState::Error { reason: err.to_string() });
                    return;
                }
            };
            let started = vm::start(&home, &config, |state| desktop.publish(&app, state.clone())).await;
            if let Ok(vm) = started {
                tracing::info!(boot_ms = vm.boot_time.as_millis() as u64, "VM ready");
                *running.lock().await = Some(vm);
            }
        });
        Ok(())
    }

    pub fn begin_stop(&self, app: AppHandle) -> Result<(), UiError> {
        let guard = self.busy.clone().try_lock_owned().map_err(|_| busy())?;
        let home = self.home.clone();
        let running = self.running.clone();
        tauri::async_runtime::spawn(async move {
            let _guard = guard;
            let desktop = app.state::<Desktop>();
            desktop.publish(&app, VmState::Stopping);
            let result = vm::stop(&home, Duration::from_secs(10)).await;
            if let Some(vm) = running.lock().await.take() {
                vm.reap().await;
            }
            match result {
                Ok(_) => desktop.publish(&app, vm::status(&home).await),
                Err(err) => desktop.publish(&app, VmState::Error { reason: err.to_string() }),
            }
        });
        Ok(())
    }

    /// Stops the VM this app started, if any (on quit).
    pub async fn shutdown(&self) {
        if let Some(vm) = self.running.lock().await.take() {
            if let Err(err) = vm::stop(&self.home, Duration::from_secs(10)).await {
                tracing::warn!(error = %err, "stopping the VM on quit");
            }
            vm.reap().await;
        }
    }
}

fn busy() -> UiError {
    UiError::new(ErrorKind::Conflict, "the VM is already starting or stopping")
}

/// Keeps the shown state true: reads it at launch, then every two seconds while no
/// start or stop is under way (a VM started or stopped by the CLI, or one that died).
pub fn watch(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        loop {
            let desktop = app.state::<Desktop>();
            // Not holding the lock while looking: a click on Start must never find it taken.
            if desktop.busy.try_lock().is_ok() {
                let state = vm::status(&desktop.home).await;
                // A start or stop that began meanwhile publishes its own states.
                if desktop.busy.try_lock().is_ok() {
                    desktop.publish(&app, state);
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}
