//! The engine's gRPC client, over whichever transport reaches the agent.

pub mod find;
mod stream;

use std::path::PathBuf;
use std::time::Duration;

use berth_proto::v1::system_client::SystemClient;
use berth_proto::v1::{Event, EventsRequest, InfoRequest, InfoResponse, VersionRequest, VersionResponse};
use berth_proto::ErrorKind;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

pub use stream::AgentStream;

/// How to reach the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEndpoint {
    /// A unix socket: the native engine, or the host's proxy of the VM's engine.
    Unix(PathBuf),
    /// vhost-device-vsock's hybrid unix socket: "CONNECT <port>\n", then "OK <port>\n".
    HybridVsock { uds: PathBuf, port: u32 },
    /// AF_VSOCK, where the host kernel has vhost-vsock.
    Vsock { cid: u32, port: u32 },
    /// A stream of the VM's serial mux (hosts without vsock); only the process that
    /// runs the VM holds the mux, others reach the VM through its proxies.
    Serial { mux: berth_proto::mux::MuxClient, port: u32 },
}

impl AgentEndpoint {
    /// The same VM, another vsock port (a unix socket stays as it is).
    pub fn with_port(&self, port: u32) -> AgentEndpoint {
        match self {
            AgentEndpoint::Unix(path) => AgentEndpoint::Unix(path.clone()),
            AgentEndpoint::HybridVsock { uds, .. } => AgentEndpoint::HybridVsock { uds: uds.clone(), port },
            AgentEndpoint::Vsock { cid, .. } => AgentEndpoint::Vsock { cid: *cid, port },
            AgentEndpoint::Serial { mux, .. } => AgentEndpoint::Serial { mux: mux.clone(), port },
        }
    }
}

impl std::fmt::Display for AgentEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentEndpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            AgentEndpoint::HybridVsock { uds, port } => write!(f, "vsock-hybrid:{}:{port}", uds.display()),
            AgentEndpoint::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            AgentEndpoint::Serial { port, .. } => write!(f, "serial:{port}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to the engine at {endpoint}")]
    Transport { endpoint: String, source: tonic::transport::Error },
    #[error("the engine at {endpoint} did not answer within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
}

impl ConnectError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// An error the engine answered with, or the call failing on the way.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct CallError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub message: String,
}

impl CallError {
    pub fn from_status(operation: &'static str, status: tonic::Status) -> CallError {
        CallError { operation, kind: ErrorKind::from_grpc_code(status.code()), message: status.message().to_owned() }
    }

    fn timeout(operation: &'static str, timeout: Duration) -> CallError {
        CallError { operation, kind: ErrorKind::Unavailable, message: format!("no answer within {timeout:?}") }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A connected client of the engine's `berth.v1` API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    system: SystemClient<Channel>,
    images: berth_proto::v1::images_client::ImagesClient<Channel>,
    containers: berth_proto::v1::containers_client::ContainersClient<Channel>,
    volumes: berth_proto::v1::volumes_client::VolumesClient<Channel>,
    networks: berth_proto::v1::networks_client::NetworksClient<Channel>,
}

impl AgentClient {
    /// Connects to the agent (one attempt, bounded by `timeout`).
    pub async fn connect(endpoint: &AgentEndpoint, timeout: Duration) -> Result<AgentClient, ConnectError> {
        let target = endpoint.clone();
        // The URI is required by tonic but unused: the connector picks the transport.
        let uri = Endpoint::from_static("http://berth-agent").connect_timeout(timeout);
        let channel = uri.connect_with_connector(tower::service_fn(move |_: Uri| {
            let target = target.clone();
            async move { AgentStream::connect(&target).await.map(TokioIo::new) }
        }));
        let channel = match tokio::time::timeout(timeout, channel).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(source)) => return Err(ConnectError::Transport { endpoint: endpoint.to_string(), source }),
            Err(_) => return Err(ConnectError::Timeout { endpoint: endpoint.to_string(), timeout }),
        };
        Ok(AgentClient {
            system: SystemClient::new(channel.clone()),
            images: berth_proto::v1::images_client::ImagesClient::new(channel.clone()),
            containers: berth_proto::v1::containers_client::ContainersClient::new(channel.clone()),
            volumes: berth_proto::v1::volumes_client::VolumesClient::new(channel.clone()),
            networks: berth_proto::v1::networks_client::NetworksClient::new(channel),
        })
    }

    pub async fn version(&self, timeout: Duration) -> Result<VersionResponse, CallError> {
        let mut system = self.system.clone();
        match tokio::time::timeout(timeout, system.version(VersionRequest {})).await {
            Ok(result) => result.map(|r| r.into_inner()).map_err(|s| CallError::from_status("version", s)),
            Err(_) => Err(CallError::timeout("version", timeout)),
        }
    }

    /// Sends the host's time; the guest follows it (see `System.SyncClock`).
    pub async fn sync_clock(&self, timeout: Duration) -> Result<berth_proto::v1::SyncClockResponse, CallError> {
        let mut system = self.system.clone();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)).unwrap_or(0);
        match tokio::time::timeout(timeout, system.sync_clock(berth_proto::v1::SyncClockRequest { unix_nanos: now })).await {
            Ok(result) => result.map(|r| r.into_inner()).map_err(|s| CallError::from_status("sync the clock", s)),
            Err(_) => Err(CallError::timeout("sync the clock", timeout)),
        }
    }

    pub async fn info(&self, timeout: Duration) -> Result<InfoResponse, CallError> {
        let mut system = self.system.clone();
        match tokio::time::timeout(timeout, system.info(InfoRequest {})).await {
            Ok(result) => result.map(|r| r.into_inner()).map_err(|s| CallError::from_status("info", s)),
            Err(_) => Err(CallError::timeout("info", timeout)),
        }
    }

    /// The `berth.v1.Images` client on the same connection.
    pub fn images(&self) -> berth_proto::v1::images_client::ImagesClient<Channel> {
        self.images.clone()
    }

    /// The `berth.v1.Containers` client on the same connection.
    pub fn containers(&self) -> berth_proto::v1::containers_client::ContainersClient<Channel> {
        self.containers.clone()
    }

    /// The `berth.v1.Volumes` client on the same connection.
    pub fn volumes(&self) -> berth_proto::v1::volumes_client::VolumesClient<Channel> {
        self.volumes.clone()
    }

    /// The `berth.v1.Networks` client on the same connection.
    pub fn networks(&self) -> berth_proto::v1::networks_client::NetworksClient<Channel> {
        self.networks.clone()
    }

    /// Subscribes to the engine's events.
    pub async fn events(&self, replay: bool, types: Vec<String>) -> Result<tonic::Streaming<Event>, CallError> {
        let mut system = self.system.clone();
        system.events(EventsRequest { replay, types }).await.map(|r| r.into_inner()).map_err(|s| CallError::from_status("events", s))
    }
}

/// Connects and asks for the version until the engine answers, `alive` says the far
/// side is gone, or `deadline` passes. Retries about every 100 ms.
/// `may_connect` says when the first attempt may be made (e.g. once the guest said on
/// its console that it listens); it is asked before each attempt until it agrees.
pub async fn wait_ready(
    endpoint: &AgentEndpoint,
    deadline: tokio::time::Instant,
    mut alive: impl FnMut() -> Result<(), String>,
    mut may_connect: impl FnMut() -> bool,
) -> Result<(AgentClient, VersionResponse), WaitError> {
    let attempt_timeout = Duration::from_secs(2);
    let mut last = String::from("no attempt made");
    let mut gate_open = false;
    loop {
        if let Err(reason) = alive() {
            return Err(WaitError::Gone { reason });
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(WaitError::Deadline { last });
        }
        if !gate_open {
            gate_open = may_connect();
            if !gate_open {
                last = "the agent has not said it listens yet".to_owned();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let budget = attempt_timeout.min(deadline - now);
        let attempt = tokio::time::Instant::now();
        match AgentClient::connect(endpoint, budget).await {
            Ok(client) => match client.version(budget).await {
                Ok(version) => return Ok((client, version)),
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = error_chain(&err),
        }
        tracing::debug!(took_ms = attempt.elapsed().as_millis() as u64, error = %last, "agent not answering yet");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("the engine did not answer before the deadline (last attempt: {last})")]
    Deadline { last: String },
    #[error("the engine's machine stopped: {reason}")]
    Gone { reason: String },
}

pub use berth_proto::error_chain;
