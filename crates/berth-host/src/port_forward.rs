//! Published TCP ports of containers in the VM, on the host: what Docker Desktop does
//! for `docker run -p 8080:80`. For every port a running container publishes, the host
//! listens on the same address and port (the container's host IP, or all interfaces
//! as docker binds them); each connection goes to the agent's port-forward vsock port
//! with a 3-byte header (1 = TCP, the port, big-endian), and the agent connects to that
//! port on the VM's loopback, where the engine's own relay serves it. The host's input
//! travels in `berth_proto::halfclose` frames, so a client's half-close reaches the
//! container. Listeners follow the engine's container events: opened at start, closed
//! at stop. UDP is not forwarded yet.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::agent::{AgentClient, AgentEndpoint, AgentStream};

/// The header's protocol byte for TCP.
pub const TCP: u8 = 1;

/// (host IP, host port) of a published TCP port.
type Key = (String, u16);

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
    let list = client
        .containers()
        .list(berth_proto::v1::ListContainersRequest { all: false, filters: Vec::new() })
        .await
        .ok()?
        .into_inner();
    Some(
        list.containers
            .iter()
            .filter(|c| c.state == "running")
            .flat_map(|c| c.ports.iter())
            .filter(|p| p.protocol == "tcp" && p.host_port > 0)
            .filter_map(|p| Some((if p.host_ip.is_empty() { "0.0.0.0".to_owned() } else { p.host_ip.clone() }, u16::try_from(p.host_port).ok()?)))
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
            tracing::info!(ip = %key.0, port = key.1, "stopped forwarding a published port");
        }
        keep
    });
    for key in wanted {
        if listeners.contains_key(&key) {
            continue;
        }
        match tokio::net::TcpListener::bind((key.0.as_str(), key.1)).await {
            Ok(listener) => {
                tracing::info!(ip = %key.0, port = key.1, "forwarding a published port to the VM");
                let endpoint = endpoint.clone();
                let port = key.1;
                listeners.insert(key, tokio::spawn(accept_loop(listener, endpoint, port)));
            }
            // Taken on the host (another program): said, and tried again at the next event.
            Err(err) => tracing::warn!(ip = %key.0, port = key.1, error = %err, "cannot listen on the host for a published port"),
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
            if upstream.write_all(&[TCP, high, low]).await.is_err() {
                return;
            }
            if let Err(err) = berth_proto::halfclose::host_pipe(conn, upstream).await {
                tracing::debug!(error = %err, "forwarded connection ended");
            }
        });
    }
}
