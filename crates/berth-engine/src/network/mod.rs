//! Networks with docker's semantics: the predefined `bridge`, `host` and `none`, user
//! bridge networks, addresses handed out from each network's range and recorded in
//! SQLite (`networks.db`, so they survive an engine restart), NAT and isolation in an
//! nftables table, accept rules in iptables' FORWARD chain for hosts where dockerd
//! drops forwarded traffic (`forward.rs`), an embedded DNS server on each user
//! network's gateway, and published ports.
//!
//! A running container's network namespace is a file under `<root>/netns/<id>`, made
//! before the runtime starts; each network it is on is a veth pair from the network's
//! bridge into it (`eth0`, `eth1`, ...). Removing the file ends the namespace and the
//! veth pairs with it.

mod dns;
mod forward;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;
pub mod ports;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_proto::ErrorKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use ipam::Subnet;
pub use ports::{PortBinding, PortMapping};

/// In the VM: the network modules the engine loads on first use (boot does not).
const NET_MODULES_ORDER: &str = "/etc/berth/net-modules.order";

/// Loads the kernel modules `order` lists (files under /lib/modules), dependencies
/// first; one already loaded is fine. No list (a normal host): nothing to do.
fn load_kernel_modules(order: &Path) {
    let Ok(list) = std::fs::read_to_string(order) else { return };
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new("/lib/modules").join(name);
        let Ok(file) = std::fs::File::open(&path) else {
            tracing::warn!("kernel module {} is missing", path.display());
            continue;
        };
        // SAFETY: finit_module takes an fd we own, an empty parameter string and no flags.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), c"".as_ptr(), 0) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EEXIST) {
                tracing::warn!("cannot load kernel module {name}: {err}");
            }
        }
    }
}

/// The default bridge's interface.
pub const DEFAULT_BRIDGE: &str = "berth0";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// "bridge", "host" or "null".
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// CIDR; empty for host and none.
    pub subnet: String,
    pub gateway: String,
    /// CIDR within the subnet addresses are taken from; empty means the whole subnet.
    pub ip_range: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The bridge interface.
    pub bridge: String,
    /// The subnet was the user's (docker allows `--ip` only then).
    pub user_subnet: bool,
}

impl NetworkRecord {
    /// bridge, host and none: made by the engine, never removed.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    fn subnet(&self) -> Option<Subnet> {
        self.subnet.parse().ok()
    }

    fn masquerade(&self) -> bool {
        self.options.get("com.docker.network.bridge.enable_ip_masquerade").is_none_or(|v| v != "false")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameInUse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("network store: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("network store holds a bad record for {0}")]
    Corrupt(String),
    #[error("{0}")]
    System(String),
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::Invalid(_) => ErrorKind::InvalidArgument,
            NetworkError::NameInUse(_) | NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::Db(_) | NetworkError::Corrupt(_) | NetworkError::System(_) => ErrorKind::Internal,
        }
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// One network a container joins, as its record asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    pub network_id: String,
    pub aliases: Vec<String>,
    /// `--ip`; empty: the next free address.
    pub ipv4_address: String,
    /// `--mac-address`; empty: one made from the address (docker's 02:42:...).
    #[serde(default)]
    pub mac_address: String,
}

/// A joined network, as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// Whether the network has an embedded DNS server (user networks).
    pub dns: bool,
}

/// What a container needs to join its networks.
#[derive(Debug, Clone, Default)]
pub struct AttachSpec {
    pub container_id: String,
    pub name: String,
    pub endpoints: Vec<EndpointRequest>,
    pub ports: Vec<PortBinding>,
}

/// A container's networking while it runs.
#[derive(Debug, Clone)]
pub struct Attached {
    pub netns: PathBuf,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PortMapping>,
}

impl Attached {
    /// The resolver a container should use: the first user network's gateway (the
    /// embedded DNS server), else the host's resolvers.
    pub fn nameserver(&self) -> Option<Ipv4Addr> {
        self.endpoints.iter().find(|e| e.dns).map(|e| e.gateway)
    }
}

/// A running container's entry, for DNS and teardown.
#[derive(Debug)]
pub(crate) struct Live {
    name: String,
    netns: PathBuf,
    endpoints: Vec<(Endpoint, Vec<String>)>,
    proxies: Vec<ports::Proxy>,
}

type LiveMap = Arc<Mutex<HashMap<String, Live>>>;

/// The engine's networks.
#[derive(Debug)]
pub struct Networks {
    netns_dir: PathBuf,
    db: Mutex<Connection>,
    live: LiveMap,
    /// The engine namespace's netlink connection (made on first use, inside the runtime).
    host: tokio::sync::OnceCell<rtnetlink::Handle>,
    dns: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Serialises changes to bridges and the nftables table.
    changes: tokio::sync::Mutex<()>,
    /// Set once the engine's namespace has what the networks need (see `ready`).
    ready: tokio::sync::OnceCell<()>,
    upstream: Vec<std::net::SocketAddr>,
    /// Where the networks' events go (create, destroy; containers send connect and
    /// disconnect, which are theirs).
    events: Option<Arc<crate::EventBus>>,
}

impl Networks {
    /// The networks publish their events on `events`, whichever API asked.
    pub fn publishing_to(mut self, events: Arc<crate::EventBus>) -> Networks {
        self.events = Some(events);
        self
    }

    fn publish(&self, record: &NetworkRecord, action: &str) {
        if let Some(events) = &self.events {
            let attributes = [("name", record.name.clone()), ("type", record.driver.clone()), ("id", record.id.clone())];
            events.publish("network", action, attributes.map(|(k, v)| (k.to_owned(), v)));
        }
    }

    /// Opens `<root>/networks.db` and records the predefined networks if missing.
    pub fn open(root: &Path) -> Result<Networks, NetworkError> {
        let netns_dir = root.join("netns");
        std::fs::create_dir_all(&netns_dir).map_err(|e| NetworkError::System(format!("create {}: {e}", netns_dir.display())))?;
        let db = Connection::open(root.join("networks.db"))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS endpoints (network_id TEXT NOT NULL, container_id TEXT NOT NULL, ip TEXT NOT NULL,
                 PRIMARY KEY (network_id, container_id), UNIQUE (network_id, ip));",
        )?;
        let networks = Networks {
            netns_dir,
            db: Mutex::new(db),
            live: Arc::new(Mutex::new(HashMap::new())),
            host: tokio::sync::OnceCell::new(),
            dns: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            ready: tokio::sync::OnceCell::new(),
            upstream: dns::upstream_servers(),
            events: None,
        };
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if networks.get_by_name(name)?.is_some() {
                continue;
            }
            let mut record =
                NetworkRecord { id: crate::ids::new_id(), name: name.into(), driver: driver.into(), created: crate::time::now_rfc3339(), ..Default::default() };
            if name == "bridge" {
                let subnet = match std::env::var("BERTH_BRIDGE_SUBNET") {
                    Ok(s) => s.parse::<Subnet>().map_err(|e| NetworkError::Invalid(format!("BERTH_BRIDGE_SUBNET: {e}")))?,
                    Err(_) => {
                        ipam::pick_subnet(&networks.taken_subnets()?).ok_or_else(|| NetworkError::System("no free subnet for the default bridge".into()))?
                    }
                };
                record.subnet = subnet.to_string();
                record.gateway = subnet.first_host().to_string();
                record.bridge = DEFAULT_BRIDGE.into();
                record.options.insert("com.docker.network.bridge.default_bridge".into(), "true".into());
                record.options.insert("com.docker.network.bridge.name".into(), DEFAULT_BRIDGE.into());
            }
            networks.insert(&record)?;
        }
        Ok(networks)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn host(&self) -> Result<&rtnetlink::Handle, NetworkError> {
        self.host
            .get_or_try_init(|| async {
                let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| NetworkError::System(format!("open netlink: {e}")))?;
                tokio::spawn(connection);
                Ok(handle)
            })
            .await
    }

    fn insert(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        let json = serde_json::to_string(record).map_err(|_| NetworkError::Corrupt(record.id.clone()))?;
        match self.db().execute("INSERT INTO networks (id, name, record) VALUES (?1, ?2, ?3)", params![record.id, record.name, json]) {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(NetworkError::NameInUse(record.name.clone()))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    fn parse(id: &str, json: &str) -> Result<NetworkRecord, NetworkError> {
        serde_json::from_str(json).map_err(|_| NetworkError::Corrupt(id.to_owned()))
    }

    fn get_by_name(&self, name: &str) -> Result<Option<NetworkRecord>, NetworkError> {
        let row: Option<(String, String)> =
            self.db().query_row("SELECT id, record FROM networks WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        row.map(|(id, json)| Networks::parse(&id, &json)).transpose()
    }

    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworkError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT id, record FROM networks ORDER BY name")?;
        let rows: Vec<(String, String)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        rows.iter().map(|(id, json)| Networks::parse(id, json)).collect()
    }

    /// Finds a network by full id, name, or unique id prefix (docker's order).
    pub fn find(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.id == key || n.name == key) {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkRecord> = all.iter().filter(|n| !key.is_empty() && n.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::NotFound(key.to_owned())),
            _ => Err(NetworkError::Invalid(format!("network {key} is ambiguous ({} matches found based on ID prefix)", matches.len()))),
        }
    }

    fn taken_subnets(&self) -> Result<Vec<Subnet>, NetworkError> {
        let mut taken: Vec<Subnet> = self.list()?.iter().filter_map(NetworkRecord::subnet).collect();
        taken.extend(ipam::routed_subnets());
        Ok(taken)
    }

    /// Whether anything needs the networks set up at engine start: user networks (their
    /// DNS servers) or containers still running on a network. Otherwise the engine
    /// leaves the machine's network alone until a container or a network needs it.
    pub fn needed_at_start(&self, running_on_networks: bool) -> Result<bool, NetworkError> {
        Ok(running_on_networks || self.list()?.iter().any(|n| !n.predefined()))
    }

    /// Sets up what the stored networks need in the engine's namespace (once):
    /// forwarding, the bridges, the nftables table, the DNS servers. Bridges vanish
    /// with a VM or a test's namespace, so this runs in every engine's life.
    pub async fn ready(&self) -> Result<(), NetworkError> {
        self.ready.get_or_try_init(|| self.init()).await.map(|_| ())
    }

    async fn init(&self) -> Result<(), NetworkError> {
        let _guard = self.changes.lock().await;
        load_kernel_modules(Path::new(NET_MODULES_ORDER));
        if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
            tracing::warn!("cannot enable IPv4 forwarding (containers will not reach outside): {e}");
        }
        for record in self.list()?.iter().filter(|n| n.driver == "bridge") {
            self.ensure_bridge(record).await?;
        }
        self.apply_rules().await
    }

    async fn ensure_bridge(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        let subnet = record.subnet().ok_or_else(|| NetworkError::Corrupt(record.id.clone()))?;
        let gateway: Ipv4Addr = record.gateway.parse().map_err(|_| NetworkError::Corrupt(record.id.clone()))?;
        link::ensure_bridge(self.host().await?, &record.bridge, gateway, subnet.prefix, ipam::mac_for(gateway)).await.map_err(NetworkError::System)?;
        if record.name != "bridge" {
            let mut servers = self.dns.lock().unwrap_or_else(|p| p.into_inner());
            if servers.get(&record.id).is_none_or(|t| t.is_finished()) {
                let server = dns::Server::bind(gateway, record.id.clone(), self.live.clone(), self.upstream.clone())
                    .map_err(|e| NetworkError::System(format!("start the DNS server on {gateway}:53: {e}")))?;
                servers.insert(record.id.clone(), tokio::spawn(server.run()));
            }
        }
        Ok(())
    }

    async fn apply_rules(&self) -> Result<(), NetworkError> {
        let bridges: Vec<nft::BridgeRules> = self
            .list()?
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .map(|n| nft::BridgeRules { masquerade: n.masquerade(), bridge: n.bridge, subnet: n.subnet, internal: n.internal })
            .collect();
        nft::run(&nft::render(&bridges)).await.map_err(NetworkError::System)?;
        let names: Vec<String> = bridges.into_iter().map(|b| b.bridge).collect();
        forward::sync(&names).await.map_err(NetworkError::System)
    }

    /// `network create`.
    pub async fn create(&self, request: CreateNetwork) -> Result<NetworkRecord, NetworkError> {
        if !crate::volume::valid_name(&request.name) && (request.name.len() != 1 || !request.name.as_bytes()[0].is_ascii_alphanumeric()) {
            return Err(NetworkError::Invalid(format!("invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", request.name)));
        }
        match request.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => return Err(NetworkError::Conflict(format!("only one instance of \"{}\" network is allowed", request.driver))),
            other => return Err(NetworkError::Invalid(format!("plugin \"{other}\" not found: only the bridge driver is supported"))),
        }
        if let Some(key) =
            request.options.keys().find(|k| !matches!(k.as_str(), "com.docker.network.bridge.name" | "com.docker.network.bridge.enable_ip_masquerade"))
        {
            return Err(NetworkError::Invalid(format!(
                "unsupported bridge option {key:?} (supported: com.docker.network.bridge.name, com.docker.network.bridge.enable_ip_masquerade)"
            )));
        }
        self.ready().await?;
        let _guard = self.changes.lock().await;
        if self.get_by_name(&request.name)?.is_some() {
            return Err(NetworkError::NameInUse(request.name));
        }
        let taken = self.taken_subnets()?;
        let user_subnet = !request.subnet.is_empty();
        let subnet = if user_subnet {
            let subnet: Subnet = request.subnet.parse().map_err(NetworkError::Invalid)?;
            if let Some(other) = self.list()?.iter().find(|n| n.subnet().is_some_and(|s| s.overlaps(&subnet))) {
                return Err(NetworkError::Conflict(format!("invalid pool request: pool {subnet} overlaps with the pool of network {}", other.name)));
            }
            subnet
        } else {
            if !request.gateway.is_empty() || !request.ip_range.is_empty() {
                return Err(NetworkError::Invalid("--gateway and --ip-range need --subnet".into()));
            }
            ipam::pick_subnet(&taken).ok_or_else(|| NetworkError::Conflict("all predefined address pools have been fully subnetted".into()))?
        };
        let gateway = if request.gateway.is_empty() {
            subnet.first_host()
        } else {
            let gw: Ipv4Addr = request.gateway.parse().map_err(|_| NetworkError::Invalid(format!("invalid gateway {:?}", request.gateway)))?;
            if !subnet.contains(gw) || gw == subnet.base || gw == subnet.broadcast() {
                return Err(NetworkError::Invalid(format!("gateway {gw} is not a host address of subnet {subnet}")));
            }
            gw
        };
        if !request.ip_range.is_empty() {
            let range: Subnet = request.ip_range.parse().map_err(NetworkError::Invalid)?;
            if !subnet.contains(range.base) || range.prefix < subnet.prefix {
                return Err(NetworkError::Invalid(format!("ip range {range} is not inside subnet {subnet}")));
            }
        }
        let id = crate::ids::new_id();
        let bridge = request.options.get("com.docker.network.bridge.name").cloned().unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ', '"']) {
            return Err(NetworkError::Invalid(format!("invalid bridge name {bridge:?}")));
        }
        if request.options.contains_key("com.docker.network.bridge.name") {
            // A name of the user's choosing must be free: another network's bridge, or
            // an interface of the host's (eth0, docker0, a VPN's), is not Berth's to
            // take over, nor to delete with `network rm`.
            if let Some(other) = self.list()?.into_iter().find(|n| n.bridge == bridge) {
                return Err(NetworkError::Conflict(format!("bridge name {bridge} is already used by network {}", other.name)));
            }
            if link::exists(self.host().await?, &bridge).await.map_err(NetworkError::System)? {
                return Err(NetworkError::Conflict(format!("bridge name {bridge} is taken by an existing interface on this host; choose another name")));
            }
        }
        let record = NetworkRecord {
            id,
            name: request.name,
            driver: "bridge".into(),
            created: crate::time::now_rfc3339(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            ip_range: request.ip_range,
            internal: request.internal,
            attachable: request.attachable,
            labels: request.labels,
            options: request.options,
            bridge,
            user_subnet,
        };
        self.insert(&record)?;
        let made = async {
            self.ensure_bridge(&record).await?;
            self.apply_rules().await
        }
        .await;
        if let Err(e) = made {
            let _ = self.db().execute("DELETE FROM networks WHERE id = ?1", [&record.id]);
            let _ = self.teardown_network(&record).await;
            return Err(e);
        }
        self.publish(&record, "create");
        Ok(record)
    }

    /// The containers running on `network_id`: (container id, endpoint).
    pub fn members(&self, network_id: &str) -> Vec<(String, String, Endpoint)> {
        let live = self.live();
        let mut members: Vec<(String, String, Endpoint)> = live
            .iter()
            .flat_map(|(id, l)| {
                l.endpoints.iter().filter(|(e, _)| e.network_id == network_id).map(|(e, _)| (id.clone(), l.name.clone(), e.clone())).collect::<Vec<_>>()
            })
            .collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members
    }

    /// `network rm`: refused while containers are attached.
    pub async fn remove(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        let record = self.find(key)?;
        if record.predefined() {
            return Err(NetworkError::Conflict(format!("{} is a pre-defined network and cannot be removed", record.name)));
        }
        let _guard = self.changes.lock().await;
        if let Some((id, name, _)) = self.members(&record.id).into_iter().next() {
            return Err(NetworkError::Conflict(format!(
                "error while removing network: network {} has active endpoints (container {name}, {})",
                record.name,
                &id[..12]
            )));
        }
        self.db().execute("DELETE FROM networks WHERE id = ?1", [&record.id])?;
        self.db().execute("DELETE FROM endpoints WHERE network_id = ?1", [&record.id])?;
        self.teardown_network(&record).await?;
        self.apply_rules().await?;
        self.publish(&record, "destroy");
        Ok(record)
    }

    async fn teardown_network(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        if let Some(server) = self.dns.lock().unwrap_or_else(|p| p.into_inner()).remove(&record.id) {
            server.abort();
        }
        link::delete_bridge(self.host().await?, &record.bridge).await.map_err(NetworkError::System)
    }

    /// `network prune`: removes the user networks no container is attached to and
    /// whose labels match every `label` filter (`key` or `key=value`).
    /// Removes every network no container uses that `wanted` picks (the predefined ones
    /// never); returns their names.
    pub async fn prune(&self, wanted: impl Fn(&NetworkRecord) -> bool) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for record in self.list()? {
            if record.predefined() || !self.members(&record.id).is_empty() || !wanted(&record) {
                continue;
            }
            if self.remove(&record.id).await.is_ok() {
                removed.push(record.name);
            }
        }
        Ok(removed)
    }

    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir.join(container_id)
    }

    /// Takes an address for the container on `network` (the asked one, or the lowest
    /// free one) and records it.
    fn allocate(&self, network: &NetworkRecord, container_id: &str, wanted: &str) -> Result<Ipv4Addr, NetworkError> {
        let subnet = network.subnet().ok_or_else(|| NetworkError::Corrupt(network.id.clone()))?;
        let gateway: Ipv4Addr = network.gateway.parse().map_err(|_| NetworkError::Corrupt(network.id.clone()))?;
        let db = self.db();
        let mut stmt = db.prepare("SELECT ip FROM endpoints WHERE network_id = ?1 AND container_id != ?2")?;
        let mut used: BTreeSet<Ipv4Addr> =
            stmt.query_map(params![network.id, container_id], |r| r.get::<_, String>(0))?.filter_map(|r| r.ok().and_then(|s| s.parse().ok())).collect();
        used.insert(gateway);
        let ip = if wanted.is_empty() {
            let range = if network.ip_range.is_empty() { subnet } else { network.ip_range.parse().map_err(NetworkError::Invalid)? };
            ipam::allocate(&subnet, &range, &used).ok_or_else(|| NetworkError::Conflict(format!("no available IPv4 addresses on network {}", network.name)))?
        } else {
            let ip: Ipv4Addr = wanted.parse().map_err(|_| NetworkError::Invalid(format!("invalid IPv4 address {wanted:?}")))?;
            if !subnet.contains(ip) || ip == subnet.base || ip == subnet.broadcast() {
                return Err(NetworkError::Invalid(format!("address {ip} is not in network {}'s subnet {subnet}", network.name)));
            }
            if used.contains(&ip) {
                return Err(NetworkError::Conflict(format!("address {ip} is already in use on network {}", network.name)));
            }
            ip
        };
        db.execute("INSERT OR REPLACE INTO endpoints (network_id, container_id, ip) VALUES (?1, ?2, ?3)", params![network.id, container_id, ip.to_string()])?;
        Ok(ip)
    }

    fn release(&self, network_id: &str, container_id: &str) {
        let _ = self.db().execute("DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2", params![network_id, container_id]);
    }

    /// Gives a container that is about to start its namespace, its networks and its
    /// published ports. On failure nothing is left behind.
    pub async fn attach(&self, spec: &AttachSpec) -> Result<Attached, NetworkError> {
        if !spec.endpoints.is_empty() {
            self.ready().await?;
        }
        let path = self.netns_path(&spec.container_id);
        let _ = netns::remove(&path);
        let inside = netns::create(&path).map_err(|e| NetworkError::System(format!("create the network namespace: {e}")))?;
        let result = self.attach_inner(spec, &path, &inside).await;
        match &result {
            // docker's `connect` for each network a starting container joins.
            Ok(attached) => {
                for endpoint in &attached.endpoints {
                    self.publish_endpoint(endpoint, &spec.container_id, "connect");
                }
            }
            Err(_) => self.detach(&spec.container_id).await,
        }
        result
    }

    /// A network event about one container's endpoint (docker's connect/disconnect:
    /// the network is the actor, the container an attribute).
    fn publish_endpoint(&self, endpoint: &Endpoint, container_id: &str, action: &str) {
        self.publish_membership(&endpoint.network_id, &endpoint.network_name, container_id, action);
    }

    /// docker's `connect`/`disconnect` of a container to a network, the network the
    /// actor: for a container starting or stopping, and for `network connect` and
    /// `disconnect` of one that is not running.
    pub fn publish_membership(&self, network_id: &str, network_name: &str, container_id: &str, action: &str) {
        if let Some(events) = &self.events {
            let attributes = [("container", container_id), ("name", network_name), ("type", "bridge"), ("id", network_id)];
            events.publish("network", action, attributes.map(|(k, v)| (k.to_owned(), v.to_owned())));
        }
    }

    async fn attach_inner(&self, spec: &AttachSpec, path: &Path, inside: &rtnetlink::Handle) -> Result<Attached, NetworkError> {
        link::loopback_up(inside).await.map_err(NetworkError::System)?;
        self.live().insert(spec.container_id.clone(), Live { name: spec.name.clone(), netns: path.to_owned(), endpoints: Vec::new(), proxies: Vec::new() });
        for request in &spec.endpoints {
            self.join(&spec.container_id, path, inside, request).await?;
        }
        let mut mappings = Vec::new();
        let target = self.live().get(&spec.container_id).and_then(|l| l.endpoints.first().map(|(e, _)| e.ip));
        // Without a network (none, or only container ports) there is nothing to relay to,
        // and docker drops the ports too.
        if let Some(target) = target.filter(|_| !spec.ports.is_empty()) {
            let (proxies, mapped) = ports::publish(&spec.ports, target).await.map_err(NetworkError::Conflict)?;
            mappings = mapped;
            if let Some(l) = self.live().get_mut(&spec.container_id) {
                l.proxies = proxies;
            }
        }
        let endpoints = self.live().get(&spec.container_id).map(|l| l.endpoints.iter().map(|(e, _)| e.clone()).collect()).unwrap_or_default();
        Ok(Attached { netns: path.to_owned(), endpoints, ports: mappings })
    }

    /// Adds one network to a container whose namespace exists (start, or `network
    /// connect` on a running container).
    async fn join(&self, container_id: &str, path: &Path, inside: &rtnetlink::Handle, request: &EndpointRequest) -> Result<Endpoint, NetworkError> {
        let network = self.find(&request.network_id)?;
        if network.driver != "bridge" {
            return Err(NetworkError::Invalid(format!("container cannot be connected to network {} ({} driver)", network.name, network.driver)));
        }
        if self.live().get(container_id).is_some_and(|l| l.endpoints.iter().any(|(e, _)| e.network_id == network.id)) {
            return Err(NetworkError::Conflict(format!("endpoint with name {} already exists in network {}", container_id, network.name)));
        }
        let subnet = network.subnet().ok_or_else(|| NetworkError::Corrupt(network.id.clone()))?;
        let gateway: Ipv4Addr = network.gateway.parse().map_err(|_| NetworkError::Corrupt(network.id.clone()))?;
        let chosen_mac = (!request.mac_address.is_empty()).then(|| ipam::parse_mac(&request.mac_address)).transpose().map_err(NetworkError::Invalid)?;
        let ip = self.allocate(&network, container_id, &request.ipv4_address)?;
        let ifname = {
            let live = self.live();
            let used: BTreeSet<String> = live.get(container_id).map(|l| l.endpoints.iter().map(|(e, _)| e.ifname.clone()).collect()).unwrap_or_default();
            (0..).map(|i| format!("eth{i}")).find(|n| !used.contains(n)).unwrap_or_default()
        };
        let mac = chosen_mac.unwrap_or_else(|| ipam::mac_for(ip));
        let host_name = format!("veth{}", &crate::ids::new_id()[..8]);
        let made = async {
            self.ensure_bridge(&network).await?;
            let ns = std::fs::File::open(path).map_err(|e| NetworkError::System(format!("open the network namespace: {e}")))?;
            link::add_veth(self.host().await?, &host_name, &network.bridge, ns.as_raw_fd(), &ifname, mac).await.map_err(NetworkError::System)?;
            // Only the first network that reaches out gives the default route.
            let has_route = self
                .live()
                .get(container_id)
                .is_some_and(|l| l.endpoints.iter().any(|(e, _)| e.gateway != Ipv4Addr::UNSPECIFIED && !self.is_internal(&e.network_id)));
            let route = (!network.internal && !has_route).then_some(gateway);
            if let Err(e) = link::configure(inside, &ifname, ip, subnet.prefix, route).await {
                let _ = link::delete(self.host().await?, &host_name).await;
                return Err(NetworkError::System(e));
            }
            Ok(())
        }
        .await;
        if let Err(e) = made {
            self.release(&network.id, container_id);
            return Err(e);
        }
        let endpoint = Endpoint {
            network_id: network.id.clone(),
            network_name: network.name.clone(),
            ifname,
            ip,
            prefix: subnet.prefix,
            gateway,
            mac: ipam::mac_string(mac),
            dns: network.name != "bridge",
        };
        let mut aliases = request.aliases.clone();
        aliases.push(container_id[..12].to_owned());
        if let Some(l) = self.live().get_mut(container_id) {
            l.endpoints.push((endpoint.clone(), aliases));
        }
        Ok(endpoint)
    }

    fn is_internal(&self, network_id: &str) -> bool {
        self.find(network_id).is_ok_and(|n| n.internal)
    }

    /// `network connect` on a running container.
    pub async fn connect(&self, container_id: &str, request: &EndpointRequest) -> Result<Endpoint, NetworkError> {
        let path = self.live().get(container_id).map(|l| l.netns.clone());
        let Some(path) = path else {
            return Err(NetworkError::Conflict("container is not running with a network namespace of its own".into()));
        };
        self.ready().await?;
        let inside = netns::enter(&path).map_err(|e| NetworkError::System(format!("enter the container's network namespace: {e}")))?;
        self.join(container_id, &path, &inside, request).await
    }

    /// `network disconnect` on a running container.
    pub async fn disconnect(&self, container_id: &str, network_id: &str) -> Result<(), NetworkError> {
        let found = {
            let mut live = self.live();
            let Some(l) = live.get_mut(container_id) else { return Ok(()) };
            let position = l.endpoints.iter().position(|(e, _)| e.network_id == network_id);
            position.map(|i| (l.netns.clone(), l.endpoints.remove(i).0))
        };
        let Some((path, endpoint)) = found else { return Ok(()) };
        self.release(network_id, container_id);
        let inside = netns::enter(&path).map_err(|e| NetworkError::System(format!("enter the container's network namespace: {e}")))?;
        link::delete(&inside, &endpoint.ifname).await.map_err(NetworkError::System)
    }

    /// Takes a container's networking down: ports, DNS names, addresses, namespace.
    pub async fn detach(&self, container_id: &str) {
        let live = self.live().remove(container_id);
        if let Some(live) = &live {
            for proxy in &live.proxies {
                proxy.stop();
            }
            // docker's `disconnect` for each network a stopping container leaves.
            for (endpoint, _) in &live.endpoints {
                self.publish_endpoint(endpoint, container_id, "disconnect");
            }
        }
        let _ = self.db().execute("DELETE FROM endpoints WHERE container_id = ?1", [container_id]);
        if let Err(e) = netns::remove(&self.netns_path(container_id)) {
            tracing::warn!(container = container_id, "cannot remove the network namespace: {e}");
        }
    }

    /// After an engine restart: takes a running container's networking back (its
    /// namespace is still there; the port proxies and DNS names lived in the engine).
    pub async fn adopt(&self, spec: &AttachSpec, endpoints: Vec<Endpoint>, ports_wanted: &[PortMapping]) -> Vec<PortMapping> {
        let path = self.netns_path(&spec.container_id);
        let requested: HashMap<&str, &EndpointRequest> = spec.endpoints.iter().map(|e| (e.network_id.as_str(), e)).collect();
        let endpoints = endpoints
            .into_iter()
            .map(|e| {
                let mut aliases = requested.get(e.network_id.as_str()).map(|r| r.aliases.clone()).unwrap_or_default();
                aliases.push(spec.container_id[..12].to_owned());
                (e, aliases)
            })
            .collect::<Vec<_>>();
        let bindings: Vec<PortBinding> = ports_wanted.iter().map(PortMapping::as_binding).collect();
        let published = match endpoints.first() {
            Some((e, _)) if !bindings.is_empty() => ports::publish(&bindings, e.ip).await,
            _ => Ok((Vec::new(), Vec::new())),
        };
        let (proxies, mapped) = published.unwrap_or_else(|e| {
            tracing::warn!(container = spec.container_id, "cannot publish its ports again: {e}");
            (Vec::new(), Vec::new())
        });
        self.live().insert(spec.container_id.clone(), Live { name: spec.name.clone(), netns: path, endpoints, proxies });
        mapped
    }

    /// A renamed container answers to its new name.
    pub fn rename(&self, container_id: &str, name: &str) {
        if let Some(l) = self.live().get_mut(container_id) {
            l.name = name.to_owned();
        }
    }
}

/// docker's `network inspect` JSON.
pub fn inspect_json(n: &NetworkRecord, networks: &Networks) -> serde_json::Value {
    let mut config = serde_json::Map::new();
    if !n.subnet.is_empty() {
        config.insert("Subnet".into(), json!(n.subnet));
        config.insert("Gateway".into(), json!(n.gateway));
        if !n.ip_range.is_empty() {
            config.insert("IPRange".into(), json!(n.ip_range));
        }
    }
    let containers: serde_json::Map<String, serde_json::Value> = networks
        .members(&n.id)
        .into_iter()
        .map(|(id, name, e)| {
            (
                id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": "",
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": if config.is_empty() { vec![] } else { vec![serde_json::Value::Object(config)] }},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}
