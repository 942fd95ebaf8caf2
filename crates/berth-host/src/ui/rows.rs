//! What the app's views show, one row type per list, shaped for the UI (sizes in bytes,
//! times in unix seconds, compose grouping read from the labels).

use serde::{Deserialize, Serialize};

/// A published port of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct PortRow {
    pub host_ip: String,
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// A container in the Containers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: String,
    /// created, running, paused, restarting, exited, dead.
    pub state: String,
    /// "Up 3 seconds", "Exited (0) 2 minutes ago".
    pub status: String,
    pub created: i64,
    pub ports: Vec<PortRow>,
    pub networks: Vec<String>,
    /// The compose project and service (from docker-compose's labels), if any.
    pub project: Option<String>,
    pub service: Option<String>,
}

/// An image in the Images list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ImageRow {
    pub id: String,
    /// `repo:tag`; empty for a dangling image.
    pub tags: Vec<String>,
    pub size: u64,
    /// RFC 3339, as the image says.
    pub created: String,
    /// How many containers (running or not) use it.
    pub containers: u32,
    /// Fingerprints (`sha256:<hex>`) of the keys that verified a signature of it when it
    /// was pulled or checked; empty when none did (or it was never checked).
    pub signed_by: Vec<String>,
}

/// A volume in the Volumes list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub created: String,
    pub size: i64,
    pub anonymous: bool,
    /// Names of the containers that use it.
    pub used_by: Vec<String>,
}

/// A network in the Networks list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    /// bridge, host and none: never removed.
    pub builtin: bool,
    /// Names of the containers attached.
    pub containers: Vec<String>,
}

/// One entry of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct LogLine {
    /// "stdout" or "stderr".
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub text: String,
}

/// What the Run dialog asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct RunRequest {
    pub image: String,
    /// Empty: the engine names it.
    pub name: String,
    /// docker's `-p` forms, one per entry ("8080:80", "127.0.0.1:8080:80/udp").
    pub ports: Vec<String>,
    /// KEY=VALUE.
    pub env: Vec<String>,
    /// docker's `-v` forms ("vol:/data", "/host/path:/app:ro").
    pub volumes: Vec<String>,
    /// Empty: the default bridge.
    pub network: String,
    /// no, always, unless-stopped, on-failure[:N].
    pub restart: String,
}

/// What the network form asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NetworkRequest {
    pub name: String,
    /// CIDR; empty: the engine picks one.
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
}

/// A pull's progress, sent as `pull-progress` events while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PullProgress {
    /// The manifest is known: this many layers follow.
    Resolved { reference: String, layers: u32 },
    /// Bytes of one layer so far.
    Layer { reference: String, digest: String, done: u64, total: u64 },
    /// One layer is in the store (`cached`: it was already).
    LayerDone { reference: String, digest: String, cached: bool },
    /// The image is in the store.
    Done { reference: String, id: String },
    /// The pull failed or was cancelled.
    Failed { reference: String, error: super::UiError },
}

/// Something changed in the engine (an object of `kind` had `action` done to it); the
/// views reload what it touches. Sent as `engine-event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct EngineEvent {
    /// container, image, volume, network, engine.
    pub kind: String,
    pub action: String,
    /// The object's id or name.
    pub id: String,
}

/// A service of a compose project, with its container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ServiceRow {
    pub name: String,
    /// created, running, exited, ...; "not created" before the first Up.
    pub state: String,
    pub status: String,
    /// The container's name, once there is one.
    pub container: Option<String>,
}

/// A compose project in the Compose view: one the user added (kept across restarts),
/// or one running in the engine that was started elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ComposeProjectRow {
    pub name: String,
    /// The compose files; empty for a project only seen in the engine.
    pub files: Vec<String>,
    pub added: bool,
    pub services: Vec<ServiceRow>,
    /// Why its files do not load (then Up is refused until they do).
    pub error: Option<String>,
}

/// One sample of a container's resource use, sent about once a second while the Stats
/// panel is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct StatsSample {
    /// Unix seconds (with fraction) of the reading.
    pub time: f64,
    /// Percent of one CPU (200 = two CPUs busy), as `docker stats` shows it.
    pub cpu_percent: f64,
    pub memory_bytes: f64,
    pub memory_limit: f64,
    pub net_rx_bytes: f64,
    pub net_tx_bytes: f64,
    pub block_read_bytes: f64,
    pub block_write_bytes: f64,
    pub pids: f64,
}

/// What an exec terminal sends the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TerminalEvent {
    /// Output, as text (a character split across reads is held until it is whole).
    Output { data: String },
    /// The shell ended.
    Exit { code: i32 },
    /// The exec failed or the engine went away.
    Failed { error: super::UiError },
}

/// A file or folder in a volume, as the Volumes view's browser lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct FileRow {
    pub name: String,
    /// file, dir, link or other.
    pub kind: String,
    pub size: u64,
}

/// One result of an image search (Docker Hub's, or a registry's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct SearchRow {
    pub name: String,
    pub description: String,
    pub stars: u64,
    pub official: bool,
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct HistoryRow {
    pub created: String,
    pub created_by: String,
    pub size: u64,
    pub empty_layer: bool,
}

/// What a prune removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Pruned {
    pub removed: Vec<String>,
    pub reclaimed_bytes: u64,
}

/// A mount of a container, as its Inspect panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct MountRow {
    /// volume, bind or tmpfs.
    pub kind: String,
    /// The volume's name, or the host path; empty for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// A container on a network: the network's name (in a container's Inspect) or the
/// container's (in a network's), with its addresses there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct EndpointRow {
    pub name: String,
    /// `10.88.0.2/16`; empty when it has none (a stopped container).
    pub ipv4: String,
    pub mac: String,
}

/// A container as its Inspect panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ContainerDetail {
    pub id: String,
    pub name: String,
    pub image: String,
    /// The command and its arguments, as docker ps shows them.
    pub command: String,
    /// RFC 3339.
    pub created: String,
    /// no, always, on-failure or unless-stopped.
    pub restart: String,
    /// `NAME=value`, in the container's order.
    pub env: Vec<String>,
    pub mounts: Vec<MountRow>,
    pub ports: Vec<PortRow>,
    pub networks: Vec<EndpointRow>,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
}

/// A network as its Inspect panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NetworkDetail {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    /// RFC 3339.
    pub created: String,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    /// The containers attached, sorted by name.
    pub containers: Vec<EndpointRow>,
}
