//! Published ports of containers in the VM, on the host: what Docker Desktop does for
//! `docker run -p 8080:80`. For every port a running container publishes, the host
//! listens on the same address and port (the container's host IP, or all interfaces
//! as docker binds them) and passes traffic to the agent's port-forward vsock port. A
//! vsock connection starts with a 3-byte header (1 = TCP or 2 = UDP, then the port,
//! big-endian); the agent talks to that port on the VM's loopback, where the engine's
//! own relay serves it.
//! - TCP: one vsock connection per connection. The host's input travels in
//!   `berth_proto::halfclose` frames, so a client's half-close reaches the container.
//! - UDP: one vsock connection per client address (a flow), carrying datagrams each
//!   prefixed by its length (`u16`, big-endian); a flow idle for [`UDP_IDLE`] ends.
//!
//! Listeners follow the engine's container events: opened at start, closed at stop.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use berth_proto::{FORWARD_TCP, FORWARD_UDP};

use crate::agent::{AgentClient, AgentEndpoint, AgentStream};

/// A UDP flow without a datagram either way for this long ends.
pub const UDP_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// (protocol, host IP, host port) of a published port.
type Key = (&'static str, String, u16);

/// The listeners, each an accept loop; all stop when this is dropped (also when the
/// forwarding task is aborted).
#[derive(Default)]
struct Listeners(BTreeMap<Key, JoinHandle<()>>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for handle in self.0.values() {
            handle.abort();
        }
    }
}

/// Keeps the host's listeners in step with the published ports of running containers
/// until the engine's event stream ends (the VM stopped).
pub async fn forward_published_ports(client: AgentClient, endpoint: AgentEndpoint) {
    let mut listeners = Listeners::default();
    // Subscribed before the first look, so no start in between is missed.
    let mut events = match client.events(false, vec!["container".to_owned()]).await {
        Ok(events) => events,
        Err(err) => {
            tracing::warn!(error = %err, "published ports are not forwarded: no event stream");
            return;
        }
    };
    reconcile(&client, &endpoint, &mut listeners).await;
    while let Some(event) = events.next().await {
        let Ok(event) = event else { break };
        if matches!(event.action.as_str(), "start" | "die" | "stop" | "kill" | "destroy" | "restart") {
            reconcile(&client, &endpoint, &mut listeners).await;
        }
    }
}

/// The published TCP ports of running containers.
async fn wanted(client: &AgentClient) -> Option<BTreeSet<Key>> {
    let list = client.containers().list(berth_proto::v1::ListContainersRequest { all: false, filters: Vec::new() }).await.ok()?.into_inner();
    Some(
        list.containers
            .iter()
            .filter(|c| c.state == "running")
            .flat_map(|c| c.ports.iter())
            .filter(|p| p.host_port > 0)
            .filter_map(|p| {
                let protocol = match p.protocol.as_str() {
                    "tcp" => "tcp",
                    "udp" => "udp",
                    _ => return None,
                };
                Some((protocol, if p.host_ip.is_empty() { "0.0.0.0".to_owned() } else { p.host_ip.clone() }, u16::try_from(p.host_port).ok()?))
            })
            .collect(),
    )
}

async fn reconcile(client: &AgentClient, endpoint: &AgentEndpoint, listeners: &mut Listeners) {
    let Some(wanted) = wanted(client).await else { return };
    let listeners = &mut listeners.0;
    listeners.retain(|key, handle| {
        let keep = wanted.contains(key) && !handle.is_finished();
        if !keep {
            handle.abort();
            tracing::info!(protocol = key.0, ip = %key.1, port = key.2, "stopped forwarding a published port");
        }
        keep
    });
    for key in wanted {
        if listeners.contains_key(&key) {
            continue;
        }
        let (protocol, ip, port) = (key.0, key.1.clone(), key.2);
        let endpoint = endpoint.clone();
        let Ok(addr) = ip.parse::<std::net::IpAddr>().map(|ip| std::net::SocketAddr::new(ip, port)) else {
            tracing::warn!(%ip, "a published port with an address that is not one");
            continue;
        };
        // `[::]` beside `0.0.0.0` is its own binding (IPv6 only), as in the VM.
        let task = if protocol == "tcp" {
            berth_proto::socket::port_listener(addr).map(|listener| tokio::spawn(accept_loop(listener, endpoint, port)))
        } else {
            berth_proto::socket::port_udp(addr).map(|socket| tokio::spawn(udp_loop(std::sync::Arc::new(socket), endpoint, port)))
        };
        match task {
            Ok(task) => {
                tracing::info!(%protocol, %ip, port, "forwarding a published port to the VM");
                listeners.insert(key, task);
            }
            // A host without IPv6 serves the IPv4 binding alone.
            Err(err) if addr.is_ipv6() && berth_proto::socket::no_ipv6(&err) => {
                tracing::info!(%protocol, %ip, port, "no IPv6 on this host: the published port is served on IPv4");
                listeners.insert(key, tokio::spawn(std::future::pending()));
            }
            // Taken on the host (another program): said, and tried again at the next event.
            Err(err) => tracing::warn!(%protocol, %ip, port, error = %err, "cannot listen on the host for a published port"),
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, endpoint: AgentEndpoint, port: u16) {
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(err) => {
                // Out of descriptors, say: wait instead of spinning.
                tracing::warn!(error = %err, "accepting on a published port");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _ = conn.set_nodelay(true);
            let mut upstream = match AgentStream::connect(&endpoint).await {
                Ok(upstream) => upstream,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot reach the agent for a published port");
                    return;
                }
            };
            let [high, low] = port.to_be_bytes();
            if upstream.write_all(&[FORWARD_TCP, high, low]).await.is_err() {
                return;
            }
            if let Err(err) = berth_proto::halfclose::host_pipe(conn, upstream).await {
                tracing::debug!(error = %err, "forwarded connection ended");
            }
        });
    }
}

/// One published UDP port: a flow (a vsock connection) per client address.
async fn udp_loop(socket: std::sync::Arc<tokio::net::UdpSocket>, endpoint: AgentEndpoint, port: u16) {
    type Flows = std::sync::Arc<std::sync::Mutex<BTreeMap<std::net::SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>>>>;
    let flows: Flows = Flows::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(err) => {
                tracing::debug!(error = %err, "receiving on a published UDP port");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let datagram = buf[..n].to_vec();
        let existing = flows.lock().unwrap_or_else(|p| p.into_inner()).get(&client).cloned();
        let sender = match existing {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let (sender, receiver) = tokio::sync::mpsc::channel(64);
                flows.lock().unwrap_or_else(|p| p.into_inner()).insert(client, sender.clone());
                let (socket, endpoint, flows) = (socket.clone(), endpoint.clone(), flows.clone());
                tokio::spawn(async move {
                    if let Err(err) = udp_flow(receiver, &socket, client, &endpoint, port).await {
                        tracing::debug!(error = %err, %client, "UDP flow ended");
                    }
                    flows.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
                });
                sender
            }
        };
        // A full queue drops the datagram, as a full socket buffer would.
        let _ = sender.try_send(datagram);
    }
}

/// One client's datagrams to the VM and the answers back, until idle.
async fn udp_flow(
    mut outgoing: tokio::sync::mpsc::Receiver<Vec<u8>>,
    socket: &tokio::net::UdpSocket,
    client: std::net::SocketAddr,
    endpoint: &AgentEndpoint,
    port: u16,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let upstream = AgentStream::connect(endpoint).await.map_err(std::io::Error::other)?;
    let (mut up_in, mut up_out) = tokio::io::split(upstream);
    let [high, low] = port.to_be_bytes();
    up_out.write_all(&[FORWARD_UDP, high, low]).await?;
    // Two whole loops, not one select per datagram: a read cut off half-way would
    // lose its place in the stream.
    let last_answer = std::sync::atomic::AtomicU64::new(0);
    let started = tokio::time::Instant::now();
    let to_vm = async {
        loop {
            match tokio::time::timeout(UDP_IDLE, outgoing.recv()).await {
                Ok(Some(datagram)) => {
                    let mut frame = Vec::with_capacity(2 + datagram.len());
                    frame.extend_from_slice(&(datagram.len() as u16).to_be_bytes());
                    frame.extend_from_slice(&datagram);
                    up_out.write_all(&frame).await?;
                }
                Ok(None) => return Ok(()),
                Err(_) => {
                    // Idle both ways: the flow ends.
                    let since_answer = started.elapsed().as_secs().saturating_sub(last_answer.load(std::sync::atomic::Ordering::Relaxed));
                    if since_answer >= UDP_IDLE.as_secs() {
                        return Ok(());
                    }
                }
            }
        }
    };
    let from_vm = async {
        let mut answer = vec![0u8; 65_535];
        loop {
            let len = usize::from(up_in.read_u16().await?);
            up_in.read_exact(&mut answer[..len]).await?;
            socket.send_to(&answer[..len], client).await?;
            last_answer.store(started.elapsed().as_secs(), std::sync::atomic::Ordering::Relaxed);
        }
    };
    tokio::select! {
        result = to_vm => result,
        result = from_vm => result,
    }
}
