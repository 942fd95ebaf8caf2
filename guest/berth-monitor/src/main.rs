//! berth-monitor: one per running container (what conmon is to podman).
//!
//! The engine starts it with the container's directory and a sync pipe on fd 3. It:
//! 1. leaves the engine's session and becomes a child subreaper, so the container's
//!    init is its child and outlives an engine restart;
//! 2. runs `<runtime> create` with the container's stdio on pipes it holds (or, with
//!    `--tty`, takes the pty master over a console socket);
//! 3. reports `created <pid>` (or `error <message>`) on fd 3 and serves `attach.sock`;
//!    the engine then runs `<runtime> start`;
//! 4. copies output to `container.log` (Docker's json-file format) and to attached
//!    clients, and stdin from them;
//! 5. when the container's init exits: drains the output, records `exit.json` (exit
//!    code, signal, OOM kill) atomically, runs `<runtime> delete`, and exits.

mod frame;
mod init;
mod jsonlog;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Args {
    id: String,
    runtime: PathBuf,
    runtime_root: PathBuf,
    bundle: PathBuf,
    dir: PathBuf,
    cgroup: String,
    tty: bool,
    stdin: bool,
    no_pivot: bool,
    /// Rotate `container.log` past this many bytes (0: never).
    log_max_size: u64,
    /// Files kept, the current one included (1: the log is truncated instead).
    log_max_file: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args_os().skip(1);
    while let Some(flag) = it.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = || it.next().map(PathBuf::from).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => args.id = value()?.to_string_lossy().into_owned(),
            "--runtime" => args.runtime = value()?,
            "--runtime-root" => args.runtime_root = value()?,
            "--bundle" => args.bundle = value()?,
            "--dir" => args.dir = value()?,
            "--cgroup" => args.cgroup = value()?.to_string_lossy().into_owned(),
            "--tty" => args.tty = true,
            "--stdin" => args.stdin = true,
            "--no-pivot" => args.no_pivot = true,
            "--log-max-size" => args.log_max_size = value()?.to_string_lossy().parse().map_err(|_| "--log-max-size needs a number of bytes".to_owned())?,
            "--log-max-file" => args.log_max_file = value()?.to_string_lossy().parse().map_err(|_| "--log-max-file needs a number".to_owned())?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.id.is_empty() || args.runtime.as_os_str().is_empty() || args.bundle.as_os_str().is_empty() || args.dir.as_os_str().is_empty() {
        return Err("--id, --runtime, --bundle and --dir are required".to_owned());
    }
    Ok(args)
}

fn main() -> ExitCode {
    // `--init` puts this same (static) binary at PID 1 of a container.
    let raw: Vec<String> = std::env::args().collect();
    let invoked_as_init = raw.first().is_some_and(|a| a.ends_with("init")) || raw.get(1).map(String::as_str) == Some("init");
    if invoked_as_init {
        let rest = if raw.get(1).map(String::as_str) == Some("init") { &raw[2..] } else { &raw[1..] };
        return ExitCode::from(u8::try_from(init::run(rest)).unwrap_or(255));
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("berth-monitor: {err}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: fd 3 is the sync pipe the engine passes; if it is absent we write nowhere.
    let sync = unsafe { sync_pipe() };
    match run(&args, sync) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth-monitor {}: {err}", args.id);
            ExitCode::FAILURE
        }
    }
}

/// Takes fd 3 (close-on-exec from now on) if it is open.
///
/// # Safety
/// fd 3 must not be owned by anything else in this process.
unsafe fn sync_pipe() -> Option<std::fs::File> {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(3, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: as above; setting FD_CLOEXEC keeps the pipe out of the runtime's children.
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the caller guarantees nothing else owns fd 3.
    Some(unsafe { std::fs::File::from_raw_fd(3) })
}

fn report(sync: &mut Option<std::fs::File>, line: &str) {
    if let Some(pipe) = sync.as_mut() {
        let _ = pipe.write_all(format!("{line}\n").as_bytes());
    }
    *sync = None;
}

fn cvt(ret: libc::c_int, what: &str) -> Result<libc::c_int, String> {
    if ret < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(ret)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, "pipe")?;
    // SAFETY: pipe2 succeeded, so both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// A signalfd for SIGCHLD (blocked for normal delivery).
fn sigchld_fd() -> Result<OwnedFd, String> {
    // SAFETY: sigset manipulation on a local, zeroed set; sigprocmask and signalfd take
    // valid pointers to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        cvt(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()), "block SIGCHLD")?;
        let fd = cvt(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK), "signalfd")?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Where the container's stdio goes, from the monitor's side.
#[derive(Debug)]
enum Stdio3 {
    Pipes { stdout: OwnedFd, stderr: OwnedFd, stdin: Option<OwnedFd> },
    Tty { master: OwnedFd },
}

fn run(args: &Args, mut sync: Option<std::fs::File>) -> Result<(), String> {
    // SAFETY: setsid and prctl take no pointers; failure of setsid (already a leader)
    // is harmless.
    unsafe {
        libc::setsid();
        cvt(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "become a subreaper")?;
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    // Sockets are bound by relative name: a unix socket path may not exceed 108 bytes,
    // and the container's directory can be deeper than that.
    std::env::set_current_dir(&args.dir).map_err(|e| format!("enter {}: {e}", args.dir.display()))?;
    std::fs::write("monitor.pid", std::process::id().to_string()).map_err(|e| format!("write monitor.pid: {e}"))?;
    let sigchld = sigchld_fd()?;

    let log_path = args.dir.join("runtime.log");
    let pid_file = args.dir.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut create = Command::new(&args.runtime);
    create.arg("--root").arg(&args.runtime_root).arg("--log").arg(&log_path).arg("--log-format").arg("json");
    create.arg("create").arg("--bundle").arg(&args.bundle).arg("--pid-file").arg(&pid_file);
    if args.no_pivot {
        create.arg("--no-pivot");
    }

    let console_path = PathBuf::from("console.sock");
    let (child_ends, console) = if args.tty {
        let _ = std::fs::remove_file(&console_path);
        let listener = UnixListener::bind(&console_path).map_err(|e| format!("bind the console socket: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("console socket: {e}"))?;
        create.arg("--console-socket").arg(&console_path);
        create.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        (Vec::new(), Some(listener))
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = if args.stdin {
            let (in_r, in_w) = pipe()?;
            set_nonblocking(in_w.as_raw_fd());
            create.stdin(Stdio::from(in_r));
            Some(in_w)
        } else {
            create.stdin(Stdio::null());
            None
        };
        create.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        (vec![Stdio3::Pipes { stdout: out_r, stderr: err_r, stdin }], None)
    };
    create.arg(&args.id);
    let mut child = match create.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("cannot run {}: {e}", args.runtime.display());
            report(&mut sync, &format!("error {message}"));
            return Err(message);
        }
    };
    // Our copies of the container's ends went into `create` and are closed with it.
    drop(create);

    let mut master: Option<OwnedFd> = None;
    let status = loop {
        if let Some(listener) = &console {
            if master.is_none() {
                if let Ok((stream, _)) = listener.accept() {
                    master = Some(receive_fd(&stream)?);
                }
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("wait for the runtime: {e}")),
        }
    };
    if let (Some(listener), None) = (&console, &master) {
        // The runtime may have connected just before it exited.
        if let Ok((stream, _)) = listener.accept() {
            master = Some(receive_fd(&stream)?);
        }
    }
    drop(console);
    let _ = std::fs::remove_file(&console_path);
    if !status.success() {
        let message = runtime_error(&log_path).unwrap_or_else(|| format!("{} create failed ({status})", args.runtime.display()));
        report(&mut sync, &format!("error {}", message.replace('\n', " ")));
        return Err(message);
    }
    let init_pid: i32 =
        std::fs::read_to_string(&pid_file).ok().and_then(|text| text.trim().parse().ok()).ok_or_else(|| "the runtime wrote no pid file".to_owned())?;

    let stdio = match (child_ends.into_iter().next(), master) {
        (Some(pipes), _) => pipes,
        (None, Some(master)) => Stdio3::Tty { master },
        (None, None) => {
            let message = "the runtime sent no console".to_owned();
            report(&mut sync, &format!("error {message}"));
            return Err(message);
        }
    };

    let attach_path = PathBuf::from("attach.sock");
    let _ = std::fs::remove_file(&attach_path);
    let attach = UnixListener::bind(&attach_path).map_err(|e| format!("bind the attach socket: {e}"))?;
    attach.set_nonblocking(true).map_err(|e| format!("attach socket: {e}"))?;
    let log = jsonlog::JsonLog::open(args.dir.join("container.log"), args.log_max_size, args.log_max_file.max(1)).map_err(|e| format!("open the log: {e}"))?;
    report(&mut sync, &format!("created {init_pid}"));

    let mut session = Session { log, clients: Vec::new(), stdio, init_pid, exit: None };
    session.serve(&attach, &sigchld)?;
    let _ = session.log.flush();
    let (code, signal) = session.exit.unwrap_or((255, 0));
    let oom = oom_killed(&args.cgroup);
    drop(session);
    drop(attach);
    let _ = std::fs::remove_file(&attach_path);

    let exit = format!("{{\"exit_code\":{code},\"signal\":{signal},\"oom_killed\":{oom},\"finished_at\":\"{}\"}}\n", jsonlog::now_rfc3339());
    let tmp = args.dir.join("exit.json.tmp");
    std::fs::write(&tmp, exit).map_err(|e| format!("write exit.json: {e}"))?;
    std::fs::rename(&tmp, args.dir.join("exit.json")).map_err(|e| format!("write exit.json: {e}"))?;

    let deleted = Command::new(&args.runtime)
        .arg("--root")
        .arg(&args.runtime_root)
        .args(["delete", "--force", &args.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    reap_all();
    match deleted {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{} delete {}: {status}", args.runtime.display(), args.id)),
        Err(e) => Err(format!("{} delete: {e}", args.runtime.display())),
    }
}

/// The last error the runtime logged (`--log-format json`: one object per line with
/// "msg").
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| l.contains("\"msg\""))?;
    let start = line.find("\"msg\":\"")? + 7;
    let rest = &line[start..];
    let mut message = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => message.push(' '),
                Some(other) => message.push(other),
                None => break,
            },
            c => message.push(c),
        }
    }
    Some(message)
}

fn receive_fd(stream: &UnixStream) -> Result<OwnedFd, String> {
    stream.set_nonblocking(false).map_err(|e| format!("console socket: {e}"))?;
    let mut data = [0u8; 256];
    let mut space = [0u8; 64];
    // SAFETY: msghdr is plain data; every pointer in it refers to the local buffers
    // above, which outlive the recvmsg call.
    unsafe {
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = space.len() as _;
        cvt(libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) as libc::c_int, "receive the console")?;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err("the runtime sent no console fd".to_owned());
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads the cgroup's OOM-kill counter (cgroup v2 `memory.events`, v1
/// `memory.oom_control`).
fn oom_killed(cgroup: &str) -> bool {
    if cgroup.is_empty() {
        return false;
    }
    let rel = cgroup.trim_start_matches('/');
    let candidates = [Path::new("/sys/fs/cgroup").join(rel).join("memory.events"), Path::new("/sys/fs/cgroup/memory").join(rel).join("memory.oom_control")];
    candidates.iter().any(|path| {
        std::fs::read_to_string(path)
            .is_ok_and(|text| text.lines().any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))))
    })
}

fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    input: Vec<u8>,
}

#[derive(Debug)]
struct Session {
    log: jsonlog::JsonLog,
    clients: Vec<Client>,
    stdio: Stdio3,
    init_pid: i32,
    /// (exit code as docker reports it, signal)
    exit: Option<(i32, i32)>,
}

impl Session {
    fn output_fds(&self) -> Vec<(RawFd, u8)> {
        match &self.stdio {
            Stdio3::Pipes { stdout, stderr, .. } => vec![(stdout.as_raw_fd(), 1), (stderr.as_raw_fd(), 2)],
            Stdio3::Tty { master } => vec![(master.as_raw_fd(), 1)],
        }
    }

    fn serve(&mut self, attach: &UnixListener, sigchld: &OwnedFd) -> Result<(), String> {
        let mut open_outputs: Vec<(RawFd, u8)> = self.output_fds();
        for (fd, _) in &open_outputs {
            set_nonblocking(*fd);
        }
        let mut drain_deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if self.exit.is_some() {
                // The container is gone: read what is left, then stop. Orphaned writers
                // (a background process that escaped) get a short grace period.
                if open_outputs.is_empty() || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
                drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_millis(500));
            }
            let mut pollfds = vec![
                libc::pollfd { fd: sigchld.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: attach.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            let polled_outputs = open_outputs.len();
            for (fd, _) in &open_outputs {
                pollfds.push(libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 });
            }
            for client in &self.clients {
                pollfds.push(libc::pollfd { fd: client.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
            let timeout = if self.exit.is_some() { 50 } else { -1 };
            // SAFETY: pollfds is a valid, correctly sized array for the call.
            let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            if ready < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {err}"));
            }
            if pollfds[0].revents != 0 {
                self.on_sigchld(sigchld);
            }
            if pollfds[1].revents != 0 {
                while let Ok((stream, _)) = attach.accept() {
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_nonblocking(false);
                    self.clients.push(Client { stream, input: Vec::new() });
                }
            }
            let outputs_ready: Vec<(RawFd, u8, i16)> = open_outputs.iter().zip(&pollfds[2..]).map(|((fd, s), p)| (*fd, *s, p.revents)).collect();
            for (fd, stream, revents) in outputs_ready {
                if revents == 0 {
                    continue;
                }
                // SAFETY: buf is a valid writable buffer of its length; fd is ours.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    let data = &buf[..n as usize];
                    let _ = self.log.write(stream, data);
                    self.broadcast(stream, data);
                } else if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                    // EOF, or EIO from a pty whose other side closed.
                    open_outputs.retain(|(f, _)| *f != fd);
                }
            }
            let client_events: Vec<i16> = pollfds[2 + polled_outputs..].iter().map(|p| p.revents).collect();
            let mut dropped = Vec::new();
            for (index, revents) in client_events.into_iter().enumerate() {
                if revents != 0 && index < self.clients.len() && !self.on_client(index, &mut buf) {
                    dropped.push(index);
                }
            }
            for index in dropped.into_iter().rev() {
                self.clients.remove(index);
            }
        }
    }

    fn on_sigchld(&mut self, sigchld: &OwnedFd) {
        let mut info = [0u8; 128];
        // SAFETY: reading signalfd records into a correctly sized local buffer.
        while unsafe { libc::read(sigchld.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) } > 0 {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid == self.init_pid {
                self.exit = Some(if libc::WIFEXITED(status) {
                    (libc::WEXITSTATUS(status), 0)
                } else {
                    let signal = libc::WTERMSIG(status);
                    (128 + signal, signal)
                });
                // Nobody can write to the container any more.
                if let Stdio3::Pipes { stdin, .. } = &mut self.stdio {
                    *stdin = None;
                }
            }
        }
    }

    fn broadcast(&mut self, stream: u8, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let frame = frame::encode(stream, data);
        self.clients.retain_mut(|client| client.stream.write_all(&frame).is_ok());
    }

    /// Handles input from a client; false drops it.
    fn on_client(&mut self, index: usize, buf: &mut [u8]) -> bool {
        let n = match self.clients[index].stream.read(buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let client = &mut self.clients[index];
        client.input.extend_from_slice(&buf[..n]);
        let Ok(inputs) = frame::decode(&mut client.input) else { return false };
        for input in inputs {
            match input {
                frame::Input::Stdin(data) => {
                    let fd = match &self.stdio {
                        Stdio3::Pipes { stdin: Some(fd), .. } => fd.as_raw_fd(),
                        Stdio3::Tty { master } => master.as_raw_fd(),
                        Stdio3::Pipes { stdin: None, .. } => continue,
                    };
                    write_fd(fd, &data);
                }
                frame::Input::CloseStdin => match &mut self.stdio {
                    Stdio3::Pipes { stdin, .. } => *stdin = None,
                    // End of input on a terminal is ^D.
                    Stdio3::Tty { master } => write_fd(master.as_raw_fd(), &[4]),
                },
                frame::Input::Resize { rows, cols } => {
                    if let Stdio3::Tty { master } = &self.stdio {
                        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
                        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
                        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
                    }
                }
            }
        }
        true
    }
}

/// Writes all of `data` to a (possibly nonblocking) fd, waiting while it is full.
fn write_fd(fd: RawFd, mut data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !data.is_empty() && Instant::now() < deadline {
        // SAFETY: data is a valid readable buffer of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n > 0 {
            data = &data[n as usize..];
        } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            return;
        }
    }
}
