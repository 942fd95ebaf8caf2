//! The app's view of the engine: where it is (the session's VM, or `BERTH_HOST`), the
//! state shown, the VM it started, the watcher that keeps the state live when something
//! else (the CLI, a crash) changes it, and the follower that forwards the engine's
//! events to the window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_host::agent::{find, AgentClient};
use berth_host::home::BerthHome;
use berth_host::session::{self, Session};
use berth_host::settings::Settings;
use berth_host::ui::engine::Engine;
use berth_host::ui::names::{Channel, EngineTarget};
use berth_host::ui::UiError;
use berth_host::vm::VmState;
use berth_host::ErrorKind;
use tauri::{AppHandle, Emitter, Manager};

/// A live stream the window opened: a Stats panel's task, or a terminal's input.
#[derive(Debug)]
pub enum Stream {
    Task(tauri::async_runtime::JoinHandle<()>),
    Terminal(berth_host::ui::streams::Terminal),
}

/// A session run by this app, in a task of its own.
#[derive(Debug)]
struct OwnSession {
    stop: Arc<tokio::sync::Notify>,
    task: tauri::async_runtime::JoinHandle<()>,
}

impl OwnSession {
    async fn end(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

#[derive(Debug)]
pub struct Desktop {
    home: BerthHome,
    target: EngineTarget,
    /// The engine, once connected; dropped when a call finds it gone.
    engine: tokio::sync::Mutex<Option<Engine>>,
    shown: Mutex<VmState>,
    /// The window's open streams, by the number it was given.
    streams: Mutex<std::collections::HashMap<u32, Stream>>,
    next_stream: std::sync::atomic::AtomicU32,
    /// The session this app started (stopped when the app quits): its stop request and
    /// the task that runs it.
    running: Arc<tokio::sync::Mutex<Option<OwnSession>>>,
    /// Held while a start or stop is under way: one at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
    /// While the engine's event stream is followed, the engine is known to answer: the
    /// watcher does not ask it.
    following: std::sync::atomic::AtomicBool,
    /// The pulls under way, so the window can cancel one.
    pulls: berth_host::ui::pulls::Pulls,
}

impl Desktop {
    /// `host`: the engine `BERTH_HOST` names, if it names one.
    pub fn new(home: BerthHome, host: Option<String>) -> Desktop {
        let target = match host.filter(|h| !h.is_empty()) {
            Some(address) => EngineTarget::Host { address },
            None => EngineTarget::Session,
        };
        Desktop {
            home,
            target,
            engine: tokio::sync::Mutex::new(None),
            streams: Mutex::default(),
            next_stream: std::sync::atomic::AtomicU32::new(1),
            shown: Mutex::new(VmState::Stopped),
            running: Arc::default(),
            busy: Arc::default(),
            following: std::sync::atomic::AtomicBool::new(false),
            pulls: berth_host::ui::pulls::Pulls::default(),
        }
    }

    pub fn home(&self) -> &BerthHome {
        &self.home
    }

    pub fn pulls(&self) -> &berth_host::ui::pulls::Pulls {
        &self.pulls
    }

    pub fn target(&self) -> &EngineTarget {
        &self.target
    }

    /// The engine, connected on first use: the one `BERTH_HOST` names, else the session's
    /// (through run/berth.sock). Not running is an `unavailable` error that says so.
    pub async fn engine(&self) -> Result<Engine, UiError> {
        let mut cached = self.engine.lock().await;
        if let Some(engine) = cached.as_ref() {
            return Ok(engine.clone());
        }
        let host = match &self.target {
            EngineTarget::Host { address } => Some(address.as_str()),
            EngineTarget::Session => None,
        };
        let endpoint = find::locate(host, &self.home).map_err(|e| UiError::new(e.kind(), e.to_string()))?;
        let client = AgentClient::connect(&endpoint, Duration::from_secs(5)).await.map_err(|e| UiError::from_error(e.kind(), &e))?;
        let engine = Engine::new(client);
        *cached = Some(engine.clone());
        Ok(engine)
    }

    /// Forgets the connection (the engine went away); the next call connects again.
    async fn disconnect(&self) {
        self.engine.lock().await.take();
    }

    /// Keeps a stream; returns its number for the window.
    pub fn keep_stream(&self, stream: Stream) -> u32 {
        let id = self.next_stream.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(id, stream);
        id
    }

    /// Runs a stream's task until it ends or the window closes it; returns its number.
    pub fn spawn_stream(&self, task: impl std::future::Future<Output = ()> + Send + 'static) -> u32 {
        self.keep_stream(Stream::Task(tauri::async_runtime::spawn(task)))
    }

    pub fn terminal(&self, id: u32) -> Result<berth_host::ui::streams::Terminal, UiError> {
        match self.streams.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            Some(Stream::Terminal(t)) => Ok(t.clone()),
            _ => Err(UiError::new(ErrorKind::NotFound, format!("no terminal {id}"))),
        }
    }

    /// Ends a stream: a task is stopped, a terminal's input closed.
    pub fn close_stream(&self, id: u32) {
        if let Some(Stream::Task(task)) = self.streams.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
            task.abort();
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
            if let Some(tray) = app.try_state::<crate::tray::TrayState>() {
                let _ = tray.0.set_text(format!("Engine: {}", state.name()));
            }
            if let Err(err) = app.emit(Channel::VmState.name(), &state) {
                tracing::warn!(error = %err, "cannot send the VM state to the window");
            }
        }
    }

    /// Starts a session (the same one `berth vm start` and `berth serve` run): the VM,
    /// run/docker.sock, run/berth.sock, published ports and shares, until Stop or quit.
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
            let config = match Settings::load(&home).map_err(|e| e.to_string()).and_then(|s| s.vm_config(&home).map_err(|e| e.to_string())) {
                Ok(config) => config,
                Err(reason) => {
                    desktop.publish(&app, VmState::Error { reason });
                    return;
                }
            };
            let started = Session::start(&home, &config, None, |state| desktop.publish(&app, state.clone())).await;
            let mut session = match started {
                Ok(session) => session,
                Err(err) => {
                    desktop.publish(&app, VmState::Error { reason: berth_host::agent::error_chain(&err) });
                    return;
                }
            };
            tracing::info!(boot_ms = session.vm().boot_time.as_millis() as u64, "VM ready");
            desktop.publish(&app, session.state().clone());
            let stop = Arc::new(tokio::sync::Notify::new());
            let asked = stop.clone();
            let runner = app.clone();
            let task = tauri::async_runtime::spawn(async move {
                let desktop = runner.state::<Desktop>();
                if let session::Ended::Crashed(reason) = session.run_until(asked.notified()).await {
                    desktop.publish(&runner, VmState::Error { reason });
                    asked.notified().await;
                }
                desktop.publish(&runner, VmState::Stopping);
                match session.shutdown(Duration::from_secs(10)).await {
                    Ok(_) => desktop.publish(&runner, VmState::Stopped),
                    Err(err) => desktop.publish(&runner, VmState::Error { reason: err.to_string() }),
                }
            });
            *running.lock().await = Some(OwnSession { stop, task });
        });
        Ok(())
    }

    /// Stops the session: this app's own, or one the CLI started.
    pub fn begin_stop(&self, app: AppHandle) -> Result<(), UiError> {
        let guard = self.busy.clone().try_lock_owned().map_err(|_| busy())?;
        let home = self.home.clone();
        let running = self.running.clone();
        tauri::async_runtime::spawn(async move {
            let _guard = guard;
            let desktop = app.state::<Desktop>();
            desktop.publish(&app, VmState::Stopping);
            let own = running.lock().await.take();
            let result = match own {
                Some(own) => {
                    own.end().await;
                    Ok(())
                }
                None => session::request_stop(&home, Duration::from_secs(10)).await.map(|_| ()),
            };
            match result {
                Ok(()) => desktop.publish(&app, session::status(&home).await),
                Err(err) => desktop.publish(&app, VmState::Error { reason: err.to_string() }),
            }
        });
        Ok(())
    }

    /// Stops the session this app started, if any (on quit).
    pub async fn shutdown(&self) {
        if let Some(own) = self.running.lock().await.take() {
            own.end().await;
        }
    }
}

fn busy() -> UiError {
    UiError::new(ErrorKind::Conflict, "the VM is already starting or stopping")
}

/// Keeps the shown state true: reads it at launch, then every two seconds while no
/// start or stop is under way and the engine's events are not being followed (a VM
/// started or stopped by the CLI, or one that died). With `BERTH_HOST`, the state is
/// that engine's: ready while it answers.
pub fn watch(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        loop {
            let desktop = app.state::<Desktop>();
            // While the engine's events are followed it answers; a stop or crash ends
            // that stream, and then the state is looked at again. So an idle app asks
            // nothing.
            if desktop.following.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            if let EngineTarget::Host { address } = desktop.target() {
                let version = match desktop.engine().await {
                    Ok(engine) => engine.version().await,
                    Err(err) => Err(err),
                };
                let state = match version {
                    Ok(engine) => VmState::Ready { accel: "none".into(), engine },
                    Err(err) => {
                        desktop.disconnect().await;
                        VmState::Error { reason: format!("the engine at {address}: {}", err.message) }
                    }
                };
                desktop.publish(&app, state);
            } else if desktop.busy.try_lock().is_ok() {
                // Not holding the lock while looking: a click on Start must never find it taken.
                let state = session::status(&desktop.home).await;
                // A start or stop that began meanwhile publishes its own states.
                if desktop.busy.try_lock().is_ok() {
                    desktop.publish(&app, state);
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

/// Forwards the engine's events to the window as `engine-event`, whenever an engine is
/// ready; the views reload what an event touches (no polling of lists).
pub fn follow_events(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        loop {
            let desktop = app.state::<Desktop>();
            if matches!(desktop.current(), VmState::Ready { .. }) {
                if let Ok(engine) = desktop.engine().await {
                    // The window reloads everything on this one: what changed while no
                    // stream was followed is not known.
                    let _ = app.emit(
                        Channel::EngineEvent.name(),
                        berth_host::ui::rows::EngineEvent { kind: "engine".into(), action: "connected".into(), id: String::new() },
                    );
                    desktop.following.store(true, std::sync::atomic::Ordering::Relaxed);
                    let ended = engine.follow_events(|event| drop(app.emit(Channel::EngineEvent.name(), event))).await;
                    desktop.following.store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(reason = %ended.message, "the engine's events stopped");
                    desktop.disconnect().await;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
