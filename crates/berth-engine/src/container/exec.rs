//! `exec`: a new process in a running container, through `<runtime> exec --process`.
//! The process joins the container's namespaces, cgroup and seccomp profile; its
//! capabilities are the container's, its user resolved in the container's image.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::create::merge_env;
use super::{caps, rootfs, ContainerError, Containers};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub container: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// A started exec: its stdio (None when detached) and the runtime process to wait on.
#[derive(Debug)]
pub struct ExecStreams {
    pub child: tokio::process::Child,
    /// With a terminal: the pty's master side (output and input both go through it).
    pub pty: Option<std::os::fd::OwnedFd>,
    pub exec_id: String,
    pub container_id: String,
    /// docker's exit code should the runtime fail to start the command: 127 when it is
    /// not in the container, 126 when it cannot be run (looked up before the exec).
    pub if_not_started: Option<i32>,
}

/// What the OCI runtime exits with when it could not start the process itself.
const RUNTIME_FAILED: i32 = 255;

impl ExecStreams {
    /// Waits for the exec'd process; its exit code as docker reports it (128 + a
    /// signal; 126/127 when the command could not be started).
    pub async fn wait(&mut self) -> i32 {
        let code = match self.child.wait().await {
            Ok(status) => status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            }),
            Err(_) => RUNTIME_FAILED,
        };
        match (code, self.if_not_started) {
            (RUNTIME_FAILED, Some(docker)) => docker,
            _ => code,
        }
    }
}

impl Containers {
    pub async fn exec(self: &Arc<Self>, request: ExecRequest) -> Result<ExecStreams, ContainerError> {
        let record = self.find(&request.container)?;
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", record.name)));
        }
        if record.state.status == super::Status::Paused {
            return Err(ContainerError::Conflict(format!("container {} is paused, unpause the container before exec", record.name)));
        }
        if request.cmd.is_empty() {
            return Err(ContainerError::Invalid("no exec command specified".to_owned()));
        }
        if !request.working_dir.is_empty() && !request.working_dir.starts_with('/') {
            return Err(ContainerError::Invalid(format!("the working directory '{}' is invalid, it needs to be an absolute path", request.working_dir)));
        }
        let dir = self.dir(&record.id);
        let user_spec = if request.user.is_empty() { &record.config.user } else { &request.user };
        let user = rootfs::resolve_user_with_groups(&dir.join("rootfs"), user_spec, &record.host_config.extras.group_add)?;
        let hc = &record.host_config;
        let caps = caps::compute(hc.privileged || request.privileged, &hc.cap_add, &hc.cap_drop, &self.facts.held_caps)
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        let no_new_privileges =
            hc.security_opt.iter().any(|o| matches!(super::create::parse_security_opt(o), Ok(super::create::SecurityOpt::NoNewPrivileges(true))));
        let mut env = merge_env(&record.config.env, &request.env);
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.insert(1.min(env.len()), format!("HOSTNAME={}", record.config.hostname));
        }
        let cwd = if !request.working_dir.is_empty() {
            request.working_dir.clone()
        } else if !record.config.working_dir.is_empty() {
            record.config.working_dir.clone()
        } else {
            "/".to_owned()
        };
        let (effective, permitted) = if user.uid == 0 { (caps.clone(), caps.clone()) } else { (Vec::new(), Vec::new()) };
        let mut process = json!({
            "terminal": request.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": request.cmd,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": effective, "permitted": permitted},
            "noNewPrivileges": no_new_privileges,
        });
        if let Some(rlimits) = super::spec::rlimits(&hc.extras) {
            process["rlimits"] = rlimits;
        }
        // Looked up in the container's own view (/proc/PID/root: its volumes too).
        let root = std::path::PathBuf::from(format!("/proc/{}/root", record.state.pid));
        let if_not_started = super::runnable::check(&super::runnable::View::Running(&root), &request.cmd, &env, &cwd).map(|n| n.code);
        let process: oci_spec::runtime::Process = serde_json::from_value(process).map_err(|e| ContainerError::Spec(super::spec::SpecError(e)))?;
        let exec_id = super::new_id();
        let process_file = dir.join(format!("exec-{}.json", &exec_id[..12]));
        std::fs::write(&process_file, serde_json::to_vec(&process).unwrap_or_default()).map_err(ContainerError::io("write the exec process file"))?;
        let mut command = self.runtime_command(&record);
        command.arg("exec").arg("--process").arg(&process_file);
        if request.detach {
            command.arg("--detach");
        }
        // A terminal: the runtime hands the pty's master over a console socket. Its path
        // must fit a unix socket address, so it lives in the temp dir, private to root.
        let console = if request.tty && !request.detach {
            let path = std::env::temp_dir().join(format!("berth-console-{}.sock", &exec_id[..16]));
            let _ = std::fs::remove_file(&path);
            let listener = std::os::unix::net::UnixListener::bind(&path).map_err(ContainerError::io("bind the console socket"))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            command.arg("--tty").arg("--console-socket").arg(&path);
            Some((listener, path))
        } else {
            None
        };
        command.arg(&record.id);
        command
            .stdin(if request.attach_stdin && !request.detach && console.is_none() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
            .stdout(if request.detach || console.is_some() { std::process::Stdio::null() } else { std::process::Stdio::piped() })
            .stderr(std::process::Stdio::piped());
        command.kill_on_drop(true);
        let spawned = command.spawn().map_err(|e| ContainerError::Runtime(format!("cannot run {}: {e}", self.oci_runtime(&record).0.display())));
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                if let Some((_, path)) = &console {
                    let _ = std::fs::remove_file(path);
                }
                return Err(err);
            }
        };
        let pty = match console {
            None => None,
            Some((listener, path)) => {
                let received = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    tokio::task::spawn_blocking(move || listener.accept().map_err(|e| e.to_string()).and_then(|(s, _)| receive_fd(&s))),
                )
                .await;
                let _ = std::fs::remove_file(&path);
                match received {
                    Ok(Ok(Ok(fd))) => Some(fd),
                    other => {
                        let _ = child.start_kill();
                        let mut stderr = String::new();
                        if let Some(mut pipe) = child.stderr.take() {
                            use tokio::io::AsyncReadExt;
                            let _ = pipe.read_to_string(&mut stderr).await;
                        }
                        let reason = match other {
                            Ok(Ok(Err(e))) => e,
                            _ => "the runtime sent no terminal".to_owned(),
                        };
                        return Err(ContainerError::Runtime(format!("{reason}: {}", stderr.trim())));
                    }
                }
            }
        };
        self.publish(&record, "exec_start", &[("execID", exec_id.clone()), ("exec", request.cmd.join(" "))]);
        Ok(ExecStreams { child, pty, exec_id, container_id: record.id, if_not_started })
    }

    /// Removes an exec's process file and announces its end.
    pub(crate) fn exec_done(&self, streams_exec_id: &str, container_id: &str, exit_code: i32) {
        let _ = std::fs::remove_file(self.dir(container_id).join(format!("exec-{}.json", &streams_exec_id[..12])));
        if let Ok(record) = self.find(container_id) {
            self.publish(&record, "exec_die", &[("execID", streams_exec_id.to_owned()), ("exitCode", exit_code.to_string())]);
        }
    }
}

/// How long an ended exec stays inspectable (a client reads the exit code right after
/// the end), and how long one never started is kept. dockerd forgets them too.
const KEEP_ENDED: std::time::Duration = std::time::Duration::from_secs(5 * 60);
const KEEP_UNSTARTED: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// An exec session as both APIs see it (docker's exec instance): made by
/// [`Containers::exec_create`], run by [`Containers::exec_start`], inspectable until
/// it is forgotten.
#[derive(Debug, Clone)]
pub struct ExecInfo {
    pub request: ExecRequest,
    pub container_id: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    /// `DetachKeys` as given (empty: docker's default), which end its stream with a TTY.
    pub detach_keys: String,
}

#[derive(Debug)]
struct ExecEntry {
    info: ExecInfo,
    /// The terminal's master side while it runs (for resize).
    pty: Option<Arc<std::fs::File>>,
    created: std::time::Instant,
    /// When it ended (its exit code is known).
    ended: Option<std::time::Instant>,
}

/// The exec sessions of every container, by id.
#[derive(Debug, Default)]
pub struct ExecSessions {
    entries: Mutex<HashMap<String, ExecEntry>>,
}

impl ExecSessions {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Forgets the execs that ended more than KEEP_ENDED ago and those made but never
/// started for KEEP_UNSTARTED: the table does not grow with every exec ever run.
fn sweep(entries: &mut HashMap<String, ExecEntry>, now: std::time::Instant) {
    entries.retain(|_, e| match e.ended {
        Some(ended) => now.saturating_duration_since(ended) < KEEP_ENDED,
        None => e.info.running || now.saturating_duration_since(e.created) < KEEP_UNSTARTED,
    });
}

/// A started exec session: its process and pipes, its terminal, its detach keys; its
/// end is recorded by [`ExecSession::wait`].
#[derive(Debug)]
pub struct ExecSession {
    pub id: String,
    pub streams: ExecStreams,
    /// With a terminal: its master side (output and input both go through it).
    pub pty: Option<Arc<std::fs::File>>,
    /// The detach keys, parsed: they end a terminal's stream, not the command.
    pub keys: Vec<u8>,
    pub tty: bool,
    containers: Arc<Containers>,
}

impl ExecSession {
    /// Waits for the command's end and records its exit code, so an inspect (the CLI's
    /// next call) finds it; the container's `exec_die` event goes out.
    pub async fn wait(&mut self) -> i32 {
        let code = self.streams.wait().await;
        self.containers.exec_done(&self.streams.exec_id, &self.streams.container_id, code);
        if let Some(entry) = self.containers.execs.entries().get_mut(&self.id) {
            entry.info.running = false;
            entry.info.exit_code = Some(code);
            entry.ended = Some(std::time::Instant::now());
            entry.pty = None;
        }
        code
    }
}

impl Containers {
    /// docker's exec create: checks the container runs (and is not paused), the command
    /// and the detach keys; records the session. Returns its id.
    pub fn exec_create(&self, mut request: ExecRequest, detach_keys: &str) -> Result<String, ContainerError> {
        let record = self.find(&request.container)?;
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", record.id)));
        }
        if record.state.status == super::Status::Paused {
            return Err(ContainerError::Conflict(format!("Container {} is paused, unpause the container before exec", record.name)));
        }
        if request.cmd.is_empty() {
            return Err(ContainerError::Invalid("no exec command specified".to_owned()));
        }
        if super::detach::parse(detach_keys).is_err() {
            return Err(ContainerError::Invalid(format!("Invalid escape keys ({detach_keys}) provided")));
        }
        request.container = record.id.clone();
        let id = super::new_id();
        let now = std::time::Instant::now();
        let info = ExecInfo { request, container_id: record.id, running: false, exit_code: None, detach_keys: detach_keys.to_owned() };
        let mut entries = self.execs.entries();
        sweep(&mut entries, now);
        entries.insert(id.clone(), ExecEntry { info, pty: None, created: now, ended: None });
        Ok(id)
    }

    /// An exec session's state.
    pub fn exec_info(&self, id: &str) -> Result<ExecInfo, ContainerError> {
        self.execs.entries().get(id).map(|e| e.info.clone()).ok_or_else(|| ContainerError::NoExec(id.to_owned()))
    }

    /// Sizes a running exec's terminal (nothing without one).
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let entries = self.execs.entries();
        let entry = entries.get(id).ok_or_else(|| ContainerError::NoExec(id.to_owned()))?;
        if let Some(pty) = &entry.pty {
            resize_terminal(pty, rows, cols);
        }
        Ok(())
    }

    /// Runs a recorded exec once (`detach`: no stdio, it runs on its own).
    pub async fn exec_start(self: &Arc<Self>, id: &str, detach: bool) -> Result<ExecSession, ContainerError> {
        let (mut request, keys) = {
            let mut entries = self.execs.entries();
            let entry = entries.get_mut(id).ok_or_else(|| ContainerError::NoExec(id.to_owned()))?;
            if entry.info.running || entry.info.exit_code.is_some() {
                return Err(ContainerError::Conflict(format!("exec {id} has already been started")));
            }
            entry.info.running = true;
            (entry.info.request.clone(), super::detach::parse(&entry.info.detach_keys).unwrap_or_default())
        };
        request.detach = detach;
        if detach {
            request.attach_stdin = false;
        }
        let tty = request.tty;
        let mut streams = match self.exec(request).await {
            Ok(streams) => streams,
            Err(e) => {
                if let Some(entry) = self.execs.entries().get_mut(id) {
                    entry.info.running = false;
                }
                return Err(e);
            }
        };
        let pty = streams.pty.take().map(std::fs::File::from).map(Arc::new);
        if let Some(entry) = self.execs.entries().get_mut(id) {
            entry.pty = pty.clone();
        }
        Ok(ExecSession { id: id.to_owned(), streams, pty, keys, tty, containers: self.clone() })
    }
}

/// Sets a terminal's size.
pub fn resize_terminal(pty: &std::fs::File, rows: u16, cols: u16) {
    use std::os::fd::AsRawFd;
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the fd is the pty's.
    unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}

/// Receives one file descriptor (SCM_RIGHTS) from the runtime's console socket.
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> Result<std::os::fd::OwnedFd, String> {
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut data = [0u8; 256];
    let mut space = [0u8; 64];
    // SAFETY: msghdr is plain data; every pointer in it refers to the local buffers
    // above, which outlive the recvmsg call; the fd taken from the control message is
    // fresh and becomes ours.
    unsafe {
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = space.len() as _;
        if libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(format!("receive the terminal: {}", std::io::Error::last_os_error()));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err("the runtime sent no terminal".to_owned());
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    fn entry(created: std::time::Instant, running: bool, ended: Option<std::time::Instant>) -> ExecEntry {
        let info = ExecInfo { request: ExecRequest::default(), container_id: String::new(), running, exit_code: ended.map(|_| 0), detach_keys: String::new() };
        ExecEntry { info, pty: None, created, ended }
    }

    #[test]
    fn ended_and_abandoned_execs_are_forgotten_running_ones_kept() {
        let start = std::time::Instant::now();
        let later = start + KEEP_UNSTARTED + std::time::Duration::from_secs(1);
        let mut entries = HashMap::new();
        entries.insert("old-ended".to_owned(), entry(start, false, Some(start)));
        entries.insert("just-ended".to_owned(), entry(start, false, Some(later - std::time::Duration::from_secs(10))));
        entries.insert("running".to_owned(), entry(start, true, None));
        entries.insert("never-started".to_owned(), entry(start, false, None));
        entries.insert("new".to_owned(), entry(later, false, None));
        sweep(&mut entries, later);
        let mut left: Vec<_> = entries.keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["just-ended", "new", "running"]);
    }
}
