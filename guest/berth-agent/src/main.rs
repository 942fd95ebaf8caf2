//! berth-agent: the engine's front door. Inside the VM it serves gRPC on AF_VSOCK and on
//! the serial mux (hosts without vsock); run natively on Linux (`berth serve --native`) it
//! serves the same API on a unix socket.

mod serial;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_engine::{Engine, EngineConfig, Placement};
use clap::Parser;
use futures::StreamExt;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "berth-agent", version, about)]
struct Args {
    /// Serve the gRPC API on this AF_VSOCK port (inside the VM).
    #[arg(long)]
    vsock_port: Option<u32>,
    /// Serve the gRPC API on this unix socket (native placement).
    #[arg(long)]
    unix: Option<PathBuf>,
    /// Serve the Docker Engine API on this unix socket (native placement).
    #[arg(long)]
    docker_unix: Option<PathBuf>,
    /// Serve the Docker Engine API on this AF_VSOCK port (inside the VM).
    #[arg(long)]
    docker_vsock_port: Option<u32>,
    /// Also serve the Docker Engine API on this TCP address, with mutual TLS only
    /// (needs --tlscacert, --tlscert and --tlskey, as dockerd's --tlsverify does).
    #[arg(long, requires_all = ["tlscacert", "tlscert", "tlskey"])]
    docker_tcp: Option<std::net::SocketAddr>,
    /// The CA that signs the clients' certificates (PEM).
    #[arg(long, requires = "docker_tcp")]
    tlscacert: Option<PathBuf>,
    /// The server's certificate (PEM).
    #[arg(long, requires = "docker_tcp")]
    tlscert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, requires = "docker_tcp")]
    tlskey: Option<PathBuf>,
    /// Take connections to published ports, forwarded by the host, on this AF_VSOCK
    /// port (inside the VM).
    #[arg(long)]
    ports_vsock_port: Option<u32>,
    /// Also take the vsock ports' connections as streams of the mux on the virtio-serial
    /// port of this name (inside the VM, when the host has no vsock).
    #[arg(long)]
    serial_port: Option<String>,
    /// The engine's state directory.
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    // A hidden mode: the engine runs its own binary for `cp` (stat, archive, extract)
    // inside a container's root (chrooted, so nothing can escape it).
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(berth_engine::container::copy::HELPER_FLAG) {
        let Some(job) = raw.get(2) else {
            eprintln!("berth-agent: {} JOB", berth_engine::container::copy::HELPER_FLAG);
            return ExitCode::from(2);
        };
        return ExitCode::from(u8::try_from(berth_engine::container::copy::helper_main(job)).unwrap_or(1));
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("berth-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Blocking tasks still reading a live exec's or attach's output end only with that
    // process; the engine does not wait for them (containers and their execs outlive it).
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("berth-agent: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let placement = if args.vsock_port.is_some() || args.serial_port.is_some() { Placement::Vm } else { Placement::Native };
    if args.vsock_port.is_none() && args.unix.is_none() {
        return Err("nothing to serve on: give --vsock-port (with --serial-port) or --unix".into());
    }
    // The TLS files are read and the TCP address bound before anything else: a mistake
    // in either leaves no state and no socket behind.
    let docker_tcp = match (args.docker_tcp, &args.tlscacert, &args.tlscert, &args.tlskey) {
        (Some(addr), Some(ca), Some(cert), Some(key)) => {
            Some(berth_proto::tls::bind(&berth_proto::tls::TcpTls { addr, ca: ca.clone(), cert: cert.clone(), key: key.clone() }).await?)
        }
        _ => None,
    };
    std::fs::create_dir_all(&args.root).map_err(|e| format!("cannot create state directory {}: {e}", args.root.display()))?;
    let engine = Engine::open(EngineConfig { placement, root_dir: args.root.clone() })?;

    engine.recover().await;

    // The Docker Engine API: the engine answers it itself; it stops with the process.
    // One API behind every listener, so an exec made through one is seen by all.
    let docker_api = berth_engine::docker::DockerApi::new(engine.clone());
    let _docker = match &args.docker_unix {
        Some(path) => {
            let listener = berth_proto::socket::bind_unix(path).await?;
            tracing::info!(socket = %path.display(), "serving the Docker Engine API on unix socket");
            Some(tokio::spawn(berth_engine::docker::serve(listener, docker_api.clone())))
        }
        None => None,
    };
    let _docker_tcp = docker_tcp.map(|(listener, acceptor)| {
        tracing::info!(addr = ?listener.local_addr(), "serving the Docker Engine API on TCP, clients verified by TLS");
        let api = docker_api.clone();
        tokio::spawn(berth_proto::tls::accept_each(listener, acceptor, move |stream| api.serve_connection(stream)))
    });
    // Over the serial mux a host without vsock reaches the same ports.
    let (mux_grpc_tx, mux_grpc_rx) = tokio::sync::mpsc::unbounded_channel::<MuxConnection>();
    let _serial = args.serial_port.clone().map(|name| {
        let ports: Vec<u32> = [args.vsock_port, args.docker_vsock_port, args.ports_vsock_port].into_iter().flatten().collect();
        let (grpc_port, docker_port, forward_port) = (args.vsock_port, args.docker_vsock_port, args.ports_vsock_port);
        let api = docker_api.clone();
        let on_stream = move |port: u32, stream: tokio_yamux::StreamHandle| {
            if Some(port) == grpc_port {
                let _ = mux_grpc_tx.send(MuxConnection(stream));
            } else if Some(port) == docker_port {
                api.serve_framed_connection(stream);
            } else if Some(port) == forward_port {
                tokio::spawn(forwarded_connection(stream));
            }
        };
        tokio::spawn(serial::serve_forever(name, ports, std::sync::Arc::new(on_stream)))
    });
    let vsock_optional = args.serial_port.is_some();
    let bind_vsock = |port: u32| -> Result<Option<tokio_vsock::VsockListener>, String> {
        match bind_vsock(port) {
            Ok(listener) => Ok(Some(listener)),
            // A VM given only the serial port has no vsock device.
            Err(e) if vsock_optional => {
                tracing::warn!("{e}: serving that port over the serial mux alone");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    };
    let _docker_vsock = match args.docker_vsock_port.map(bind_vsock).transpose()?.flatten() {
        Some(listener) => {
            tracing::info!("serving the Docker Engine API on vsock");
            let api = docker_api.clone();
            // The host's proxy frames its input (half-close over vsock).
            Some(accept_each(listener, move |stream| api.serve_framed_connection(stream)))
        }
        None => None,
    };
    let _ports_vsock = match args.ports_vsock_port.map(bind_vsock).transpose()?.flatten() {
        Some(listener) => {
            tracing::info!("taking forwarded published ports on vsock");
            Some(accept_each(listener, |stream| {
                tokio::spawn(forwarded_connection(stream));
            }))
        }
        None => None,
    };

    // gRPC last: a client that waits for the gRPC socket (the host, the tests) finds
    // every other listener up by then.
    let mut servers = Vec::new();
    if let Some(path) = &args.unix {
        let listener = berth_proto::socket::bind_unix(path).await?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let router = grpc(&engine);
        tracing::info!(socket = %path.display(), "serving gRPC on unix socket");
        servers.push(tokio::spawn(async move { router.serve_with_incoming(incoming).await }));
    }
    if args.serial_port.is_some() {
        let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(mux_grpc_rx).map(Ok::<_, std::io::Error>);
        let router = grpc(&engine);
        servers.push(tokio::spawn(async move { router.serve_with_incoming(incoming).await }));
    }
    if let Some(port) = args.vsock_port {
        if let Some(listener) = bind_vsock(port)? {
            let router = grpc(&engine);
            tracing::info!(port, "serving gRPC on vsock");
            servers.push(tokio::spawn(async move { router.serve_with_incoming(listener.incoming()).await }));
        }
        // A stable line on the console: the host waits for it before its first connect.
        eprintln!("{} {port}", berth_proto::AGENT_LISTENING_MARKER);
    }

    engine.events().publish(
        "engine",
        "ready",
        [("placement".to_owned(), placement.as_str().to_owned()), ("version".to_owned(), berth_engine::system::ENGINE_VERSION.to_owned())],
    );

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut servers = futures::stream::iter(servers).buffer_unordered(4);
    let signal_name = tokio::select! {
        _ = term.recv() => "TERM",
        _ = int.recv() => "INT",
        done = servers.next() => {
            return match done {
                Some(Ok(Ok(()))) | None => Err("a gRPC server stopped unexpectedly".into()),
                Some(Ok(Err(err))) => Err(format!("gRPC server failed: {err}").into()),
                Some(Err(err)) => Err(format!("gRPC server task failed: {err}").into()),
            };
        }
    };
    tracing::info!(signal = signal_name, "stopping");
    engine.events().publish("engine", "stopping", [("signal".to_owned(), signal_name.to_owned())]);
    // Give event subscribers a moment to receive "stopping" before the sockets close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for path in [&args.unix, &args.docker_unix].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Every gRPC service of the engine.
fn grpc(engine: &Engine) -> tonic::transport::server::Router {
    tonic::transport::Server::builder()
        .add_service(engine.system_service())
        .add_service(engine.images_service())
        .add_service(engine.containers_service())
        .add_service(engine.volumes_service())
        .add_service(engine.networks_service())
}

fn bind_vsock(port: u32) -> Result<tokio_vsock::VsockListener, String> {
    tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port))
        .map_err(|e| format!("cannot listen on vsock port {port}: {e}"))
}

/// A gRPC connection over the serial mux.
struct MuxConnection(tokio_yamux::StreamHandle);

impl tonic::transport::server::Connected for MuxConnection {
    type ConnectInfo = ();

    fn connect_info(&self) {}
}

impl tokio::io::AsyncRead for MuxConnection {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for MuxConnection {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Hands every accepted connection to `handle`, until the task is dropped.
fn accept_each(listener: tokio_vsock::VsockListener, handle: impl Fn(tokio_vsock::VsockStream) + Send + 'static) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => handle(stream),
                Err(e) => berth_engine::docker::accept_failed(&e).await,
            }
        }
    })
}

/// One connection the host forwards to a published port: the header names the
/// protocol and the port; the engine's relay serves it on the VM's loopback.
async fn forwarded_connection<S>(mut stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 3];
    if stream.read_exact(&mut header).await.is_err() {
        return;
    }
    let port = u16::from_be_bytes([header[1], header[2]]);
    match header[0] {
        berth_proto::FORWARD_TCP => {
            // The engine's relay listens on the VM's loopback: IPv4, or IPv6 alone for a
            // port published on an IPv6 address only (`-p [::1]:8080:80`).
            let connected = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(target) => Ok(target),
                Err(_) => tokio::net::TcpStream::connect(("::1", port)).await,
            };
            let target = match connected {
                Ok(target) => target,
                Err(e) => {
                    tracing::debug!(port, "forwarded connection refused: {e}");
                    return;
                }
            };
            let _ = target.set_nodelay(true);
            if let Err(e) = berth_proto::halfclose::guest_pipe(stream, target).await {
                tracing::debug!(port, "forwarded connection ended: {e}");
            }
        }
        berth_proto::FORWARD_UDP => {
            if let Err(e) = forwarded_udp(stream, port).await {
                tracing::debug!(port, "forwarded UDP flow ended: {e}");
            }
        }
        other => tracing::debug!(protocol = other, "unknown forwarded protocol"),
    }
}

/// A UDP flow from the host: datagrams prefixed by their length (u16, big-endian),
/// both ways, until the host closes it.
async fn forwarded_udp<S>(stream: S, port: u16) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(("127.0.0.1", port)).await?;
    let (mut wire_in, mut wire_out) = tokio::io::split(stream);
    // Two whole loops: a read cut off half-way would lose its place in the stream.
    let to_container = async {
        let mut datagram = vec![0u8; 65_535];
        loop {
            let len = usize::from(wire_in.read_u16().await?);
            wire_in.read_exact(&mut datagram[..len]).await?;
            // Nobody listening yet is not the flow's end.
            let _ = socket.send(&datagram[..len]).await;
        }
    };
    let to_host = async {
        let mut answer = vec![0u8; 65_535];
        loop {
            let Ok(n) = socket.recv(&mut answer).await else { continue };
            let mut frame = Vec::with_capacity(2 + n);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
            frame.extend_from_slice(&answer[..n]);
            wire_out.write_all(&frame).await?;
        }
    };
    tokio::select! {
        result = to_container => result,
        result = to_host => result,
    }
}
