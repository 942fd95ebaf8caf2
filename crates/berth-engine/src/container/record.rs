//! What the engine knows about a container, and where it keeps it: one row per
//! container in SQLite (`containers.db`), the record as JSON. Names are unique by a
//! database constraint, so two creates racing for a name cannot both win.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use berth_proto::ErrorKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The parts of docker's `Config` Berth honours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The image as the user named it.
    pub image: String,
    pub cmd: Vec<String>,
    /// None: the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Docker's StdinOnce: an attached client's end of input closes the container's
    /// stdin (without a TTY); otherwise it ends only that client's attach.
    #[serde(default)]
    pub stdin_once: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<i32>,
    /// The effective health check (the image's, with the request's changes).
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    /// The image's ExposedPorts plus `--expose` ("80/tcp").
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

/// docker's `HealthConfig`; durations in nanoseconds, 0 = the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", args...]`, `["CMD-SHELL", "command"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: u32,
}

/// The result of one health probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// "starting", "healthy", "unhealthy"
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthProbe>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub pids_limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped"
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    pub target: String,
    pub options: String,
    pub read_only: bool,
}

/// A bind or volume mount (tmpfs mounts are `TmpfsMount`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// "volume" or "bind".
    pub kind: String,
    /// The volume's name, or the bind's host path.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// volume: do not fill an empty volume from the image.
    pub no_copy: bool,
}

/// The parts of docker's `HostConfig` Berth honours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    pub auto_remove: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub resources: Resources,
    pub restart_policy: RestartPolicy,
    pub tmpfs: Vec<TmpfsMount>,
    /// "bridge", "host", "none", "container:<id>", or a user network's name.
    pub network_mode: String,
    pub init: bool,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// `-p`, one entry per port.
    #[serde(default)]
    pub port_bindings: Vec<crate::network::PortBinding>,
    /// `-P`.
    #[serde(default)]
    pub publish_all_ports: bool,
    #[serde(default)]
    pub extras: HostExtras,
}

/// docker's less common HostConfig settings: `--add-host`, `--dns`, `--dns-search`,
/// `--dns-option`, `--shm-size`, `--ulimit`, `--sysctl`, `--group-add`,
/// `--oom-score-adj` and `--domainname`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostExtras {
    /// `name:ip`; the ip may be `host-gateway` (the address the host has for it).
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// /dev/shm's size in bytes (0: docker's 64 MiB).
    pub shm_size: i64,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// Group names (from the image's /etc/group) or numbers.
    pub group_add: Vec<String>,
    /// `--oom-score-adj`, -1000 to 1000.
    #[serde(default)]
    pub oom_score_adj: i32,
    /// `--domainname` (docker's Config.Domainname): the container's NIS domain name.
    #[serde(default)]
    pub domainname: String,
    /// `--log-driver` and `--log-opt` (docker's HostConfig.LogConfig).
    #[serde(default)]
    pub log_config: LogConfig,
    /// `--pid`: "" (its own), "host", or "container:<name or id>".
    #[serde(default)]
    pub pid_mode: String,
    /// `--ipc`: "", "private" or "shareable" (its own), "none" (its own, without
    /// /dev/shm), "host", or "container:<name or id>".
    #[serde(default)]
    pub ipc_mode: String,
    /// `--uts`: "" (its own) or "host".
    #[serde(default)]
    pub uts_mode: String,
    /// `--cpuset-cpus` and `--cpuset-mems`: lists such as "0-1,3".
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// `--volumes-from NAME[:ro|:rw]`, as given (the mounts it brought are in `mounts`).
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// `--cgroupns`: "" (the default: private on cgroup v2, host on v1), "host" or
    /// "private".
    #[serde(default)]
    pub cgroupns_mode: String,
    /// `--memory-swappiness`, 0 to 100 (None: the kernel's).
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    /// `--runtime`: the OCI runtime's name ("" in records older than it: the default).
    #[serde(default)]
    pub runtime: String,
    /// `--link NAME[:ALIAS]` (docker's legacy links), as "name:alias".
    #[serde(default)]
    pub links: Vec<String>,
    /// `--device HOST[:CONTAINER][:PERMISSIONS]`.
    #[serde(default)]
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule "c 1:3 rwm"`.
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    /// `--memory-reservation`: the soft limit, in bytes (0: none).
    #[serde(default)]
    pub memory_reservation: i64,
    /// `--oom-kill-disable`.
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// `--cpu-rt-period` and `--cpu-rt-runtime`, in microseconds (0: none).
    #[serde(default)]
    pub cpu_rt_period: i64,
    #[serde(default)]
    pub cpu_rt_runtime: i64,
    /// The paths masked and made read-only in the container (None: docker's defaults;
    /// empty: none, as `--security-opt systempaths=unconfined` asks).
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    /// `--cgroup-parent`: the cgroup the container's goes under ("": Berth's own).
    #[serde(default)]
    pub cgroup_parent: String,
    /// `--blkio-weight`, `--blkio-weight-device` and the block I/O throttles.
    #[serde(default)]
    pub blkio: Blkio,
    /// `Annotations` (API 1.43): given to the runtime in the OCI config.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Block I/O: a weight (10-1000, 0: the kernel's), per-device weights, and per-device
/// limits in bytes or operations a second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blkio {
    pub weight: u16,
    pub weight_device: Vec<DeviceRate>,
    pub read_bps: Vec<DeviceRate>,
    pub write_bps: Vec<DeviceRate>,
    pub read_iops: Vec<DeviceRate>,
    pub write_iops: Vec<DeviceRate>,
}

/// A block device (by its path) and a weight or a rate for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub path: String,
    pub rate: u64,
}

/// A host device (or a folder of them) given to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub path_on_host: String,
    /// Empty: the host's path.
    pub path_in_container: String,
    /// Some of "rwm"; empty: "rwm".
    pub cgroup_permissions: String,
}

impl DeviceMapping {
    /// Parses `--device` as docker does: HOST, HOST:CONTAINER, HOST:PERMISSIONS or
    /// HOST:CONTAINER:PERMISSIONS.
    pub fn parse(spec: &str) -> Result<DeviceMapping, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [host] => (*host, *host, "rwm"),
            [host, second] if valid_device_mode(second) => (*host, *host, *second),
            [host, container] => (*host, *container, "rwm"),
            [host, container, mode] => (*host, *container, *mode),
            _ => return Err(format!("invalid device specification: {spec}")),
        };
        let mapping = DeviceMapping { path_on_host: host.to_owned(), path_in_container: container.to_owned(), cgroup_permissions: permissions.to_owned() };
        mapping.validate()?;
        Ok(mapping)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.path_on_host.starts_with('/') {
            return Err(format!("invalid device path {:?}: it must be absolute", self.path_on_host));
        }
        if !self.path_in_container.is_empty() && !self.path_in_container.starts_with('/') {
            return Err(format!("invalid device path {:?}: it must be absolute", self.path_in_container));
        }
        if !self.cgroup_permissions.is_empty() && !valid_device_mode(&self.cgroup_permissions) {
            return Err(format!("invalid device mode: {}", self.cgroup_permissions));
        }
        Ok(())
    }

    pub fn target(&self) -> &str {
        if self.path_in_container.is_empty() {
            &self.path_on_host
        } else {
            &self.path_in_container
        }
    }

    pub fn permissions(&self) -> &str {
        if self.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &self.cgroup_permissions
        }
    }
}

/// Some of r, w and m, each at most once.
fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty() && mode.len() <= 3 && mode.chars().all(|c| "rwm".contains(c)) && {
        let mut seen: Vec<char> = mode.chars().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() == mode.len()
    }
}

/// A device cgroup rule ("c 1:3 rwm", "b *:* m", "a"): (type, major, minor, access),
/// None for `*`.
pub fn parse_device_cgroup_rule(rule: &str) -> Result<(String, Option<i64>, Option<i64>, String), String> {
    let invalid = || format!("invalid device cgroup rule format: '{rule}'");
    let fields: Vec<&str> = rule.split_whitespace().collect();
    let (kind, numbers, access) = match fields.as_slice() {
        [kind, numbers, access] => (*kind, *numbers, *access),
        _ => return Err(invalid()),
    };
    if !matches!(kind, "a" | "b" | "c") || !valid_device_mode(access) {
        return Err(invalid());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let number = |n: &str| if n == "*" { Ok(None) } else { n.parse::<i64>().map(Some).map_err(|_| invalid()) };
    Ok((kind.to_owned(), number(major)?, number(minor)?, access.to_owned()))
}

/// A link as docker spells it ("db", "db:alias", "/db:/web/alias") as (name, alias).
pub fn parse_link(link: &str) -> (String, String) {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/').to_owned();
    let alias = alias.rsplit('/').next().unwrap_or(alias).to_owned();
    (name, alias)
}

impl HostExtras {
    /// Whether the container gets a cgroup namespace of its own.
    pub fn private_cgroupns(&self, cgroup_v2: bool) -> bool {
        match self.cgroupns_mode.as_str() {
            "private" => true,
            "host" => false,
            _ => cgroup_v2,
        }
    }
}

/// How a container holds one kind of namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    Own,
    Host,
    /// Another container's, by name or id.
    Container(String),
}

impl NamespaceMode {
    /// Parses `--pid`/`--ipc`/`--uts` (`kind` names it in errors; `own` lists the
    /// spellings that mean a namespace of its own).
    pub fn parse(kind: &str, value: &str, own: &[&str], container_allowed: bool) -> Result<NamespaceMode, String> {
        if own.contains(&value) {
            return Ok(NamespaceMode::Own);
        }
        if value == "host" {
            return Ok(NamespaceMode::Host);
        }
        match value.strip_prefix("container:") {
            Some(other) if container_allowed && !other.is_empty() => Ok(NamespaceMode::Container(other.to_owned())),
            _ => Err(format!("invalid {kind} mode: {value}")),
        }
    }
}

impl HostExtras {
    pub fn pid(&self) -> Result<NamespaceMode, String> {
        NamespaceMode::parse("PID", &self.pid_mode, &[""], true)
    }

    pub fn ipc(&self) -> Result<NamespaceMode, String> {
        NamespaceMode::parse("IPC", &self.ipc_mode, &["", "private", "shareable", "none"], true)
    }

    pub fn uts(&self) -> Result<NamespaceMode, String> {
        NamespaceMode::parse("UTS", &self.uts_mode, &[""], false)
    }
}

/// Parses a cpuset list ("0-2,4"): the numbers it names, or why it is not one.
pub fn cpuset_list(list: &str) -> Result<std::collections::BTreeSet<u32>, String> {
    let mut out = std::collections::BTreeSet::new();
    for part in list.split(',') {
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("invalid cpuset list {list:?}"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("invalid cpuset list {list:?}"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(number(part)?);
            }
        }
    }
    Ok(out)
}

/// The log driver and its options as given. Berth writes docker's json-file format;
/// `local` is taken as the same. Unlike dockerd's json-file (unlimited unless told),
/// every log is bounded: without `max-size`, docker's `local` driver's limits apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Empty: the default (json-file).
    pub driver: String,
    pub options: std::collections::BTreeMap<String, String>,
}

/// The limits when no `max-size` is given: docker's `local` driver's, 20 MB in 5 files.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 20_000_000;
pub const DEFAULT_LOG_MAX_FILE: u32 = 5;

impl LogConfig {
    /// Refuses what docker refuses for these drivers, in its words.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.driver.as_str(), "" | "json-file" | "local") {
            return Err(format!("log driver {:?} is not supported: Berth keeps json-file logs (json-file and local are accepted)", self.driver));
        }
        for (key, value) in &self.options {
            match key.as_str() {
                "max-size" => {
                    parse_log_size(value)?;
                }
                "max-file" => match value.parse::<u32>() {
                    Ok(n) if n >= 1 => {}
                    _ => return Err(format!("max-file cannot be less than 1, and must be a number: {value:?}")),
                },
                // Accepted, and without effect on what Berth writes.
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {}
                other => return Err(format!("unknown log opt '{other}' for json-file log driver")),
            }
        }
        Ok(())
    }

    /// The size past which the log rotates (0: never) and the files kept.
    pub fn limits(&self) -> (u64, u32) {
        match self.options.get("max-size").and_then(|v| parse_log_size(v).ok()) {
            // max-file without max-size means nothing to docker either.
            Some(size) => (size, self.options.get("max-file").and_then(|v| v.parse().ok()).unwrap_or(1)),
            None => (DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILE),
        }
    }
}

/// A `max-size` as docker reads it: a number with an optional decimal unit (`10m` is
/// 10,000,000 bytes), at least 1; -1 is docker's "no limit".
fn parse_log_size(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid max-size {text:?}: want a size such as 10m");
    let lower = text.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || !(1.0..=1e15).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// One `--ulimit name=soft:hard`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The resource limits `--ulimit` may set (setrlimit's, without RLIMIT_).
pub const ULIMIT_NAMES: &[&str] =
    &["as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"];

impl HostExtras {
    /// Refuses what docker refuses, naming the setting; `network_mode` decides whether
    /// network sysctls are allowed (not with the host's network).
    pub fn validate(&self, network_mode: &str) -> Result<(), String> {
        for entry in &self.extra_hosts {
            let Some((name, ip)) = entry.split_once(':') else { return Err(format!("invalid extra host {entry:?}: want name:ip")) };
            if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
                return Err(format!("invalid extra host {entry:?}: want name:ip (or name:host-gateway)"));
            }
        }
        for server in &self.dns {
            if server.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{server} is not an ip address (--dns)"));
            }
        }
        if self.shm_size < 0 {
            return Err("SHM size can not be less than 0".to_owned());
        }
        self.log_config.validate()?;
        if !(-1000..=1000).contains(&self.oom_score_adj) {
            return Err(format!("Invalid value {}, range for oom score adj is [-1000, 1000]", self.oom_score_adj));
        }
        for limit in &self.ulimits {
            if !ULIMIT_NAMES.contains(&limit.name.as_str()) {
                return Err(format!("invalid ulimit type: {}", limit.name));
            }
            if limit.soft > limit.hard && limit.hard >= 0 {
                return Err(format!("ulimit soft limit must be less than or equal to hard limit: {} > {}", limit.soft, limit.hard));
            }
        }
        for key in self.sysctls.keys() {
            let ipc = matches!(
                key.as_str(),
                "kernel.msgmax"
                    | "kernel.msgmnb"
                    | "kernel.msgmni"
                    | "kernel.sem"
                    | "kernel.shmall"
                    | "kernel.shmmax"
                    | "kernel.shmmni"
                    | "kernel.shm_rmid_forced"
            ) || key.starts_with("fs.mqueue.");
            let net = key.starts_with("net.");
            if net && network_mode == "host" {
                return Err(format!("sysctl {key:?} not allowed in host network namespace"));
            }
            if !ipc && !net {
                return Err(format!("sysctl {key:?} is not allowed"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running in docker's sense: a process exists (paused and restarting included).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub restart_count: u32,
    /// Stopped by the user (docker's HasBeenManuallyStopped): no restart policy fires,
    /// and unless-stopped stays stopped across an engine restart.
    pub manually_stopped: bool,
    /// The start attempt that is current; an exit from an older one is ignored.
    pub generation: u64,
    #[serde(default)]
    pub health: Option<Health>,
    /// The networks and ports it has while it runs.
    #[serde(default)]
    pub network: Option<RunningNetwork>,
}

/// A running container's addresses and published ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningNetwork {
    pub endpoints: Vec<crate::network::Endpoint>,
    pub ports: Vec<crate::network::PortMapping>,
}

/// Everything about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    pub image_id: String,
    /// The resolved process: path and arguments (entrypoint + cmd).
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// The networks it joins when it starts (docker's EndpointsConfig), in order.
    #[serde(default)]
    pub networks: Vec<crate::network::EndpointRequest>,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("container store: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("container store holds a bad record for {id}")]
    Corrupt { id: String, source: serde_json::Error },
    // dockerd's words, which some clients look for.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NameInUse { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

#[derive(Debug)]
pub struct Store {
    db: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS containers (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 record TEXT NOT NULL
             );",
        )?;
        Ok(Store { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decode(id: String, json: String) -> Result<ContainerRecord, StoreError> {
        serde_json::from_str(&json).map_err(|source| StoreError::Corrupt { id, source })
    }

    /// Adds a new container; its name must be free.
    pub fn insert(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        let db = self.db();
        let holder: Option<String> = db.query_row("SELECT id FROM containers WHERE name = ?1", params![record.name], |r| r.get(0)).optional()?;
        if let Some(id) = holder {
            return Err(StoreError::NameInUse { name: record.name.clone(), id });
        }
        let json = serde_json::to_string(record).map_err(|source| StoreError::Corrupt { id: record.id.clone(), source })?;
        db.execute("INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)", params![record.id, record.name, json])?;
        Ok(())
    }

    /// Replaces a container's record (its name included; the new name must be free).
    pub fn update(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        let db = self.db();
        let holder: Option<String> = db.query_row("SELECT id FROM containers WHERE name = ?1", params![record.name], |r| r.get(0)).optional()?;
        if let Some(id) = holder.filter(|id| *id != record.id) {
            return Err(StoreError::NameInUse { name: record.name.clone(), id });
        }
        let json = serde_json::to_string(record).map_err(|source| StoreError::Corrupt { id: record.id.clone(), source })?;
        db.execute("UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1", params![record.id, record.name, json])?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.db().execute("DELETE FROM containers WHERE id = ?1", params![id])?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        let row: Option<(String, String)> =
            self.db().query_row("SELECT id, record FROM containers WHERE id = ?1", params![id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        row.map(|(id, json)| Store::decode(id, json)).transpose()
    }

    pub fn list(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        let rows: Vec<(String, String)> = {
            let db = self.db();
            let mut statement = db.prepare("SELECT id, record FROM containers")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut out = rows.into_iter().map(|(id, json)| Store::decode(id, json)).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container as docker does: full id, then exact name (with or without a
    /// leading `/`), then a unique id prefix. `Ok(Err(n))`: the prefix matches n > 1.
    pub fn find(&self, key: &str) -> Result<Result<Option<ContainerRecord>, usize>, StoreError> {
        if key.is_empty() {
            return Ok(Ok(None));
        }
        if let Some(found) = self.get(key)? {
            return Ok(Ok(Some(found)));
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        let by_name: Option<(String, String)> =
            self.db().query_row("SELECT id, record FROM containers WHERE name = ?1", params![name], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some((id, json)) = by_name {
            return Ok(Ok(Some(Store::decode(id, json)?)));
        }
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Ok(None));
        }
        let rows: Vec<(String, String)> = {
            let db = self.db();
            let mut statement = db.prepare("SELECT id, record FROM containers WHERE substr(id, 1, ?2) = ?1 LIMIT 2")?;
            let rows = statement.query_map(params![key, key.len() as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            rows
        };
        match rows.len() {
            0 => Ok(Ok(None)),
            1 => {
                let (id, json) = rows.into_iter().next().expect("one row");
                Ok(Ok(Some(Store::decode(id, json)?)))
            }
            n => Ok(Err(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_options_validate_and_bound_every_log() {
        let config = |driver: &str, options: &[(&str, &str)]| LogConfig {
            driver: driver.to_owned(),
            options: options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        assert_eq!(config("", &[]).limits(), (DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILE));
        assert_eq!(config("json-file", &[("max-size", "10m"), ("max-file", "3")]).limits(), (10_000_000, 3));
        assert_eq!(config("json-file", &[("max-size", "1k")]).limits(), (1000, 1));
        assert_eq!(config("json-file", &[("max-file", "3")]).limits(), (DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILE));
        assert!(config("local", &[("max-size", "1.5m"), ("compress", "true")]).validate().is_ok());
        assert!(config("syslog", &[]).validate().expect_err("syslog").contains("not supported"));
        assert!(config("", &[("max-size", "lots")]).validate().is_err());
        assert!(config("", &[("max-size", "0")]).validate().is_err());
        assert!(config("", &[("max-file", "0")]).validate().is_err());
        assert!(config("", &[("mode", "non-blocking")]).validate().expect_err("mode").contains("unknown log opt 'mode'"));
    }

    use super::*;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord { id: id.to_owned(), name: name.to_owned(), created: id.to_owned(), ..Default::default() }
    }

    #[test]
    fn names_are_unique_and_lookups_follow_docker() {
        let dir = std::env::temp_dir().join(format!("berth-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::open(&dir.join("c.db")).expect("open");
        store.insert(&record("abc123", "web")).expect("insert");
        store.insert(&record("abd456", "db")).expect("insert");
        let err = store.insert(&record("fff", "web")).expect_err("name in use");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("\"/web\" is already in use by container \"abc123\""), "{err}");
        assert_eq!(store.find("web").expect("find").expect("unique").expect("found").id, "abc123");
        assert_eq!(store.find("/db").expect("find").expect("unique").expect("found").id, "abd456");
        assert_eq!(store.find("abc").expect("find").expect("unique").expect("found").id, "abc123");
        assert_eq!(store.find("ab").expect("find"), Err(2));
        assert_eq!(store.find("zzz").expect("find"), Ok(None));
        let mut renamed = store.get("abc123").expect("get").expect("found");
        renamed.name = "db".to_owned();
        assert_eq!(store.update(&renamed).expect_err("taken").kind(), ErrorKind::Conflict);
        renamed.name = "front".to_owned();
        store.update(&renamed).expect("rename");
        assert_eq!(store.find("front").expect("find").expect("unique").expect("found").id, "abc123");
        store.delete("abc123").expect("delete");
        assert_eq!(store.list().expect("list").len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
