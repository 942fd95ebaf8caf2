//! The Inspect panels of containers and networks: docker's inspect JSON, as the engine
//! answers it, read into the rows the panels show.

use berth_proto::v1::{ContainerRef, NetworkRef};
use serde_json::Value;

use super::engine::Engine;
use super::rows::{ContainerDetail, EndpointRow, MountRow, NetworkDetail, PortRow};
use super::{status, UiError};
use crate::ErrorKind;

fn parse(what: &str, json: &str) -> Result<Value, UiError> {
    serde_json::from_str(json).map_err(|e| UiError::new(ErrorKind::Internal, format!("{what}: the engine's inspect JSON: {e}")))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn labels(v: &Value) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect()).unwrap_or_default();
    labels.sort();
    labels
}

/// `10.88.0.2` with a prefix length of 16 is `10.88.0.2/16`.
fn with_prefix(address: &Value, prefix: &Value) -> String {
    match (address.as_str().filter(|a| !a.is_empty()), prefix.as_u64()) {
        (Some(a), Some(p)) if p > 0 => format!("{a}/{p}"),
        (Some(a), _) => a.to_owned(),
        (None, _) => String::new(),
    }
}

/// A container's docker inspect JSON, read into its panel.
pub fn container_detail(inspect: &Value) -> ContainerDetail {
    let config = &inspect["Config"];
    let command: Vec<String> = std::iter::once(&inspect["Path"])
        .chain(inspect["Args"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect();
    let mounts = inspect["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| MountRow {
            kind: text(&m["Type"]),
            source: m["Name"].as_str().filter(|n| !n.is_empty()).map_or_else(|| text(&m["Source"]), str::to_owned),
            target: text(&m["Destination"]),
            read_only: m["RW"].as_bool() == Some(false),
        })
        .collect();
    let mut ports: Vec<PortRow> = Vec::new();
    for (key, bindings) in inspect["NetworkSettings"]["Ports"].as_object().into_iter().flatten() {
        let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
        let container_port = port.parse().unwrap_or(0);
        for b in bindings.as_array().into_iter().flatten() {
            ports.push(PortRow {
                host_ip: text(&b["HostIp"]),
                host_port: text(&b["HostPort"]).parse().unwrap_or(0),
                container_port,
                protocol: protocol.to_owned(),
            });
        }
    }
    ports.sort_by(|a, b| (a.container_port, &a.protocol, a.host_port).cmp(&(b.container_port, &b.protocol, b.host_port)));
    let mut networks: Vec<EndpointRow> = inspect["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, n)| EndpointRow { name: name.clone(), ipv4: with_prefix(&n["IPAddress"], &n["IPPrefixLen"]), mac: text(&n["MacAddress"]) })
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    ContainerDetail {
        id: text(&inspect["Id"]),
        name: text(&inspect["Name"]).trim_start_matches('/').to_owned(),
        image: text(&config["Image"]),
        command: command.join(" "),
        created: text(&inspect["Created"]),
        restart: inspect["HostConfig"]["RestartPolicy"]["Name"].as_str().filter(|r| !r.is_empty()).unwrap_or("no").to_owned(),
        env: config["Env"].as_array().into_iter().flatten().map(text).collect(),
        mounts,
        ports,
        networks,
        labels: labels(&config["Labels"]),
    }
}

/// A network's docker inspect JSON, read into its panel.
pub fn network_detail(inspect: &Value) -> NetworkDetail {
    let ipam = &inspect["IPAM"]["Config"][0];
    let mut containers: Vec<EndpointRow> = inspect["Containers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, c)| EndpointRow { name: text(&c["Name"]), ipv4: text(&c["IPv4Address"]), mac: text(&c["MacAddress"]) })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    NetworkDetail {
        id: text(&inspect["Id"]),
        name: text(&inspect["Name"]),
        driver: text(&inspect["Driver"]),
        subnet: text(&ipam["Subnet"]),
        gateway: text(&ipam["Gateway"]),
        internal: inspect["Internal"].as_bool().unwrap_or(false),
        created: text(&inspect["Created"]),
        labels: labels(&inspect["Labels"]),
        containers,
    }
}

impl Engine {
    pub async fn inspect_container(&self, id: &str) -> Result<ContainerDetail, UiError> {
        let details = self.client().containers().inspect(ContainerRef { id: id.to_owned() }).await.map_err(status("inspect"))?.into_inner();
        Ok(container_detail(&parse(id, &details.inspect_json)?))
    }

    pub async fn inspect_network(&self, name: &str) -> Result<NetworkDetail, UiError> {
        let network = self.client().networks().inspect(NetworkRef { id: name.to_owned() }).await.map_err(status("inspect"))?.into_inner();
        Ok(network_detail(&parse(name, &network.inspect_json)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_container_reads_into_its_panel() {
        let inspect = json!({
            "Id": "abc", "Name": "/web", "Path": "httpd", "Args": ["-f", "-p", "80"], "Created": "2026-12-04T10:00:00Z",
            "Config": {"Image": "busybox", "Env": ["PATH=/bin", "A=b"], "Labels": {"z": "1", "a": "2"}},
            "HostConfig": {"RestartPolicy": {"Name": ""}},
            "Mounts": [
                {"Type": "volume", "Name": "data", "Source": "/var/lib/berth/volumes/data/_data", "Destination": "/data", "RW": true},
                {"Type": "bind", "Source": "/home/me/src", "Destination": "/app", "RW": false}
            ],
            "NetworkSettings": {
                "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": null},
                "Networks": {"bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02"}}
            }
        });
        let d = container_detail(&inspect);
        assert_eq!((d.name.as_str(), d.command.as_str(), d.restart.as_str()), ("web", "httpd -f -p 80", "no"));
        assert_eq!(d.env, ["PATH=/bin", "A=b"]);
        assert_eq!(d.labels, [("a".to_owned(), "2".to_owned()), ("z".to_owned(), "1".to_owned())]);
        assert_eq!(d.mounts[0], MountRow { kind: "volume".into(), source: "data".into(), target: "/data".into(), read_only: false });
        assert_eq!(d.mounts[1], MountRow { kind: "bind".into(), source: "/home/me/src".into(), target: "/app".into(), read_only: true });
        // An exposed port with no binding is not a published one.
        assert_eq!(d.ports, [PortRow { host_ip: "127.0.0.1".into(), host_port: 8080, container_port: 80, protocol: "tcp".into() }]);
        assert_eq!(d.networks, [EndpointRow { name: "bridge".into(), ipv4: "172.17.0.2/16".into(), mac: "02:42:ac:11:00:02".into() }]);
    }

    #[test]
    fn a_network_reads_into_its_panel_with_its_containers_sorted() {
        let inspect = json!({
            "Id": "n1", "Name": "shop", "Driver": "bridge", "Internal": true, "Created": "2026-12-04T10:00:00Z",
            "IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]},
            "Labels": {},
            "Containers": {
                "c2": {"Name": "web", "IPv4Address": "10.9.0.3/24", "MacAddress": "02:00:00:00:00:03"},
                "c1": {"Name": "db", "IPv4Address": "10.9.0.2/24", "MacAddress": "02:00:00:00:00:02"}
            }
        });
        let d = network_detail(&inspect);
        assert_eq!((d.subnet.as_str(), d.gateway.as_str(), d.internal), ("10.9.0.0/24", "10.9.0.1", true));
        let names: Vec<&str> = d.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        assert_eq!(d.containers[0].ipv4, "10.9.0.2/24");
    }

    #[test]
    fn a_stopped_container_has_no_addresses_and_no_ports() {
        let d = container_detail(
            &json!({"Name": "/idle", "Path": "sh", "Args": [], "NetworkSettings": {"Ports": {}, "Networks": {"bridge": {"IPAddress": "", "MacAddress": ""}}}}),
        );
        assert_eq!(d.command, "sh");
        assert!(d.ports.is_empty());
        assert_eq!(d.networks[0].ipv4, "");
    }
}
