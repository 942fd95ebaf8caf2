//! The compose model: what a project holds after loading, in the spec's vocabulary.
//! Every short and long syntax the spec allows is read into one form here (lists or
//! maps, strings or lists, `HOST:CONTAINER/proto` or `{target, published}`), and
//! unknown keys are errors (extension keys `x-*` excepted).

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A service's `logging`: the driver and its options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default)]
    pub driver: Option<String>,
    /// Values may be numbers (`max-file: 3`).
    #[serde(default, deserialize_with = "list_or_map")]
    pub options: BTreeMap<String, Option<String>>,
}

/// A whole compose file, after interpolation. Unknown keys land in `extensions` and
/// are refused there unless they are `x-*` (serde cannot deny them and flatten at once).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ComposeFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Volume>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(default)]
    pub configs: BTreeMap<String, FileObject>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Service {
    pub image: Option<String>,
    #[serde(default, deserialize_with = "build")]
    pub build: Option<Build>,
    #[serde(default, deserialize_with = "command")]
    pub command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "command")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub env_file: Vec<String>,
    #[serde(default, deserialize_with = "ports")]
    pub ports: Vec<Port>,
    #[serde(default, deserialize_with = "scalars")]
    pub expose: Vec<String>,
    #[serde(default, deserialize_with = "service_volumes")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, deserialize_with = "service_networks")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    #[serde(default, deserialize_with = "depends_on")]
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub labels: BTreeMap<String, Option<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<String>,
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default, deserialize_with = "file_refs")]
    pub secrets: Vec<FileRef>,
    #[serde(default, deserialize_with = "file_refs")]
    pub configs: Vec<FileRef>,
    pub extends: Option<Extends>,
    pub container_name: Option<String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin_open: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `host:ip` (or `host=ip`) lines, or a mapping of host to ip.
    #[serde(default, deserialize_with = "extra_hosts")]
    pub extra_hosts: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub dns_search: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub dns_opt: Vec<String>,
    /// Bytes, or a size with a unit (`2gb`, `256m`).
    #[serde(default, deserialize_with = "scalar_opt")]
    pub shm_size: Option<String>,
    /// name -> (soft, hard); a single number sets both.
    #[serde(default, deserialize_with = "ulimits")]
    pub ulimits: BTreeMap<String, (i64, i64)>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub sysctls: BTreeMap<String, Option<String>>,
    #[serde(default, deserialize_with = "scalars")]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub logging: Option<Logging>,
    /// `host` or `container:<name>` (the engine checks them).
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub uts: Option<String>,
    /// `SERVICE[:ALIAS]`: the service's container under the alias in /etc/hosts (and
    /// started first).
    #[serde(default, deserialize_with = "scalars")]
    pub links: Vec<String>,
    pub mac_address: Option<String>,
    /// `HOST[:CONTAINER][:PERMISSIONS]`.
    #[serde(default, deserialize_with = "scalars")]
    pub devices: Vec<String>,
    #[serde(default, deserialize_with = "scalars")]
    pub device_cgroup_rules: Vec<String>,
    /// CPUs, as `--cpuset-cpus` takes them.
    #[serde(default, deserialize_with = "scalar_opt")]
    pub cpuset: Option<String>,
    /// The OCI runtime: crun or runc.
    pub runtime: Option<String>,
    /// `always`, `never`, `missing` (the default; `if_not_present` too) or `build`.
    pub pull_policy: Option<String>,
    /// The cgroup namespace: host or private.
    pub cgroup: Option<String>,
    #[serde(flatten)]
    pub extensions: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Port {
    pub target: u16,
    /// A single port or a range ("8000-8010"); None = an ephemeral one.
    pub published: Option<String>,
    pub host_ip: Option<String>,
    /// "tcp" or "udp".
    pub protocol: String,
    /// The long syntax's `mode`: `ingress` (Swarm's routing mesh) or `host`.
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceVolume {
    /// "volume", "bind" or "tmpfs".
    pub kind: String,
    /// A volume's name (None = anonymous) or a bind's host path.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    pub no_copy: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> String {
    "service_started".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(default, deserialize_with = "health_test")]
    pub test: Option<Vec<String>>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u32>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// `replicated` (the default) or `global`.
    pub mode: Option<String>,
    pub replicas: Option<u32>,
    pub resources: Option<DeployResources>,
    /// `vip` (the default) or `dnsrr`. Swarm only, as the next ones.
    pub endpoint_mode: Option<String>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub labels: BTreeMap<String, Option<String>>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Option<Placement>,
}

/// `deploy.update_config` and `deploy.rollback_config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<String>,
    /// `continue`, `pause` or (updates only) `rollback`.
    pub failure_action: Option<String>,
    pub monitor: Option<String>,
    pub max_failure_ratio: Option<f64>,
    /// `stop-first` or `start-first`.
    pub order: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    pub condition: Option<String>,
    pub delay: Option<String>,
    pub max_attempts: Option<u64>,
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<String>,
    #[serde(default)]
    pub preferences: Vec<PlacementPreference>,
    pub max_replicas_per_node: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreference {
    pub spread: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployResources {
    pub limits: Option<Limits>,
    pub reservations: Option<Limits>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, deserialize_with = "scalar_opt")]
    pub cpus: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub source: String,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    pub file: Option<String>,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extends {
    pub service: String,
    pub file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub driver: Option<String>,
    #[serde(default)]
    pub internal: bool,
    /// Swarm: containers outside the stack may join the overlay network.
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    pub ipam: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub driver: Option<String>,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "list_or_map")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
}

use serde_norway::Value;

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    scalar_text(&v).map(Some).ok_or_else(|| de::Error::custom("expected a string or a number"))
}

fn scalars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items.iter().map(|i| scalar_text(i).ok_or_else(|| de::Error::custom("expected strings or numbers"))).collect(),
        _ => Err(de::Error::custom("expected a list")),
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Sequence(items) => items.iter().map(|i| scalar_text(i).ok_or_else(|| de::Error::custom("expected strings"))).collect(),
        _ => Err(de::Error::custom("expected a string or a list of strings")),
    }
}

/// `command` / `entrypoint`: a list, or a string split as a shell would (quotes kept
/// together), as compose does.
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    string_or_strings(d, |s| split_shell(&s))
}

/// A string (read by `from_string`) or a list of strings; null is None.
fn string_or_strings<'de, D: Deserializer<'de>>(
    d: D,
    from_string: impl FnOnce(String) -> Result<Vec<String>, String>,
) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => from_string(s).map(Some).map_err(de::Error::custom),
        Value::Sequence(items) => items.iter().map(|i| scalar_text(i).ok_or_else(|| de::Error::custom("expected strings"))).collect::<Result<_, _>>().map(Some),
        _ => Err(de::Error::custom("expected a string or a list of strings")),
    }
}

/// Splits a command line on whitespace, honouring single and double quotes and
/// backslashes.
pub fn split_shell(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in {text:?}"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `environment` / `labels` / `args`: a list of `KEY=VALUE` (or `KEY`, unset), or a map.
fn list_or_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                let text = scalar_text(i).ok_or_else(|| de::Error::custom("expected KEY=VALUE strings"))?;
                Ok(match text.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (text, None),
                })
            })
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let key = scalar_text(k).ok_or_else(|| de::Error::custom("expected string keys"))?;
                let value = if v.is_null() {
                    None
                } else {
                    Some(scalar_text(v).ok_or_else(|| de::Error::custom(format!("{key}: expected a string, number or boolean")))?)
                };
                Ok((key, value))
            })
            .collect(),
        _ => Err(de::Error::custom("expected a list of KEY=VALUE or a mapping")),
    }
}

/// `extra_hosts`: a list of `host:ip` or `host=ip`, or a mapping; kept as `host:ip`.
fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                let text = scalar_text(i).ok_or_else(|| de::Error::custom("expected host:ip strings"))?;
                // `host=ip` first: an IPv6 address holds colons.
                match text.split_once('=').or_else(|| text.split_once(':')) {
                    Some((host, ip)) if !host.is_empty() && !ip.is_empty() => Ok(format!("{host}:{ip}")),
                    _ => Err(de::Error::custom(format!("invalid extra host {text:?}: expected host:ip"))),
                }
            })
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| match (scalar_text(k), scalar_text(v)) {
                (Some(host), Some(ip)) => Ok(format!("{host}:{ip}")),
                _ => Err(de::Error::custom("expected a mapping of host to ip")),
            })
            .collect(),
        _ => Err(de::Error::custom("expected a list of host:ip or a mapping")),
    }
}

/// `ulimits`: `nofile: 65535` or `nofile: {soft: 1024, hard: 2048}`.
fn ulimits<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, (i64, i64)>, D::Error> {
    let Value::Mapping(map) = Value::deserialize(d)? else { return Err(de::Error::custom("expected a mapping of limit names")) };
    map.iter()
        .map(|(k, v)| {
            let name = scalar_text(k).ok_or_else(|| de::Error::custom("expected limit names"))?;
            let limits = match v {
                Value::Number(n) => n.as_i64().map(|n| (n, n)),
                Value::Mapping(m) => {
                    let get = |key: &str| m.get(Value::String(key.to_owned())).and_then(Value::as_i64);
                    match (get("soft"), get("hard")) {
                        (Some(soft), Some(hard)) if m.len() == 2 => Some((soft, hard)),
                        _ => None,
                    }
                }
                _ => None,
            };
            limits.map(|l| (name.clone(), l)).ok_or_else(|| de::Error::custom(format!("{name}: expected a number or soft and hard numbers")))
        })
        .collect()
}

fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(context) => Ok(Some(Build { context: Some(context), ..Default::default() })),
        other => Build::deserialize(other).map(Some).map_err(de::Error::custom),
    }
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    // A string is a shell command.
    string_or_strings(d, |s| Ok(vec!["CMD-SHELL".into(), s]))
}

/// `ports`: `"[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]"` strings or numbers, or the
/// long form `{target, published, host_ip, protocol}`.
fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        _ => return Err(de::Error::custom("expected a list of ports")),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Mapping(map) => {
                let get = |k: &str| map.get(k).and_then(scalar_text);
                let target = get("target").ok_or_else(|| de::Error::custom("a port needs a target"))?;
                Ok(Port {
                    target: target.parse().map_err(|_| de::Error::custom(format!("invalid target port {target:?}")))?,
                    published: get("published"),
                    host_ip: get("host_ip"),
                    protocol: get("protocol").unwrap_or_else(|| "tcp".into()),
                    mode: get("mode"),
                })
            }
            other => {
                let text = scalar_text(other).ok_or_else(|| de::Error::custom("expected a port"))?;
                parse_port(&text).map_err(de::Error::custom)
            }
        })
        .collect()
}

/// The short port syntax.
pub fn parse_port(text: &str) -> Result<Port, String> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, proto @ ("tcp" | "udp" | "sctp"))) => (rest, proto.to_owned()),
        Some((_, other)) => return Err(format!("invalid protocol {other:?} in port {text:?}")),
        None => (text, "tcp".to_owned()),
    };
    let parts: Vec<&str> = if rest.starts_with('[') {
        // [ipv6]:published:target
        let end = rest.find(']').ok_or_else(|| format!("invalid port {text:?}"))?;
        let mut v = vec![&rest[1..end]];
        v.extend(rest[end + 1..].trim_start_matches(':').split(':'));
        v
    } else {
        rest.split(':').collect()
    };
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => (None, None, *target),
        [published, target] => (None, Some(*published), *target),
        [ip, published, target] => (Some(*ip), Some(*published).filter(|p| !p.is_empty()), *target),
        _ => return Err(format!("invalid port {text:?}")),
    };
    let target: u16 = target.split('-').next().unwrap_or("").parse().map_err(|_| format!("invalid container port in {text:?}"))?;
    if let Some(p) = published {
        if p.split('-').any(|n| n.parse::<u16>().is_err()) {
            return Err(format!("invalid published port in {text:?}"));
        }
    }
    Ok(Port { target, published: published.map(str::to_owned), host_ip: host_ip.map(str::to_owned), protocol, mode: None })
}

/// `volumes`: `"[SOURCE:]TARGET[:MODE]"` or the long form.
fn service_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        _ => return Err(de::Error::custom("expected a list of volumes")),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => parse_volume(text).map_err(de::Error::custom),
            Value::Mapping(map) => {
                let get = |k: &str| map.get(k).and_then(scalar_text);
                let kind = get("type").ok_or_else(|| de::Error::custom("a volume needs a type"))?;
                if !matches!(kind.as_str(), "volume" | "bind" | "tmpfs") {
                    return Err(de::Error::custom(format!("invalid volume type {kind:?}")));
                }
                let target = get("target").ok_or_else(|| de::Error::custom("a volume needs a target"))?;
                let no_copy = map.get("volume").and_then(|v| v.get("nocopy")).and_then(Value::as_bool).unwrap_or(false);
                Ok(ServiceVolume { kind, source: get("source"), target, read_only: get("read_only").is_some_and(|v| v == "true"), no_copy })
            }
            _ => Err(de::Error::custom("expected a volume")),
        })
        .collect()
}

/// The short volume syntax: docker's `-v` rules (`berth_proto::mounts`); host paths
/// are resolved against the project's folder when the plan is made.
pub fn parse_volume(text: &str) -> Result<ServiceVolume, String> {
    use berth_proto::mounts::{parse_volume_spec, VolumeSource};
    let spec = parse_volume_spec(text)?;
    Ok(ServiceVolume {
        kind: if spec.source_kind == VolumeSource::HostPath { "bind" } else { "volume" }.into(),
        source: (spec.source_kind != VolumeSource::Anonymous).then(|| spec.source.to_owned()),
        target: spec.target.into(),
        read_only: spec.read_only,
        no_copy: spec.no_copy,
    })
}

fn service_networks<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, ServiceNetwork>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => {
            items.iter().map(|i| scalar_text(i).map(|n| (n, ServiceNetwork::default())).ok_or_else(|| de::Error::custom("expected network names"))).collect()
        }
        Value::Mapping(map) => map
            .into_iter()
            .map(|(k, v)| {
                let name = scalar_text(&k).ok_or_else(|| de::Error::custom("expected network names"))?;
                let settings = if v.is_null() { ServiceNetwork::default() } else { ServiceNetwork::deserialize(v).map_err(de::Error::custom)? };
                Ok((name, settings))
            })
            .collect(),
        _ => Err(de::Error::custom("expected a list or a mapping of networks")),
    }
}

fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
    let plain = || Dependency { condition: started(), restart: false, required: true };
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => {
            items.iter().map(|i| scalar_text(i).map(|n| (n, plain())).ok_or_else(|| de::Error::custom("expected service names"))).collect()
        }
        Value::Mapping(map) => map
            .into_iter()
            .map(|(k, v)| {
                let name = scalar_text(&k).ok_or_else(|| de::Error::custom("expected service names"))?;
                let dep = if v.is_null() { plain() } else { Dependency::deserialize(v).map_err(de::Error::custom)? };
                if !matches!(dep.condition.as_str(), "service_started" | "service_healthy" | "service_completed_successfully") {
                    return Err(de::Error::custom(format!("invalid condition {:?} for {name}", dep.condition)));
                }
                Ok((name, dep))
            })
            .collect(),
        _ => Err(de::Error::custom("expected a list or a mapping")),
    }
}

fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(source) => Ok(FileRef { source, target: None }),
                other => FileRef::deserialize(other).map_err(de::Error::custom),
            })
            .collect(),
        _ => Err(de::Error::custom("expected a list")),
    }
}

/// Reads an interpolated tree into the model; errors name the key path.
pub fn from_value(value: Value, file: &str) -> Result<ComposeFile, ModelError> {
    let parsed: ComposeFile =
        serde_path_to_error::deserialize(value).map_err(|e| ModelError { file: file.to_owned(), key: e.path().to_string(), message: e.inner().to_string() })?;
    // Extension keys are the only unknown keys allowed.
    for key in parsed.extensions.keys() {
        if !key.starts_with("x-") {
            return Err(ModelError { file: file.to_owned(), key: key.clone(), message: format!("unknown top-level key {key:?}") });
        }
    }
    for (name, service) in &parsed.services {
        if let Some(key) = service.extensions.keys().find(|k| !k.starts_with("x-")) {
            return Err(ModelError { file: file.to_owned(), key: format!("services.{name}.{key}"), message: format!("unknown key {key:?}") });
        }
    }
    Ok(parsed)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ModelError {
    pub file: String,
    pub key: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ComposeFile, String> {
        let value = crate::load::load_str(text, "compose.yaml", &|_| None).map_err(|e| e.to_string())?;
        from_value(value, "compose.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn short_and_long_syntaxes_read_the_same() {
        let file = load(
            r#"
name: shop
services:
  web:
    build: .
    command: nginx -g "daemon off;"
    environment: [A=1, B]
    ports: ["8080:80", "127.0.0.1:9000:9000/udp", 3000, {target: 443, published: "8443"}]
    volumes: ["data:/var/lib/data:ro", "./site:/srv", "/cache", {type: tmpfs, target: /tmp}]
    networks:
      front: {aliases: [www]}
    depends_on:
      db: {condition: service_healthy}
    healthcheck: {test: "curl -f http://localhost", interval: 5s, retries: 3}
    deploy: {replicas: 2, resources: {limits: {cpus: 0.5, memory: 64M}}}
    x-note: anything
  db:
    image: postgres
    environment: {POSTGRES_PASSWORD: secret, EMPTY: null}
    depends_on: [cache]
  cache:
    image: redis
volumes:
  data:
networks:
  front: {internal: true}
x-common: {}
"#,
        )
        .expect("load");
        let web = &file.services["web"];
        assert_eq!(web.build.as_ref().and_then(|b| b.context.as_deref()), Some("."));
        assert_eq!(web.command.as_deref(), Some(&["nginx".to_owned(), "-g".into(), "daemon off;".into()][..]));
        assert_eq!(web.environment["A"], Some("1".into()));
        assert_eq!(web.environment["B"], None);
        assert_eq!(web.ports[0], Port { target: 80, published: Some("8080".into()), host_ip: None, protocol: "tcp".into(), mode: None });
        assert_eq!(web.ports[1].protocol, "udp");
        assert_eq!(web.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(web.ports[2].published, None);
        assert_eq!(web.ports[3].published.as_deref(), Some("8443"));
        assert_eq!(web.volumes[0].kind, "volume");
        assert!(web.volumes[0].read_only);
        assert_eq!(web.volumes[1].kind, "bind");
        assert_eq!(web.volumes[2].source, None);
        assert_eq!(web.volumes[3].kind, "tmpfs");
        assert_eq!(web.networks["front"].aliases, vec!["www".to_owned()]);
        assert_eq!(web.depends_on["db"].condition, "service_healthy");
        assert_eq!(web.healthcheck.as_ref().and_then(|h| h.test.clone()), Some(vec!["CMD-SHELL".into(), "curl -f http://localhost".into()]));
        assert_eq!(web.deploy.as_ref().and_then(|d| d.replicas), Some(2));
        assert_eq!(file.services["db"].environment["EMPTY"], None);
        assert_eq!(file.services["db"].depends_on["cache"].condition, "service_started");
        assert!(file.networks["front"].as_ref().is_some_and(|n| n.internal));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let err = load("services:\n  web:\n    imgae: nginx\n").expect_err("typo");
        assert!(err.starts_with("compose.yaml: services.web"), "{err}");
        assert!(err.contains("imgae"), "{err}");
        let err = load("services:\n  web:\n    image: nginx\n    ports: [\"80:http\"]\n").expect_err("bad port");
        assert!(err.contains("services.web.ports") && err.contains("invalid container port"), "{err}");
        let err = load("services:\n  web:\n    depends_on: {db: {condition: service_ready}}\n").expect_err("bad condition");
        assert!(err.contains("invalid condition"), "{err}");
        let err = load("servics: {}\n").expect_err("top-level typo");
        assert!(err.contains("servics"), "{err}");
        let err = load("services:\n  web:\n    init: maybe\n").expect_err("type");
        assert!(err.contains("services.web.init"), "{err}");
    }

    #[test]
    fn shell_splitting() {
        assert_eq!(split_shell(r#"sh -c 'echo "hi there"' \x"#).expect("split"), vec!["sh", "-c", "echo \"hi there\"", "x"]);
        assert!(split_shell("echo 'open").is_err());
    }
}
