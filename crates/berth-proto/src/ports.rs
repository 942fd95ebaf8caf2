//! docker's `-p` syntax, shared by the CLI and compose.

use std::net::Ipv4Addr;

/// Parses docker's `-p`: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`.
/// A published port's host side as docker shows it: `0.0.0.0:8080` for every address
/// (an empty IP), `[::]:8080` for IPv6, `127.0.0.1:8081`.
pub fn host_address(ip: &str, port: impl std::fmt::Display) -> String {
    match ip {
        "" => format!("0.0.0.0:{port}"),
        v6 if v6.contains(':') => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    }
}

pub fn parse_publish(spec: &str) -> Result<Vec<crate::v1::PortBinding>, String> {
    let bad = || format!("invalid publish spec {spec:?}: use [ip:][hostPort:]containerPort[/tcp|/udp]");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp") {
        return Err(format!("invalid protocol {protocol:?} in {spec:?}: use tcp or udp"));
    }
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (container, host, ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, ip.trim_start_matches('[').trim_end_matches(']')),
        _ => return Err(bad()),
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(format!("invalid host IP {ip:?} in {spec:?} (only IPv4 is supported)"));
    }
    let range = |s: &str| -> Result<(u16, u16), String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if b < a {
            return Err(format!("invalid port range {s:?}"));
        }
        Ok((a, b))
    };
    let (c_start, c_end) = range(container)?;
    if c_start == 0 {
        return Err(format!("invalid container port 0 in {spec:?}"));
    }
    let count = c_end - c_start;
    let (h_start, h_end) = if host.is_empty() { (0, 0) } else { range(host)? };
    if !host.is_empty() && h_end - h_start != count {
        return Err(format!("the host and container port ranges in {spec:?} differ in size"));
    }
    Ok((0..=count)
        .map(|i| crate::v1::PortBinding {
            container_port: u32::from(c_start + i),
            protocol: protocol.clone(),
            host_ip: ip.to_owned(),
            host_port: if host.is_empty() { 0 } else { u32::from(h_start + i) },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse_like_docker() {
        let one = parse_publish("8080:80").expect("parse");
        assert_eq!((one[0].host_port, one[0].container_port, one[0].protocol.as_str(), one[0].host_ip.as_str()), (8080, 80, "tcp", ""));
        let udp = parse_publish("127.0.0.1:5353:53/udp").expect("parse");
        assert_eq!(udp[0].host_ip, "127.0.0.1");
        assert_eq!(udp[0].protocol, "udp");
        assert_eq!(parse_publish("80").expect("parse")[0].host_port, 0);
        let range = parse_publish("9000-9002:80-82").expect("range");
        assert_eq!(range.iter().map(|b| (b.host_port, b.container_port)).collect::<Vec<_>>(), [(9000, 80), (9001, 81), (9002, 82)]);
        assert!(parse_publish("80/sctp").expect_err("proto").contains("tcp or udp"));
        assert!(parse_publish("9000-9001:80-82").expect_err("sizes").contains("differ"));
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("0").is_err());
    }
}
