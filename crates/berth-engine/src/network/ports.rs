//! Published ports: the engine listens on the host port and relays each TCP connection
//! or UDP flow to the container's address (docker's userland proxy). Listening in the
//! engine makes a port that is taken fail at `start` with a clear error, serves
//! loopback (which NAT cannot), and lets other containers reach a published port
//! through the gateway (hairpin). The source address the container sees is the
//! gateway's.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// `-p [ip:]hostPort:containerPort[/proto]`; `host_port` 0 takes a free one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub container_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
    /// Empty: every address.
    pub host_ip: String,
    pub host_port: u16,
}

/// A port as published: the host port is the one actually bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
}

impl PortMapping {
    pub fn as_binding(&self) -> PortBinding {
        PortBinding { container_port: self.container_port, protocol: self.protocol.clone(), host_ip: self.host_ip.clone(), host_port: self.host_port }
    }

    /// `0.0.0.0:8080->80/tcp` (or `[::]:8080->80/tcp`), as `docker ps` shows it.
    pub fn display(&self) -> String {
        format!("{}->{}/{}", berth_proto::ports::host_address(&self.host_ip, self.host_port), self.container_port, self.protocol)
    }
}

/// A running relay; stopping it closes the port and every relayed connection.
#[derive(Debug)]
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds every port and starts relaying to `target`. Either all are published or none
/// is (ports already bound are released). A port on every address (no host IP) is
/// bound on `0.0.0.0` and, where the machine has IPv6, on `[::]` too, with a mapping
/// for each, as docker publishes it.
pub async fn publish(bindings: &[PortBinding], target: Ipv4Addr) -> Result<(Vec<Proxy>, Vec<PortMapping>), String> {
    let mut proxies = Vec::new();
    let mut mapped = Vec::new();
    // A `[::]` mapping made beside an all-addresses one (given back by an engine that
    // adopts a running container) comes again with it.
    let companion = |b: &PortBinding| {
        b.host_ip == "::"
            && b.host_port != 0
            && bindings.iter().any(|o| o.host_ip.is_empty() && o.host_port == b.host_port && o.protocol == b.protocol && o.container_port == b.container_port)
    };
    for b in bindings.iter().filter(|b| !companion(b)) {
        let ip: IpAddr =
            if b.host_ip.is_empty() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { b.host_ip.parse().map_err(|_| format!("invalid host IP {:?}", b.host_ip))? };
        let to = SocketAddr::new(IpAddr::V4(target), b.container_port);
        let (proxy, port) = bind_one(SocketAddr::new(ip, b.host_port), &b.protocol, to)?;
        proxies.push(proxy);
        mapped.push(PortMapping { container_port: b.container_port, protocol: b.protocol.clone(), host_ip: b.host_ip.clone(), host_port: port });
        if b.host_ip.is_empty() {
            match bind_one(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port), &b.protocol, to) {
                Ok((proxy, _)) => {
                    proxies.push(proxy);
                    mapped.push(PortMapping { container_port: b.container_port, protocol: b.protocol.clone(), host_ip: "::".to_owned(), host_port: port });
                }
                Err(BindFailure::NoIpv6) => {}
                Err(failure) => return Err(failure.to_string()),
            }
        }
    }
    Ok((proxies, mapped))
}

enum BindFailure {
    NoIpv6,
    Failed(String),
}

impl std::fmt::Display for BindFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindFailure::NoIpv6 => f.write_str("this machine has no IPv6"),
            BindFailure::Failed(message) => f.write_str(message),
        }
    }
}

impl From<BindFailure> for String {
    fn from(failure: BindFailure) -> String {
        failure.to_string()
    }
}

/// Binds one address and starts its relay; the port actually bound.
fn bind_one(at: SocketAddr, protocol: &str, to: SocketAddr) -> Result<(Proxy, u16), BindFailure> {
    let failed = |e: std::io::Error| {
        if at.is_ipv6() && berth_proto::socket::no_ipv6(&e) {
            BindFailure::NoIpv6
        } else if e.kind() == std::io::ErrorKind::AddrInUse {
            BindFailure::Failed(format!("Bind for {at} failed: port is already allocated"))
        } else {
            BindFailure::Failed(format!("cannot publish {at}/{protocol}: {e}"))
        }
    };
    if protocol == "udp" {
        let socket = berth_proto::socket::port_udp(at).map_err(failed)?;
        let port = socket.local_addr().map_or(at.port(), |a| a.port());
        Ok((Proxy { task: tokio::spawn(relay_udp(socket, to)) }, port))
    } else {
        let listener = berth_proto::socket::port_listener(at).map_err(failed)?;
        let port = listener.local_addr().map_or(at.port(), |a| a.port());
        Ok((Proxy { task: tokio::spawn(relay_tcp(listener, to)) }, port))
    }
}

async fn relay_tcp(listener: TcpListener, to: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: the next accept would fail at once.
                        tracing::warn!("accepting on a published port: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                connections.spawn(async move {
                    let Ok(upstream) = TcpStream::connect(to).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let _ = tokio::join!(splice_one_way(&client, &upstream), splice_one_way(&upstream, &client));
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Relays `from` to `to` through a pipe with splice(2), so the bytes never enter the
/// engine's memory; at the end of `from`, shuts down `to`'s write side.
async fn splice_one_way(from: &TcpStream, to: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use tokio::io::Interest;
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded; both fds are fresh and ours.
    let (pipe_read, pipe_write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A larger pipe moves more per call; the default (64 KiB) is fine if refused.
    // SAFETY: fcntl on a pipe fd we own.
    unsafe { libc::fcntl(pipe_write.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    let splice = |input: i32, output: i32, len: usize| -> std::io::Result<usize> {
        // SAFETY: plain fds, null offsets (neither end is seekable).
        let n = unsafe { libc::splice(input, std::ptr::null_mut(), output, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    };
    let mut buffered = 0usize;
    loop {
        if buffered == 0 {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || splice(from.as_raw_fd(), pipe_write.as_raw_fd(), 1 << 20)) {
                Ok(0) => {
                    // SAFETY: shutdown on a socket fd we borrow.
                    unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
                    return Ok(());
                }
                Ok(n) => buffered = n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    // SAFETY: as above.
                    unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
                    return Err(e);
                }
            }
        }
        while buffered > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || splice(pipe_read.as_raw_fd(), to.as_raw_fd(), buffered)) {
                Ok(n) => buffered -= n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// UDP: one socket towards the container per client address, replies relayed back;
/// a flow idle for two minutes is forgotten.
async fn relay_udp(socket: UdpSocket, to: SocketAddr) {
    let socket = Arc::new(socket);
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut replies = tokio::task::JoinSet::new();
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                let flow = match flows.get(&client) {
                    Some(flow) => flow.clone(),
                    None => {
                        let Ok(flow) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else { continue };
                        if flow.connect(to).await.is_err() {
                            continue;
                        }
                        let flow = Arc::new(flow);
                        flows.insert(client, flow.clone());
                        let (back, inbound, ended_tx) = (socket.clone(), flow.clone(), ended_tx.clone());
                        replies.spawn(async move {
                            let mut buf = vec![0u8; 65536];
                            while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(120), inbound.recv(&mut buf)).await {
                                let _ = back.send_to(&buf[..n], client).await;
                            }
                            let _ = ended_tx.send(client);
                        });
                        flow
                    }
                };
                let _ = flow.send(&buf[..n]).await;
            }
            Some(client) = ended.recv() => { flows.remove(&client); }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_show_like_docker_ps() {
        let shown = PortMapping { container_port: 80, protocol: "tcp".into(), host_ip: String::new(), host_port: 8080 };
        assert_eq!(shown.display(), "0.0.0.0:8080->80/tcp");
    }
}
