use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_host::session::{self, Session, SessionError};
use berth_host::settings::Settings;
use berth_host::vm::VmState;

use super::{CommandResult, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run the engine on this host (Linux), without a VM.
    #[arg(long)]
    native: bool,
    /// Also serve the Docker Engine API on this TCP address (e.g. 127.0.0.1:2376), with
    /// mutual TLS only: clients must show a certificate the --tlscacert CA signed, as with
    /// dockerd's --tlsverify. Nothing listens on TCP without it.
    #[arg(long, value_name = "ADDR", requires_all = ["tlscacert", "tlscert", "tlskey"])]
    docker_tcp: Option<std::net::SocketAddr>,
    /// The CA that signs the clients' certificates (PEM).
    #[arg(long, value_name = "FILE", requires = "docker_tcp")]
    tlscacert: Option<PathBuf>,
    /// The server's certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "docker_tcp")]
    tlscert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "docker_tcp")]
    tlskey: Option<PathBuf>,
}

impl Args {
    /// The Docker API's TCP listener, if configured (clap has made sure all four
    /// settings came together).
    fn tcp_tls(&self) -> Option<berth_proto::tls::TcpTls> {
        match (self.docker_tcp, &self.tlscacert, &self.tlscert, &self.tlskey) {
            (Some(addr), Some(ca), Some(cert), Some(key)) => {
                Some(berth_proto::tls::TcpTls { addr, ca: absolute(ca), cert: absolute(cert), key: absolute(key) })
            }
            _ => None,
        }
    }
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let tcp_tls = args.tcp_tls();
    if args.native {
        serve_native(ctx, tcp_tls.as_ref())
    } else {
        serve_vm(ctx, tcp_tls.as_ref()).await
    }
}

/// The native placement is the agent itself, run on this host with unix sockets: the
/// same binary and code as in the VM. It replaces this process, so it stays in the
/// foreground and gets the signals.
#[cfg(not(target_os = "linux"))]
fn serve_native(_ctx: &Context, _tcp_tls: Option<&berth_proto::tls::TcpTls>) -> CommandResult {
    Err("`berth serve --native` needs Linux; use `berth serve` to run the engine in the VM".into())
}

#[cfg(target_os = "linux")]
fn serve_native(ctx: &Context, tcp_tls: Option<&berth_proto::tls::TcpTls>) -> CommandResult {
    use std::os::unix::process::CommandExt;
    let agent = find_agent().ok_or("berth-agent not found next to berth or on PATH (build it with `cargo build -p berth-agent`, or set BERTH_AGENT)")?;
    if let Some(tls) = tcp_tls {
        // Read here too, so a bad file is this command's error before anything is written.
        berth_proto::tls::server_config(tls)?;
    }
    let socket = ctx.home.grpc_socket();
    context_for(&ctx.home.docker_socket());
    eprintln!("serving the native engine on {} (Docker Engine API: {})", socket.display(), ctx.home.docker_socket().display());
    let mut command = std::process::Command::new(&agent);
    // The settings' engine keys, unless the environment already says.
    for (name, value) in Settings::load(&ctx.home)?.engine_env() {
        if std::env::var_os(&name).is_none() {
            command.env(name, value);
        }
    }
    if let Some(tls) = tcp_tls {
        eprintln!("the Docker Engine API also on tcp://{} (mutual TLS)", tls.addr);
        command.arg("--docker-tcp").arg(tls.addr.to_string()).arg("--tlscacert").arg(&tls.ca).arg("--tlscert").arg(&tls.cert).arg("--tlskey").arg(&tls.key);
    }
    let err = command.arg("--unix").arg(&socket).arg("--docker-unix").arg(ctx.home.docker_socket()).arg("--root").arg(ctx.home.engine_dir()).exec();
    Err(format!("cannot run {}: {err}", agent.display()).into())
}

#[cfg(target_os = "linux")]
fn find_agent() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BERTH_AGENT") {
        return Some(PathBuf::from(path));
    }
    let sibling = std::env::current_exe().ok()?.parent()?.join("berth-agent");
    if sibling.is_file() {
        return Some(sibling);
    }
    berth_host::vm::find_program("berth-agent")
}

/// Runs the session (berth_host::session) in the foreground: boots the VM and serves
/// `run/berth.sock`, `run/docker.sock` and published ports until SIGINT or SIGTERM;
/// then powers the VM off. A session already running for this BERTH_HOME is attached
/// to: this command then waits with it and leaves it running.
async fn serve_vm(ctx: &Context, tcp_tls: Option<&berth_proto::tls::TcpTls>) -> CommandResult {
    let config = Settings::load(&ctx.home)?.vm_config(&ctx.home)?;
    let mut stop = StopSignals::new()?;
    let started = Session::start(&ctx.home, &config, tcp_tls, |state| {
        if let VmState::Booting { accel } = state {
            if !accel.is_empty() {
                eprintln!("booting the VM ({accel})...");
            }
        }
    })
    .await;
    let mut session = match started {
        Ok(session) => session,
        Err(SessionError::Running { pid, .. }) => {
            eprintln!("attached to the Berth session already running (pid {pid}); Ctrl-C leaves it running");
            while session::find(&ctx.home).is_some() {
                tokio::select! {
                    _ = stop.recv() => return Ok(ExitCode::SUCCESS),
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let vm = session.vm();
    eprintln!(
        "Berth is ready in {:.2}s: engine {} (kernel {}); gRPC API at {}, Docker Engine API at {}",
        vm.boot_time.as_secs_f64(),
        vm.engine.engine_version,
        vm.engine.kernel_version,
        ctx.home.grpc_socket().display(),
        ctx.home.docker_socket().display()
    );
    context_hint(&ctx.home.docker_socket());
    if let Some(tls) = tcp_tls {
        eprintln!("the Docker Engine API also on tcp://{} (mutual TLS)", tls.addr);
    }
    let asked = stop.recv();
    tokio::pin!(asked);
    if let session::Ended::Crashed(reason) = session.run_until(&mut asked).await {
        // The sockets answer with the reason until this session is stopped.
        eprintln!("{reason}");
        asked.await;
    }
    eprintln!("stopping the VM...");
    session.shutdown(Duration::from_secs(10)).await?;
    Ok(ExitCode::SUCCESS)
}

/// The `berth` docker context, so `docker --context berth` reaches this engine; a
/// failure to write it is reported, not fatal (DOCKER_HOST works without it).
#[cfg(target_os = "linux")]
fn context_for(socket: &std::path::Path) {
    match berth_host::docker_context::ensure(socket) {
        Ok(_) => context_hint(socket),
        Err(e) => eprintln!("warning: cannot write the berth docker context: {e}"),
    }
}

fn context_hint(socket: &std::path::Path) {
    let name = berth_host::docker_context::CONTEXT_NAME;
    eprintln!("docker context \"{name}\": docker --context {name} ... (or DOCKER_HOST={})", berth_proto::ipc::docker_host(socket, cfg!(windows)));
}

/// What asks the session to stop: SIGINT or SIGTERM; on Windows Ctrl-C, Ctrl-Break, the
/// console closing or the user logging off.
struct StopSignals {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
    #[cfg(windows)]
    ctrl_break: tokio::signal::windows::CtrlBreak,
    #[cfg(windows)]
    ctrl_close: tokio::signal::windows::CtrlClose,
    #[cfg(windows)]
    ctrl_shutdown: tokio::signal::windows::CtrlShutdown,
}

impl StopSignals {
    fn new() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals { signals: [signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?] })
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows;
            Ok(StopSignals {
                ctrl_c: windows::ctrl_c()?,
                ctrl_break: windows::ctrl_break()?,
                ctrl_close: windows::ctrl_close()?,
                ctrl_shutdown: windows::ctrl_shutdown()?,
            })
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let [term, int] = &mut self.signals;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(windows)]
        tokio::select! {
            _ = self.ctrl_c.recv() => {}
            _ = self.ctrl_break.recv() => {}
            _ = self.ctrl_close.recv() => {}
            _ = self.ctrl_shutdown.recv() => {}
        }
    }
}
