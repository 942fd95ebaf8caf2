//! The session: one running VM and everything that makes it reachable — the VM (with
//! its data disk and shared folders), `run/berth.sock`, `run/docker.sock` (and the
//! Docker API on TCP when asked), the published ports forwarded to the host, and the
//! `berth` docker context. `berth serve`, `berth vm start|stop|status` and Berth
//! Desktop all use it; none of them holds that logic itself.
//!
//! One session per `BERTH_HOME`, held by an exclusive lock on `vm/session.lock` for
//! the session's life; its state is in `vm/session.json`, where any Berth process finds
//! it. `berth vm start` runs the session in a `berth serve` of its own in the
//! background (its log in `vm/session.log`) and returns once it is ready.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_proto::ErrorKind;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::home::BerthHome;
use crate::vm::{self, RunningVm, StartError, StopError, StopOutcome, VmConfig, VmPaths, VmState};

/// What any Berth process can read about the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The process that holds the session.
    pub pid: u32,
    pub state: VmState,
    pub started_unix_ms: u64,
    /// From QEMU's start to the engine's first answer, once ready.
    #[serde(default)]
    pub boot_ms: Option<u64>,
}

fn record_path(home: &BerthHome) -> PathBuf {
    home.vm_dir().join("session.json")
}

fn lock_path(home: &BerthHome) -> PathBuf {
    home.vm_dir().join("session.lock")
}

/// The session's log when it runs in the background.
pub fn log_path(home: &BerthHome) -> PathBuf {
    home.vm_dir().join("session.log")
}

fn save_record(home: &BerthHome, record: &SessionRecord) {
    if let Err(e) = vm::state::save_json(&record_path(home), record) {
        tracing::warn!(error = %e, "cannot write the session record");
    }
}

/// The running session's record, if a live process holds one.
pub fn find(home: &BerthHome) -> Option<SessionRecord> {
    let bytes = std::fs::read(record_path(home)).ok()?;
    let record: SessionRecord = serde_json::from_slice(&bytes).ok()?;
    (record.pid == std::process::id() || vm::state::process_alive(record.pid, "berth")).then_some(record)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("a Berth session is already running for {home} (pid {pid})")]
    Running { home: PathBuf, pid: u32 },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Socket(#[from] berth_proto::socket::BindError),
    #[error(transparent)]
    Tls(#[from] berth_proto::tls::TlsError),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
    #[error("the session did not start: {reason}")]
    Failed { reason: String },
    #[error(transparent)]
    Stop(#[from] StopError),
}

impl SessionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Running { .. } => ErrorKind::AlreadyExists,
            SessionError::Start(e) => e.kind(),
            SessionError::Socket(e) => e.kind(),
            SessionError::Tls(_) => ErrorKind::InvalidArgument,
            SessionError::Io { .. } | SessionError::Stop(_) => ErrorKind::Internal,
            SessionError::Failed { .. } => ErrorKind::Unavailable,
        }
    }
}

/// What `reset_data` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    Wiped,
    /// The VM had no data disk yet.
    NothingToWipe,
}

/// Deletes the VM's data disk (every image, container, volume and network in the VM);
/// the next start makes a new one. Refused while a session runs. `berth vm reset` and
/// Berth Desktop's Troubleshoot both ask the user first.
pub fn reset_data(home: &BerthHome) -> Result<Reset, SessionError> {
    if let Some(record) = find(home) {
        return Err(SessionError::Running { home: home.root().to_owned(), pid: record.pid });
    }
    let disk = vm::VmPaths::new(home).data_disk;
    if !disk.exists() {
        return Ok(Reset::NothingToWipe);
    }
    vm::guest::DataDisk { path: disk.clone(), size_bytes: 0 }
        .wipe()
        .map_err(|source| SessionError::Io { what: format!("delete the VM's data disk {}", disk.display()), source })?;
    Ok(Reset::Wiped)
}

/// How a session's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Its owner asked it to stop.
    Asked,
    /// The VM died; the sockets now answer with this reason.
    Crashed(String),
}

/// A running session, held by this process.
pub struct Session {
    home: BerthHome,
    vm: Option<RunningVm>,
    tasks: Vec<JoinHandle<()>>,
    down: tokio::sync::watch::Sender<Option<String>>,
    record: SessionRecord,
    sockets: Vec<PathBuf>,
    /// One session per home: held for the session's life.
    _lock: crate::os::FileLock,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("home", &self.home).field("record", &self.record).finish()
    }
}

impl Session {
    /// Takes the session lock, binds the sockets, boots the VM and serves everything;
    /// returns once the engine answers. `on_state` hears each state change.
    pub async fn start(
        home: &BerthHome,
        config: &VmConfig,
        tcp_tls: Option<&berth_proto::tls::TcpTls>,
        mut on_state: impl FnMut(&VmState),
    ) -> Result<Session, SessionError> {
        std::fs::create_dir_all(home.vm_dir()).map_err(|source| SessionError::Io { what: "create the VM folder".into(), source })?;
        let _ = crate::os::make_private(&home.vm_dir());
        let lock = crate::os::FileLock::acquire(&lock_path(home), "another Berth session runs the VM")
            .map_err(|_| SessionError::Running { home: home.root().to_owned(), pid: find(home).map(|r| r.pid).unwrap_or(0) })?;
        // Booting, the accelerator not chosen yet.
        let mut record = SessionRecord {
            pid: std::process::id(),
            state: VmState::Booting { accel: String::new() },
            started_unix_ms: vm::state::now_unix_ms(),
            boot_ms: None,
        };
        save_record(home, &record);
        let failed = |record: &mut SessionRecord, err: &dyn std::fmt::Display| {
            record.state = VmState::Error { reason: err.to_string() };
            save_record(home, record);
        };
        // The TCP listener first: its files and address are checked before anything else.
        let tcp = match tcp_tls {
            Some(tls) => match berth_proto::tls::bind(tls).await {
                Ok(bound) => Some(bound),
                Err(e) => {
                    failed(&mut record, &e);
                    return Err(e.into());
                }
            },
            None => None,
        };
        // Then the sockets: a busy one is an error before anything boots.
        let grpc_socket = home.grpc_socket();
        let docker_socket = home.docker_socket();
        let grpc = match berth_proto::ipc::bind(&grpc_socket, false).await {
            Ok(l) => l,
            Err(e) => {
                failed(&mut record, &e);
                return Err(e.into());
            }
        };
        let docker = match berth_proto::ipc::bind(&docker_socket, true).await {
            Ok(l) => l,
            Err(e) => {
                berth_proto::ipc::remove(&grpc_socket);
                failed(&mut record, &e);
                return Err(e.into());
            }
        };
        let running = vm::start(home, config, |state| {
            // Ready is recorded below, with the boot time, once the sockets serve:
            // a reader that sees Ready must find both.
            if !matches!(state, VmState::Ready { .. }) {
                record.state = state.clone();
                save_record(home, &record);
            }
            on_state(state);
        })
        .await;
        let running = match running {
            Ok(running) => running,
            Err(err) => {
                berth_proto::ipc::remove(&grpc_socket);
                berth_proto::ipc::remove(&docker_socket);
                failed(&mut record, &err);
                return Err(err.into());
            }
        };
        if let Err(e) = crate::docker_context::ensure(&docker_socket) {
            tracing::warn!(error = %e, "cannot write the berth docker context");
        }
        let endpoint = running.endpoint();
        let docker_endpoint = endpoint.with_port(berth_proto::DOCKER_API_VSOCK_PORT);
        let (down, down_rx) = tokio::sync::watch::channel(None);
        let mut tasks = Vec::new();
        let (grpc_endpoint, rx) = (endpoint.clone(), down_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::proxy::serve_unix(grpc, grpc_endpoint, rx).await {
                tracing::error!(error = %e, "the gRPC socket stopped");
            }
        }));
        let (framed_endpoint, rx) = (docker_endpoint.clone(), down_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::proxy::serve_unix_framed(docker, framed_endpoint, rx).await {
                tracing::error!(error = %e, "the Docker API socket stopped");
            }
        }));
        if let Some((listener, acceptor)) = tcp {
            tasks.push(tokio::spawn(crate::proxy::serve_tls_framed(listener, acceptor, docker_endpoint)));
        }
        tasks.push(tokio::spawn(follow_the_host_clock(running.client.clone())));
        // Published ports of containers in the VM, on the host (as Docker Desktop does);
        // last, so a dead VM's forwards can be closed on their own.
        tasks.push(tokio::spawn(crate::port_forward::forward_published_ports(running.client.clone(), endpoint.with_port(berth_proto::PORTS_VSOCK_PORT))));
        record.state = running.ready_state();
        record.boot_ms = Some(u64::try_from(running.boot_time.as_millis()).unwrap_or(u64::MAX));
        save_record(home, &record);
        Ok(Session { home: home.clone(), vm: Some(running), tasks, down, record, sockets: vec![grpc_socket, docker_socket], _lock: lock })
    }

    pub fn vm(&self) -> &RunningVm {
        self.vm.as_ref().expect("a session has its VM until it is shut down")
    }

    pub fn state(&self) -> &VmState {
        &self.record.state
    }

    /// Serves until `stop` resolves (the owner's request) or the VM dies. A dead VM is
    /// reported with the console's tail: in the record, and by the sockets, which from
    /// then on answer with the reason instead of hanging.
    pub async fn run_until(&mut self, stop: impl std::future::Future<Output = ()>) -> Ended {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ended::Asked,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let Some(vm) = self.vm.as_mut() else { return Ended::Asked };
            if let Some(status) = vm.exit_status() {
                let console = vm::tail(&VmPaths::new(&self.home).console_log, 15);
                let reason = format!("the Berth VM stopped unexpectedly (QEMU {status}); run `berth vm start` to start it again. Console tail:\n{console}");
                tracing::error!("{reason}");
                let _ = self.down.send(Some(reason.clone()));
                // Published ports close with the VM.
                if let Some(forwarder) = self.tasks.pop() {
                    forwarder.abort();
                }
                self.record.state = VmState::Error { reason: reason.clone() };
                save_record(&self.home, &self.record);
                return Ended::Crashed(reason);
            }
        }
    }

    /// Stops everything: the listeners and forwards, then the VM (ACPI power button,
    /// quit, kill), its helpers and sockets, and the record.
    pub async fn shutdown(mut self, grace: Duration) -> Result<StopOutcome, SessionError> {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for socket in &self.sockets {
            berth_proto::ipc::remove(socket);
        }
        self.record.state = VmState::Stopping;
        save_record(&self.home, &self.record);
        let stopped = vm::stop(&self.home, grace).await;
        if let Some(vm) = self.vm.take() {
            vm.reap().await;
        }
        let _ = std::fs::remove_file(record_path(&self.home));
        Ok(stopped?)
    }
}

/// The session's state for any Berth process: the record's error if its VM died, else
/// what the VM and the agent say.
pub async fn status(home: &BerthHome) -> VmState {
    match find(home) {
        Some(SessionRecord { state: state @ (VmState::Error { .. } | VmState::Booting { .. } | VmState::Stopping), .. }) => state,
        _ => vm::status(home).await,
    }
}

/// What `request_stop` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A session, which powered its VM off.
    Session,
    /// A VM without a session (or left by one that died), stopped directly.
    Vm(StopOutcome),
    NothingRan,
}

/// Asks the running session to stop and waits until it has; a VM left without a session
/// (or a stale record) is stopped directly.
pub async fn request_stop(home: &BerthHome, grace: Duration) -> Result<Stopped, SessionError> {
    let mut stopped = Stopped::NothingRan;
    if let Some(record) = find(home) {
        stopped = Stopped::Session;
        if record.pid != std::process::id() {
            crate::os::stop_process(record.pid, crate::os::Stop::Ask);
            let deadline = Instant::now() + grace + Duration::from_secs(20);
            while vm::state::process_alive(record.pid, "berth") && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if vm::state::process_alive(record.pid, "berth") {
                return Err(SessionError::Failed {
                    reason: format!("the session (pid {}) did not stop within {:?}", record.pid, grace + Duration::from_secs(20)),
                });
            }
        }
    }
    let _ = std::fs::remove_file(record_path(home));
    match vm::stop(home, grace).await? {
        StopOutcome::NotRunning => Ok(stopped),
        outcome => Ok(Stopped::Vm(outcome)),
    }
}

/// Runs `program args` (a `berth serve`) as a background session of its own and waits
/// until it is ready, its start fails, or `timeout` passes. A session that already runs
/// is attached to (`Ok(false)`); one whose VM died is stopped first.
pub async fn start_detached(home: &BerthHome, program: &Path, args: &[OsString], timeout: Duration) -> Result<bool, SessionError> {
    if let Some(record) = find(home) {
        match record.state {
            VmState::Error { .. } => {
                request_stop(home, Duration::from_secs(5)).await?;
            }
            _ => {
                wait_ready(home, None, timeout).await?;
                return Ok(false);
            }
        }
    }
    std::fs::create_dir_all(home.vm_dir()).map_err(|source| SessionError::Io { what: "create the VM folder".into(), source })?;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(home))
        .map_err(|source| SessionError::Io { what: "open the session log".into(), source })?;
    let log_err = log_file.try_clone().map_err(|source| SessionError::Io { what: "open the session log".into(), source })?;
    let _ = std::fs::remove_file(record_path(home));
    let mut command = std::process::Command::new(program);
    command.args(args).env("BERTH_HOME", home.root()).stdin(std::process::Stdio::null()).stdout(log_file).stderr(log_err);
    // The session leaves the caller's terminal, so closing it does not stop the VM.
    #[cfg(unix)]
    // SAFETY: setsid is async-signal-safe and touches nothing of the parent's.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        // DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP: no console, no Ctrl-C.
        command.creation_flags(0x0000_0008 | 0x0000_0200);
    }
    let mut child = command.spawn().map_err(|source| SessionError::Io { what: format!("run {}", program.display()), source })?;
    let result = wait_ready(home, Some(&mut child), timeout).await;
    if result.is_err() && matches!(child.try_wait(), Ok(None)) {
        let _ = request_stop(home, Duration::from_secs(5)).await;
    }
    // Reaped by init once this process exits; nothing waits for it here.
    drop(child);
    result.map(|()| true)
}

async fn wait_ready(home: &BerthHome, mut child: Option<&mut std::process::Child>, timeout: Duration) -> Result<(), SessionError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(record) = find(home) {
            match record.state {
                VmState::Ready { .. } => return Ok(()),
                VmState::Error { reason } => return Err(SessionError::Failed { reason }),
                _ => {}
            }
        }
        if let Some(child) = child.as_deref_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(SessionError::Failed { reason: format!("the session exited with {status}:\n{}", vm::tail(&log_path(home), 20)) });
            }
        }
        if Instant::now() > deadline {
            return Err(SessionError::Failed { reason: format!("not ready within {timeout:?}; see {}", log_path(home).display()) });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps the guest's clock on the host's: a sync every `BERTH_CLOCK_SYNC_SECS` (30),
/// and at once when the host's wall clock jumps against its monotonic one (it slept, or
/// its time was set).
async fn follow_the_host_clock(client: crate::agent::AgentClient) {
    let period = std::env::var("BERTH_CLOCK_SYNC_SECS").ok().and_then(|s| s.parse().ok()).map(Duration::from_secs).unwrap_or(Duration::from_secs(30));
    let wall_minus_mono = || {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        wall - START.elapsed().as_secs_f64()
    };
    static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    let mut last_sync = Instant::now();
    let mut baseline = wall_minus_mono();
    loop {
        tokio::time::sleep(Duration::from_secs(1).min(period)).await;
        let now = wall_minus_mono();
        let jumped = (now - baseline).abs() > 1.0;
        if !jumped && last_sync.elapsed() < period {
            continue;
        }
        baseline = now;
        last_sync = Instant::now();
        match client.sync_clock(Duration::from_secs(5)).await {
            Ok(answer) if answer.corrected => tracing::info!(offset_ms = answer.offset_nanos / 1_000_000, "the guest clock followed the host's"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot sync the guest clock"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_whose_process_is_gone_is_no_session() {
        let dir = std::env::temp_dir().join(format!("berth-session-find-{}", std::process::id()));
        let home = BerthHome::new(&dir);
        std::fs::create_dir_all(home.vm_dir()).expect("dir");
        save_record(&home, &SessionRecord { pid: u32::MAX - 3, state: VmState::Stopping, started_unix_ms: 0, boot_ms: None });
        assert_eq!(find(&home), None);
        save_record(&home, &SessionRecord { pid: std::process::id(), state: VmState::Stopping, started_unix_ms: 0, boot_ms: None });
        assert!(find(&home).is_some());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
