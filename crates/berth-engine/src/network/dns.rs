//! The embedded DNS server of a user network, on its gateway's port 53 (containers on
//! the network get it as their nameserver). It answers the names of the containers
//! that share a network with the asker: container names, `--network-alias` aliases
//! (several containers behind one alias give several answers) and short ids. Names
//! on networks the asker is not on are never answered. Everything else is forwarded
//! to the engine's upstream resolvers (`BERTH_DNS_UPSTREAM`, else its resolv.conf).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use tokio::net::UdpSocket;

use super::LiveMap;

/// The resolvers names the engine does not know go to.
pub fn upstream_servers() -> Vec<SocketAddr> {
    let parse = |s: &str| -> Option<SocketAddr> {
        let s = s.trim();
        s.parse::<SocketAddr>().ok().or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
    };
    if let Ok(list) = std::env::var("BERTH_DNS_UPSTREAM") {
        return list.split(',').filter_map(parse).collect();
    }
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default().lines().filter_map(|l| l.strip_prefix("nameserver")).filter_map(parse).collect()
}

#[derive(Debug)]
pub(crate) struct Server {
    socket: Arc<UdpSocket>,
    network_id: String,
    live: LiveMap,
    upstream: Vec<SocketAddr>,
}

impl Server {
    pub(crate) fn bind(gateway: Ipv4Addr, network_id: String, live: LiveMap, upstream: Vec<SocketAddr>) -> std::io::Result<Server> {
        let socket = std::net::UdpSocket::bind((gateway, 53))?;
        socket.set_nonblocking(true)?;
        Ok(Server { socket: Arc::new(UdpSocket::from_std(socket)?), network_id, live, upstream })
    }

    pub async fn run(self) {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = self.socket.recv_from(&mut buf).await else { continue };
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let IpAddr::V4(asker) = from.ip() else { continue };
            match self.answer(&query, asker) {
                Some(reply) => {
                    if let Ok(bytes) = reply.to_vec() {
                        let _ = self.socket.send_to(&bytes, from).await;
                    }
                }
                None => {
                    let (socket, upstream, packet) = (self.socket.clone(), self.upstream.clone(), buf[..n].to_vec());
                    tokio::spawn(async move {
                        let reply = forward(&packet, &upstream).await.or_else(|| failure(&query, ResponseCode::ServFail));
                        if let Some(reply) = reply {
                            let _ = socket.send_to(&reply, from).await;
                        }
                    });
                }
            }
        }
    }

    /// The answer for a name the engine knows; None to forward the query.
    fn answer(&self, query: &Message, asker: Ipv4Addr) -> Option<Message> {
        let question = query.queries().first()?;
        let name = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let ips = resolve(&self.live, &self.network_id, asker, &name);
        if ips.is_empty() {
            return None;
        }
        let mut reply = response_to(query);
        reply.set_authoritative(true).add_query(question.clone());
        if question.query_type() == RecordType::A {
            for ip in ips {
                reply.add_answer(Record::from_rdata(question.name().clone(), 600, RData::A(A(ip))));
            }
        }
        Some(reply)
    }
}

/// The addresses `name` has for a container at `asker` on `network_id`: on every
/// network the asker is on, the containers whose name, alias or short id it is.
pub(super) fn resolve(live: &LiveMap, network_id: &str, asker: Ipv4Addr, name: &str) -> Vec<Ipv4Addr> {
    let live = live.lock().unwrap_or_else(|p| p.into_inner());
    let asker_networks: Vec<String> = live
        .values()
        .find(|l| l.endpoints.iter().any(|(e, _)| e.network_id == network_id && e.ip == asker))
        .map(|l| l.endpoints.iter().map(|(e, _)| e.network_id.clone()).collect())
        .unwrap_or_else(|| vec![network_id.to_owned()]);
    let mut ips = Vec::new();
    for l in live.values() {
        for (endpoint, aliases) in &l.endpoints {
            if !asker_networks.contains(&endpoint.network_id) {
                continue;
            }
            let known = l.name.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
            if known && !ips.contains(&endpoint.ip) {
                ips.push(endpoint.ip);
            }
        }
    }
    ips
}

async fn forward(packet: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else { continue };
        if socket.send_to(packet, server).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, from))) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf)).await {
            if from == *server {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

/// A response header for `query`: its id, opcode and recursion flag.
fn response_to(query: &Message) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    reply
}

fn failure(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = response_to(query);
    reply.set_response_code(code);
    for q in query.queries() {
        reply.add_query(q.clone());
    }
    reply.to_vec().ok()
}
