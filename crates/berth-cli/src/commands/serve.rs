use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_host::vm::{self, VmConfig, VmState};
use tokio::signal::unix::{signal, SignalKind};

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
            (Some(addr), Some(ca), Some(cert), Some(key)) => Some(berth_proto::tls::TcpTls { addr, ca: absolute(ca), cert: absolute(cert), key: absolute(key) }),
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
fn serve_native(ctx: &Context, tcp_tls: Option<&berth_proto::tls::TcpTls>) -> CommandResult {
    use std::os::unix::process::CommandExt;
    if !cfg!(target_os = "linux") {
        return Err("`berth serve --native` needs Linux; use `berth serve` to run the engine in the VM".into());
    }
    let agent = find_agent().ok_or(
        "berth-agent not found next to berth or on PATH (build it with `cargo build -p berth-agent`, or set BERTH_AGENT)",
    )?;
    if let Some(tls) = tcp_tls {
        // Read here too, so a bad file is this command's error before anything is written.
        berth_proto::tls::server_config(tls)?;
    }
    let socket = ctx.home.grpc_socket();
    context_for(&ctx.home.docker_socket());
    eprintln!("serving the native engine on {} (Docker Engine API: {})", socket.display(), ctx.home.docker_socket().display());
    let mut command = std::process::Command::new(&agent);
    if let Some(tls) = tcp_tls {
        eprintln!("the Docker Engine API also on tcp://{} (mutual TLS)", tls.addr);
        command.arg("--docker-tcp").arg(tls.addr.to_string()).arg("--tlscacert").arg(&tls.ca).arg("--tlscert").arg(&tls.cert).arg("--tlskey").arg(&tls.key);
    }
    let err = command
        .arg("--unix")
        .arg(&socket)
        .arg("--docker-unix")
        .arg(ctx.home.docker_socket())
        .arg("--root")
        .arg(ctx.home.engine_dir())
        .exec();
    Err(format!("cannot run {}: {err}", agent.display()).into())
}

fn find_agent() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BERTH_AGENT") {
        return Some(PathBuf::from(path));
    }
    let sibling = std::env::current_exe().ok()?.parent()?.join("berth-agent");
    if sibling.is_file() {
        return Some(sibling);
    }
    vm::find_program("berth-agent")
}

/// Boots the VM and serves `$BERTH_HOME/run/berth.sock` and `run/docker.sock` by
/// passing bytes to the agent's vsock ports, until SIGINT or SIGTERM; then powers the
/// VM off.
async fn serve_vm(ctx: &Context, tcp_tls: Option<&berth_proto::tls::TcpTls>) -> CommandResult {
    let config = VmConfig::from_env()?;
    // The TCP listener first: its files and address are checked before anything else.
    let tcp_listener = match tcp_tls {
        Some(tls) => Some(berth_proto::tls::bind(tls).await?),
        None => None,
    };
    let socket = ctx.home.grpc_socket();
    let docker_socket = ctx.home.docker_socket();
    context_for(&docker_socket);
    // Bind first: a busy socket is an error before anything boots.
    let listener = berth_proto::socket::bind_unix(&socket).await?;
    let docker_listener = match berth_proto::socket::bind_unix(&docker_socket).await {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e.into());
        }
    };
    let running = match vm::start(&ctx.home, &config, |state| {
        if let VmState::Booting { accel } = state {
            eprintln!("booting the VM ({accel})...");
        }
    })
    .await
    {
        Ok(running) => running,
        Err(err) => {
            let _ = std::fs::remove_file(&socket);
            let _ = std::fs::remove_file(&docker_socket);
            return Err(err.into());
        }
    };
    eprintln!(
        "Berth is ready in {:.2}s: engine {} (kernel {}); gRPC API at {}, Docker Engine API at {}",
        running.boot_time.as_secs_f64(),
        running.engine.engine_version,
        running.engine.kernel_version,
        socket.display(),
        docker_socket.display()
    );
    let endpoint = running.endpoint();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let docker_endpoint = endpoint.with_port(berth_proto::DOCKER_API_VSOCK_PORT);
    // Published ports of containers in the VM, on the host (as Docker Desktop does).
    let forwarding = tokio::spawn(berth_host::port_forward::forward_published_ports(
        running.client.clone(),
        endpoint.with_port(berth_proto::PORTS_VSOCK_PORT),
    ));
    let tcp_serving = tcp_listener.map(|(listener, acceptor)| {
        eprintln!("the Docker Engine API also on tcp://{} (mutual TLS)", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
        tokio::spawn(berth_host::proxy::serve_tls_framed(listener, acceptor, docker_endpoint.clone()))
    });
    let outcome = tokio::select! {
        result = berth_host::proxy::serve_unix(listener, endpoint) => result.map_err(|e| e.to_string()),
        result = berth_host::proxy::serve_unix_framed(docker_listener, docker_endpoint) => result.map_err(|e| e.to_string()),
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
    };
    forwarding.abort();
    if let Some(task) = tcp_serving {
        task.abort();
    }
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&docker_socket);
    eprintln!("stopping the VM...");
    let stopped = vm::stop(&ctx.home, Duration::from_secs(10)).await;
    running.reap().await;
    stopped?;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The `berth` docker context, so `docker --context berth` reaches this engine; a
/// failure to write it is reported, not fatal (DOCKER_HOST works without it).
fn context_for(socket: &std::path::Path) {
    match berth_host::docker_context::ensure(socket) {
        Ok(_) => eprintln!("docker context \"{}\": docker --context {} ... (or DOCKER_HOST=unix://{})", berth_host::docker_context::CONTEXT_NAME, berth_host::docker_context::CONTEXT_NAME, socket.display()),
        Err(e) => eprintln!("warning: cannot write the berth docker context: {e}"),
    }
}
