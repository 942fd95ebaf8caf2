//! A compose project as a Swarm stack: the Docker Engine API's bodies for its overlay
//! networks, secrets, configs and services (`POST /networks/create`, `/secrets/create`,
//! `/configs/create`, `/services/create`), as `docker stack deploy` makes them: every
//! object named `<stack>_<name>` and labelled `com.docker.stack.namespace=<stack>`, each
//! service on its networks under its own name, `deploy` read whole (mode, replicas,
//! resources, restart policy, placement, update and rollback configs, endpoint mode,
//! labels), published ports on the routing mesh unless `mode: host`.
//!
//! Secrets and configs are referenced by name here; their IDs are the manager's, filled
//! in when the stack is deployed.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::model::{FileObject, Service as ComposeService, UpdateConfig};
use crate::project::Project;
use crate::refused;

pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// What a Swarm cannot take, by its key.
pub type SwarmError = crate::RenderError;

/// One object to create: its name and the body the API takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub name: String,
    pub body: Value,
}

/// A stack's objects, in the order they are made.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stack {
    /// The stack's name, its services' namespace label.
    pub name: String,
    pub networks: Vec<Object>,
    pub secrets: Vec<Object>,
    pub configs: Vec<Object>,
    pub services: Vec<Object>,
    /// External networks, secrets and configs the services use: they must exist.
    pub external: Vec<String>,
}

impl Stack {
    /// The plan as `--dry-run` prints it: secret values left out.
    pub fn to_dry_run_json(&self) -> Value {
        let redact = |objects: &[Object]| -> Vec<Value> {
            objects
                .iter()
                .map(|o| {
                    let mut body = o.body.clone();
                    if let Some(data) = body.get("Data").and_then(Value::as_str) {
                        let bytes = base64::engine::general_purpose::STANDARD.decode(data).map(|d| d.len()).unwrap_or(0);
                        body["Data"] = format!("<{bytes} bytes>").into();
                    }
                    body
                })
                .collect()
        };
        json!({
            "networks": self.networks.iter().map(|o| o.body.clone()).collect::<Vec<_>>(),
            "secrets": redact(&self.secrets),
            "configs": self.configs.iter().map(|o| o.body.clone()).collect::<Vec<_>>(),
            "services": self.services.iter().map(|o| o.body.clone()).collect::<Vec<_>>(),
            "external": self.external,
        })
    }
}

fn nanos(service: &str, key: &str, text: Option<&str>) -> Result<Option<i64>, SwarmError> {
    text.map(|t| berth_proto::units::parse_duration(t).map_err(|e| refused(service, key, e))).transpose()
}

fn labels(map: &BTreeMap<String, Option<String>>, stack: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = map.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
    out.insert(LABEL_NAMESPACE.to_owned(), stack.to_owned());
    out
}

/// Renders `services` of `project` as the stack `stack`.
pub fn render(project: &Project, stack: &str, services: &BTreeSet<String>) -> Result<Stack, SwarmError> {
    let file = &project.model;
    let mut out = Stack { name: stack.to_owned(), ..Stack::default() };
    let scoped = |name: &str| format!("{stack}_{name}");

    // Networks: those the services use (the default one when a service names none).
    let mut used_networks = BTreeSet::new();
    for name in services {
        let s = &file.services[name];
        if s.networks.is_empty() {
            used_networks.insert("default".to_owned());
        }
        used_networks.extend(s.networks.keys().cloned());
    }
    let mut network_names = BTreeMap::new();
    for network in &used_networks {
        let definition = file.networks.get(network).cloned().flatten().unwrap_or_default();
        if network != "default" && !file.networks.contains_key(network) {
            return Err(refused("", &format!("networks.{network}"), "is used but not declared"));
        }
        if definition.external {
            let name = definition.name.clone().unwrap_or_else(|| network.clone());
            out.external.push(format!("network {name}"));
            network_names.insert(network.clone(), name);
            continue;
        }
        if let Some(driver) = definition.driver.as_deref().filter(|d| *d != "overlay") {
            return Err(refused("", &format!("networks.{network}.driver"), format!("{driver:?}: a stack's networks are overlay networks")));
        }
        let name = definition.name.clone().unwrap_or_else(|| scoped(network));
        network_names.insert(network.clone(), name.clone());
        out.networks.push(Object {
            name: name.clone(),
            body: json!({
                "Name": name,
                "Driver": "overlay",
                "Internal": definition.internal,
                "Attachable": definition.attachable,
                "Labels": labels(&definition.labels, stack),
            }),
        });
    }

    // Secrets and configs the services use.
    for (kind, objects, refs) in [
        ("secrets", &file.secrets, services.iter().flat_map(|s| file.services[s].secrets.iter().map(|r| r.source.clone())).collect::<BTreeSet<_>>()),
        ("configs", &file.configs, services.iter().flat_map(|s| file.services[s].configs.iter().map(|r| r.source.clone())).collect::<BTreeSet<_>>()),
    ] {
        for source in refs {
            let object = objects.get(&source).ok_or_else(|| refused("", &format!("{kind}.{source}"), "is used but not declared"))?;
            let (name, data) = file_object(project, kind, &source, object, &scoped)?;
            let Some(data) = data else {
                out.external.push(format!("{} {name}", &kind[..kind.len() - 1]));
                continue;
            };
            let body = json!({
                "Name": name,
                "Labels": {LABEL_NAMESPACE: stack},
                "Data": base64::engine::general_purpose::STANDARD.encode(data),
            });
            let target = if kind == "secrets" { &mut out.secrets } else { &mut out.configs };
            target.push(Object { name, body });
        }
    }

    for name in services {
        let s = &file.services[name];
        out.services.push(Object { name: scoped(name), body: service_spec(project, stack, name, s, &network_names, &scoped)? });
    }
    Ok(out)
}

fn file_object(
    project: &Project,
    kind: &str,
    source: &str,
    object: &FileObject,
    scoped: &dyn Fn(&str) -> String,
) -> Result<(String, Option<Vec<u8>>), SwarmError> {
    let key = format!("{kind}.{source}");
    if object.external {
        return Ok((object.name.clone().unwrap_or_else(|| source.to_owned()), None));
    }
    let Some(path) = &object.file else {
        return Err(refused("", &key, "only `file:` and `external:` are read"));
    };
    let path = crate::plan::resolve_path(&project.dir, path);
    let data = std::fs::read(&path).map_err(|e| refused("", &key, format!("{}: {e}", path.display())))?;
    Ok((object.name.clone().unwrap_or_else(|| scoped(source)), Some(data)))
}

fn update_config(service: &str, key: &str, u: &UpdateConfig, rollback: bool) -> Result<Value, SwarmError> {
    let action = match u.failure_action.as_deref() {
        None => None,
        Some(a @ ("continue" | "pause")) => Some(a),
        Some("rollback") if !rollback => Some("rollback"),
        Some(other) => {
            return Err(refused(
                service,
                &format!("{key}.failure_action"),
                format!("{other:?} is not continue, pause{}", if rollback { "" } else { " or rollback" }),
            ))
        }
    };
    let order = match u.order.as_deref() {
        None => None,
        Some(o @ ("stop-first" | "start-first")) => Some(o),
        Some(other) => return Err(refused(service, &format!("{key}.order"), format!("{other:?} is not stop-first or start-first"))),
    };
    let mut body = serde_json::Map::new();
    body.insert("Parallelism".into(), u.parallelism.unwrap_or(1).into());
    if let Some(delay) = nanos(service, &format!("{key}.delay"), u.delay.as_deref())? {
        body.insert("Delay".into(), delay.into());
    }
    if let Some(action) = action {
        body.insert("FailureAction".into(), action.into());
    }
    if let Some(monitor) = nanos(service, &format!("{key}.monitor"), u.monitor.as_deref())? {
        body.insert("Monitor".into(), monitor.into());
    }
    if let Some(ratio) = u.max_failure_ratio {
        body.insert("MaxFailureRatio".into(), ratio.into());
    }
    if let Some(order) = order {
        body.insert("Order".into(), order.into());
    }
    Ok(Value::Object(body))
}

fn service_spec(
    project: &Project,
    stack: &str,
    name: &str,
    s: &ComposeService,
    network_names: &BTreeMap<String, String>,
    scoped: &dyn Fn(&str) -> String,
) -> Result<Value, SwarmError> {
    // What a Swarm service cannot take.
    let set = |present: bool, key: &str, why: &str| if present { Err(refused(name, key, why)) } else { Ok(()) };
    set(s.image.is_none(), "build", "a Swarm's nodes pull images: give the service an `image` (build and push it first)")?;
    set(s.privileged, "privileged", "Swarm services cannot be privileged")?;
    set(!s.devices.is_empty(), "devices", "Swarm services cannot take host devices")?;
    set(s.pid.is_some() || s.ipc.is_some() || s.uts.is_some(), "pid/ipc/uts", "Swarm services cannot join other namespaces")?;
    set(!s.links.is_empty(), "links", "services reach each other by name on their networks")?;
    set(s.container_name.is_some(), "container_name", "a service's tasks are named by Swarm")?;
    set(s.shm_size.is_some(), "shm_size", "not a Swarm service setting")?;
    set(s.cpuset.is_some(), "cpuset", "not a Swarm service setting")?;
    set(s.mac_address.is_some(), "mac_address", "not a Swarm service setting")?;
    set(!s.device_cgroup_rules.is_empty(), "device_cgroup_rules", "not a Swarm service setting")?;
    set(s.cgroup.is_some(), "cgroup", "not a Swarm service setting")?;

    let deploy = s.deploy.clone().unwrap_or_default();
    let env = crate::plan::service_env(project, name, s).map_err(|e| SwarmError::Other(e.to_string()))?;
    let mut container = serde_json::Map::new();
    let image = s.image.clone().expect("checked above");
    container.insert("Image".into(), image.clone().into());
    container.insert("Labels".into(), json!(labels(&s.labels, stack)));
    if let Some(entrypoint) = &s.entrypoint {
        container.insert("Command".into(), json!(entrypoint));
    }
    if let Some(command) = &s.command {
        container.insert("Args".into(), json!(command));
    }
    if !env.is_empty() {
        container.insert("Env".into(), json!(env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));
    }
    for (key, value) in [("Dir", &s.working_dir), ("User", &s.user), ("Hostname", &s.hostname), ("StopSignal", &s.stop_signal)] {
        if let Some(value) = value {
            container.insert(key.into(), value.clone().into());
        }
    }
    if !s.group_add.is_empty() {
        container.insert("Groups".into(), json!(s.group_add));
    }
    for (key, value) in [("TTY", s.tty), ("OpenStdin", s.stdin_open), ("ReadOnly", s.read_only)] {
        if value {
            container.insert(key.into(), true.into());
        }
    }
    if let Some(init) = s.init {
        container.insert("Init".into(), init.into());
    }
    if let Some(grace) = nanos(name, "stop_grace_period", s.stop_grace_period.as_deref())? {
        container.insert("StopGracePeriod".into(), grace.into());
    }
    let mut mounts = Vec::new();
    for v in &s.volumes {
        let mut mount = json!({"Type": v.kind, "Target": v.target});
        if v.read_only {
            mount["ReadOnly"] = true.into();
        }
        match (v.kind.as_str(), v.source.as_deref()) {
            ("volume", Some(source)) => {
                let definition = project
                    .model
                    .volumes
                    .get(source)
                    .ok_or_else(|| refused(name, "volumes", format!("volume {source:?} is not declared")))?
                    .clone()
                    .unwrap_or_default();
                let volume_name = if definition.external {
                    definition.name.clone().unwrap_or_else(|| source.to_owned())
                } else {
                    definition.name.clone().unwrap_or_else(|| scoped(source))
                };
                mount["Source"] = volume_name.into();
                let mut options = json!({"Labels": labels(&definition.labels, stack)});
                if v.no_copy {
                    options["NoCopy"] = true.into();
                }
                if definition.driver.is_some() || !definition.driver_opts.is_empty() {
                    options["DriverConfig"] =
                        json!({"Name": definition.driver.clone().unwrap_or_else(|| "local".to_owned()), "Options": definition.driver_opts});
                }
                mount["VolumeOptions"] = options;
            }
            ("volume", None) | ("tmpfs", _) => {}
            ("bind", Some(source)) => {
                // A bind mounts the node's folder: it must be absolute (a relative path
                // would be the client's).
                if !source.starts_with('/') {
                    return Err(refused(name, "volumes", format!("bind mount of {source:?}: a Swarm node's folder needs an absolute path")));
                }
                mount["Source"] = source.into();
            }
            (kind, _) => return Err(refused(name, "volumes", format!("{kind} mounts are not Swarm mounts"))),
        }
        mounts.push(mount);
    }
    if !mounts.is_empty() {
        container.insert("Mounts".into(), mounts.into());
    }
    for (kind, key, refs) in [("secrets", "Secrets", &s.secrets), ("configs", "Configs", &s.configs)] {
        if refs.is_empty() {
            continue;
        }
        let mut list = Vec::new();
        for r in refs {
            let object = if kind == "secrets" { project.model.secrets.get(&r.source) } else { project.model.configs.get(&r.source) };
            let object = object.ok_or_else(|| refused(name, kind, format!("{:?} is not declared", r.source)))?;
            let object_name = if object.external {
                object.name.clone().unwrap_or_else(|| r.source.clone())
            } else {
                object.name.clone().unwrap_or_else(|| scoped(&r.source))
            };
            let file_name = r.target.clone().unwrap_or_else(|| if kind == "secrets" { r.source.clone() } else { format!("/{}", r.source) });
            let name_key = if kind == "secrets" { "SecretName" } else { "ConfigName" };
            let id_key = if kind == "secrets" { "SecretID" } else { "ConfigID" };
            list.push(json!({"File": {"Name": file_name, "UID": "0", "GID": "0", "Mode": 0o444}, name_key: object_name, id_key: ""}));
        }
        container.insert(key.into(), list.into());
    }
    if let Some(h) = &s.healthcheck {
        let mut check = serde_json::Map::new();
        if h.disable {
            check.insert("Test".into(), json!(["NONE"]));
        } else if let Some(test) = &h.test {
            check.insert("Test".into(), json!(test));
        }
        for (key, value, field) in [("Interval", &h.interval, "interval"), ("Timeout", &h.timeout, "timeout"), ("StartPeriod", &h.start_period, "start_period")]
        {
            if let Some(n) = nanos(name, &format!("healthcheck.{field}"), value.as_deref())? {
                check.insert(key.into(), n.into());
            }
        }
        if let Some(retries) = h.retries {
            check.insert("Retries".into(), retries.into());
        }
        container.insert("Healthcheck".into(), Value::Object(check));
    }
    if !s.extra_hosts.is_empty() {
        let mut hosts = Vec::new();
        for entry in &s.extra_hosts {
            let (host, ip) =
                entry.split_once('=').or_else(|| entry.split_once(':')).ok_or_else(|| refused(name, "extra_hosts", format!("{entry:?}: expected HOST:IP")))?;
            hosts.push(format!("{ip} {host}"));
        }
        container.insert("Hosts".into(), hosts.into());
    }
    if !s.dns.is_empty() || !s.dns_search.is_empty() || !s.dns_opt.is_empty() {
        container.insert("DNSConfig".into(), json!({"Nameservers": s.dns, "Search": s.dns_search, "Options": s.dns_opt}));
    }
    if !s.sysctls.is_empty() {
        container.insert("Sysctls".into(), json!(s.sysctls.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect::<BTreeMap<_, _>>()));
    }
    if !s.cap_add.is_empty() {
        container.insert("CapabilityAdd".into(), json!(s.cap_add));
    }
    if !s.cap_drop.is_empty() {
        container.insert("CapabilityDrop".into(), json!(s.cap_drop));
    }
    if !s.ulimits.is_empty() {
        container.insert("Ulimits".into(), json!(s.ulimits.iter().map(|(n, (soft, hard))| json!({"Name": n, "Soft": soft, "Hard": hard})).collect::<Vec<_>>()));
    }

    let mut task = serde_json::Map::new();
    task.insert("ContainerSpec".into(), Value::Object(container));
    if let Some(resources) = &deploy.resources {
        let side = |l: &crate::model::Limits, key: &str| -> Result<Value, SwarmError> {
            let mut out = serde_json::Map::new();
            if let Some(cpus) = &l.cpus {
                let cpus: f64 = cpus.parse().map_err(|_| refused(name, &format!("deploy.resources.{key}.cpus"), format!("{cpus:?} is not a number")))?;
                out.insert("NanoCPUs".into(), ((cpus * 1e9).round() as i64).into());
            }
            if let Some(memory) = &l.memory {
                out.insert(
                    "MemoryBytes".into(),
                    berth_proto::units::parse_bytes(memory).map_err(|e| refused(name, &format!("deploy.resources.{key}.memory"), e))?.into(),
                );
            }
            if let Some(pids) = l.pids {
                if key == "reservations" {
                    return Err(refused(name, "deploy.resources.reservations.pids", "a limit, not a reservation"));
                }
                out.insert("Pids".into(), pids.into());
            }
            Ok(Value::Object(out))
        };
        let mut body = serde_json::Map::new();
        if let Some(l) = &resources.limits {
            body.insert("Limits".into(), side(l, "limits")?);
        }
        if let Some(r) = &resources.reservations {
            body.insert("Reservations".into(), side(r, "reservations")?);
        }
        task.insert("Resources".into(), Value::Object(body));
    }
    let restart = match (&deploy.restart_policy, s.restart.as_deref()) {
        (Some(policy), _) => {
            let condition = match policy.condition.as_deref() {
                None => "any",
                Some(c @ ("none" | "on-failure" | "any")) => c,
                Some(other) => return Err(refused(name, "deploy.restart_policy.condition", format!("{other:?} is not none, on-failure or any"))),
            };
            let mut body = json!({"Condition": condition});
            if let Some(delay) = nanos(name, "deploy.restart_policy.delay", policy.delay.as_deref())? {
                body["Delay"] = delay.into();
            }
            if let Some(max) = policy.max_attempts {
                body["MaxAttempts"] = max.into();
            }
            if let Some(window) = nanos(name, "deploy.restart_policy.window", policy.window.as_deref())? {
                body["Window"] = window.into();
            }
            Some(body)
        }
        (None, Some("no")) => Some(json!({"Condition": "none"})),
        (None, Some("always" | "unless-stopped")) => Some(json!({"Condition": "any"})),
        (None, Some(other)) if other.starts_with("on-failure") => {
            let mut body = json!({"Condition": "on-failure"});
            if let Some(n) = other.strip_prefix("on-failure:") {
                body["MaxAttempts"] = n.parse::<u64>().map_err(|_| refused(name, "restart", format!("{other:?}")))?.into();
            }
            Some(body)
        }
        (None, Some(other)) => return Err(refused(name, "restart", format!("{other:?} is not a restart policy"))),
        (None, None) => None,
    };
    if let Some(restart) = restart {
        task.insert("RestartPolicy".into(), restart);
    }
    if let Some(placement) = &deploy.placement {
        let mut body = serde_json::Map::new();
        if !placement.constraints.is_empty() {
            body.insert("Constraints".into(), json!(placement.constraints));
        }
        if !placement.preferences.is_empty() {
            body.insert(
                "Preferences".into(),
                json!(placement.preferences.iter().map(|p| json!({"Spread": {"SpreadDescriptor": p.spread}})).collect::<Vec<_>>()),
            );
        }
        if let Some(max) = placement.max_replicas_per_node {
            body.insert("MaxReplicas".into(), max.into());
        }
        task.insert("Placement".into(), Value::Object(body));
    }
    let networks: Vec<Value> = if s.networks.is_empty() {
        vec![json!({"Target": network_names["default"], "Aliases": [name]})]
    } else {
        s.networks
            .iter()
            .map(|(network, attachment)| {
                let mut aliases = vec![name.to_owned()];
                aliases.extend(attachment.aliases.iter().cloned());
                json!({"Target": network_names[network], "Aliases": aliases})
            })
            .collect()
    };
    task.insert("Networks".into(), networks.into());

    let mode = match deploy.mode.as_deref() {
        None | Some("replicated") => json!({"Replicated": {"Replicas": deploy.replicas.unwrap_or(1)}}),
        Some("global") if deploy.replicas.is_none() => json!({"Global": {}}),
        Some("global") => return Err(refused(name, "deploy.replicas", "a global service runs one task per node: no replicas")),
        Some(other) => return Err(refused(name, "deploy.mode", format!("{other:?} is not replicated or global"))),
    };
    let endpoint_mode = match deploy.endpoint_mode.as_deref() {
        None | Some("vip") => "vip",
        Some("dnsrr") => "dnsrr",
        Some(other) => return Err(refused(name, "deploy.endpoint_mode", format!("{other:?} is not vip or dnsrr"))),
    };
    let mut ports = Vec::new();
    for port in &s.ports {
        let publish_mode = match port.mode.as_deref() {
            None | Some("ingress") => "ingress",
            Some("host") => "host",
            Some(other) => return Err(refused(name, "ports.mode", format!("{other:?} is not ingress or host"))),
        };
        if endpoint_mode == "dnsrr" && publish_mode == "ingress" {
            return Err(refused(name, "ports", "with endpoint_mode dnsrr, ports are published in mode: host (the routing mesh needs a virtual IP)"));
        }
        if port.host_ip.is_some() {
            return Err(refused(name, "ports", "a host IP is not a Swarm setting"));
        }
        let mut body = json!({"Protocol": port.protocol, "TargetPort": port.target, "PublishMode": publish_mode});
        if let Some(published) = &port.published {
            body["PublishedPort"] = published.parse::<u16>().map_err(|_| refused(name, "ports", format!("{published:?}: one port, not a range")))?.into();
        }
        ports.push(body);
    }
    let mut service_labels = labels(&deploy.labels, stack);
    service_labels.insert(LABEL_IMAGE.to_owned(), image);
    let mut spec = json!({
        "Name": scoped(name),
        "Labels": service_labels,
        "TaskTemplate": Value::Object(task),
        "Mode": mode,
        "EndpointSpec": {"Mode": endpoint_mode, "Ports": ports},
    });
    if let Some(update) = &deploy.update_config {
        spec["UpdateConfig"] = update_config(name, "deploy.update_config", update, false)?;
    }
    if let Some(rollback) = &deploy.rollback_config {
        spec["RollbackConfig"] = update_config(name, "deploy.rollback_config", rollback, true)?;
    }
    Ok(spec)
}

/// Against a Swarm manager: what `berth stack` and `berth node` do through its Docker
/// Engine API.
pub mod manager {
    use berth_host::docker_client::{filters, DockerApiError, DockerClient};
    use serde_json::Value;

    use super::{Stack, LABEL_NAMESPACE};

    /// Refuses an engine that is not an active Swarm manager, in docker's words.
    pub async fn check_manager(api: &DockerClient) -> Result<(), DockerApiError> {
        let info = api.call("GET", "/info", None).await?;
        let swarm = &info["Swarm"];
        if swarm["LocalNodeState"] != "active" || swarm["ControlAvailable"] != true {
            return Err(DockerApiError::Refused {
                method: "GET".into(),
                path: "/info".into(),
                status: 503,
                message: format!("{} is not a swarm manager. Use `docker swarm init` or `docker swarm join` on it first", api.endpoint()),
            });
        }
        Ok(())
    }

    async fn find(api: &DockerClient, kind: &str, name: &str) -> Result<Option<Value>, DockerApiError> {
        let list = api.call("GET", &format!("/{kind}?{}", filters(&[("name", name)])), None).await?;
        // The name filter matches prefixes: the exact name is wanted.
        Ok(list.as_array().into_iter().flatten().find(|o| o["Spec"]["Name"] == name || o["Name"] == name).cloned())
    }

    /// Creates what is missing and updates the services that exist (a rolling update
    /// as their update config says); with `prune`, removes the stack's services the file
    /// no longer has (as `docker stack deploy --prune`). Returns what it did, a line each.
    pub async fn deploy(api: &DockerClient, stack: &Stack, prune: bool) -> Result<Vec<String>, DockerApiError> {
        check_manager(api).await?;
        let mut said = Vec::new();
        for external in &stack.external {
            let (kind, name) = external.split_once(' ').unwrap_or(("", external));
            let path = match kind {
                "network" => "networks",
                "secret" => "secrets",
                _ => "configs",
            };
            if find(api, path, name).await?.is_none() {
                return Err(DockerApiError::Refused {
                    method: "GET".into(),
                    path: format!("/{path}"),
                    status: 404,
                    message: format!("external {kind} {name} not found"),
                });
            }
        }
        for network in &stack.networks {
            if find(api, "networks", &network.name).await?.is_none() {
                api.call("POST", "/networks/create", Some(&network.body)).await?;
                said.push(format!("Creating network {}", network.name));
            }
        }
        let mut ids = std::collections::BTreeMap::new();
        for (kind, objects) in [("secrets", &stack.secrets), ("configs", &stack.configs)] {
            for object in objects {
                let id = match find(api, kind, &object.name).await? {
                    // Secrets and configs cannot change: one that exists is used as it is.
                    Some(existing) => existing["ID"].as_str().unwrap_or_default().to_owned(),
                    None => {
                        let created = api.call("POST", &format!("/{kind}/create"), Some(&object.body)).await?;
                        said.push(format!("Creating {} {}", &kind[..kind.len() - 1], object.name));
                        created["ID"].as_str().unwrap_or_default().to_owned()
                    }
                };
                ids.insert(object.name.clone(), id);
            }
        }
        for service in &stack.services {
            let mut spec = service.body.clone();
            for (list, name_key, id_key, kind) in [("Secrets", "SecretName", "SecretID", "secrets"), ("Configs", "ConfigName", "ConfigID", "configs")] {
                let Some(items) = spec["TaskTemplate"]["ContainerSpec"][list].as_array_mut() else { continue };
                for item in items {
                    let name = item[name_key].as_str().unwrap_or_default().to_owned();
                    let id = match ids.get(&name) {
                        Some(id) => id.clone(),
                        None => find(api, kind, &name).await?.and_then(|o| o["ID"].as_str().map(str::to_owned)).unwrap_or_default(),
                    };
                    item[id_key] = id.into();
                }
            }
            match find(api, "services", &service.name).await? {
                Some(existing) => {
                    let id = existing["ID"].as_str().unwrap_or_default();
                    let version = existing["Version"]["Index"].as_u64().unwrap_or(0);
                    api.call("POST", &format!("/services/{id}/update?version={version}"), Some(&spec)).await?;
                    said.push(format!("Updating service {} (id: {id})", service.name));
                }
                None => {
                    api.call("POST", "/services/create", Some(&spec)).await?;
                    said.push(format!("Creating service {}", service.name));
                }
            }
        }
        if prune {
            for existing in services(api, &stack.name).await? {
                let (id, name) = (existing["ID"].as_str().unwrap_or_default(), existing["Spec"]["Name"].as_str().unwrap_or_default());
                if !stack.services.iter().any(|s| s.name == name) {
                    api.call("DELETE", &format!("/services/{id}"), None).await?;
                    said.push(format!("Removing service {name}"));
                }
            }
        }
        Ok(said)
    }

    fn stack_filter(stack: &str) -> String {
        filters(&[("label", &format!("{LABEL_NAMESPACE}={stack}"))])
    }

    /// The stacks the manager runs: name and service count.
    pub async fn list(api: &DockerClient) -> Result<Vec<(String, usize)>, DockerApiError> {
        let services = api.call("GET", &format!("/services?{}", filters(&[("label", LABEL_NAMESPACE)])), None).await?;
        let mut stacks: std::collections::BTreeMap<String, usize> = Default::default();
        for s in services.as_array().into_iter().flatten() {
            if let Some(name) = s["Spec"]["Labels"][LABEL_NAMESPACE].as_str() {
                *stacks.entry(name.to_owned()).or_default() += 1;
            }
        }
        Ok(stacks.into_iter().collect())
    }

    /// A stack's services: name, mode, running/desired replicas, image, ports.
    pub async fn services(api: &DockerClient, stack: &str) -> Result<Vec<Value>, DockerApiError> {
        let services = api.call("GET", &format!("/services?status=true&{}", stack_filter(stack)), None).await?;
        Ok(services.as_array().cloned().unwrap_or_default())
    }

    /// A stack's tasks, with their service's name.
    pub async fn tasks(api: &DockerClient, stack: &str) -> Result<Vec<Value>, DockerApiError> {
        let mut out = Vec::new();
        for service in services(api, stack).await? {
            let name = service["Spec"]["Name"].as_str().unwrap_or_default().to_owned();
            let tasks = api.call("GET", &format!("/tasks?{}", filters(&[("service", &name)])), None).await?;
            for mut task in tasks.as_array().cloned().unwrap_or_default() {
                task["ServiceName"] = name.clone().into();
                out.push(task);
            }
        }
        Ok(out)
    }

    /// Removes a stack: its services, then its networks, secrets and configs.
    pub async fn remove(api: &DockerClient, stack: &str) -> Result<Vec<String>, DockerApiError> {
        check_manager(api).await?;
        let mut said = Vec::new();
        let filter = stack_filter(stack);
        for kind in ["services", "secrets", "configs", "networks"] {
            let objects = api.call("GET", &format!("/{kind}?{filter}"), None).await?;
            for object in objects.as_array().into_iter().flatten() {
                let id = object["ID"].as_str().or_else(|| object["Id"].as_str()).unwrap_or_default();
                let name = object["Spec"]["Name"].as_str().or_else(|| object["Name"].as_str()).unwrap_or(id);
                // A network goes once the removed services' tasks have left it.
                let mut attempts = 0;
                loop {
                    match api.call("DELETE", &format!("/{kind}/{id}"), None).await {
                        Ok(_) => break,
                        Err(e) if attempts < 60 && e_is_busy(&e) => {
                            attempts += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                said.push(format!("Removing {} {name}", &kind[..kind.len() - 1]));
            }
        }
        if said.is_empty() {
            said.push(format!("Nothing found in stack: {stack}"));
        }
        Ok(said)
    }

    fn e_is_busy(e: &DockerApiError) -> bool {
        matches!(e, DockerApiError::Refused { message, .. } if message.contains("in use") || message.contains("has active endpoints"))
    }

    /// The Swarm's nodes.
    pub async fn nodes(api: &DockerClient) -> Result<Vec<Value>, DockerApiError> {
        check_manager(api).await?;
        Ok(api.call("GET", "/nodes", None).await?.as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn corpus() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/swarm-corpus")
    }

    fn render_dir(dir: &Path, stack: &str) -> Result<Stack, SwarmError> {
        let project = crate::project::load_project(&crate::project::LoadOptions { working_dir: dir.to_owned(), ..Default::default() }).expect("the case loads");
        let services = crate::plan::enabled_services(&project.model, &[], &[]).expect("services");
        render(&project, stack, &services)
    }

    #[test]
    fn the_corpus_renders_as_its_golden_files() {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus()).expect("corpus").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
        cases.sort();
        assert!(!cases.is_empty());
        for case in cases {
            let stack = render_dir(&case, "demo").unwrap_or_else(|e| panic!("{}: {e}", case.display()));
            let text = serde_json::to_string_pretty(&stack.to_dry_run_json()).expect("json") + "\n";
            let expected = case.join("expected.json");
            if std::env::var_os("BERTH_BLESS").is_some() {
                std::fs::write(&expected, &text).expect("bless");
                continue;
            }
            let want = std::fs::read_to_string(&expected).unwrap_or_else(|e| panic!("{}: {e} (BERTH_BLESS=1 writes it)", expected.display()));
            assert_eq!(text, want, "{} renders differently (BERTH_BLESS=1 writes it again after review)", case.display());
        }
    }

    #[test]
    fn what_a_swarm_service_cannot_take_is_refused_by_name() {
        for (compose, why) in [
            ("services:\n  app: {build: .}\n", "service app: build: "),
            ("services:\n  app: {image: busybox, privileged: true}\n", "service app: privileged: "),
            ("services:\n  app: {image: busybox, volumes: ['./src:/src']}\n", "service app: volumes: bind mount of \"./src\""),
            ("services:\n  app: {image: busybox, deploy: {mode: global, replicas: 2}}\n", "service app: deploy.replicas: "),
            ("services:\n  app: {image: busybox, deploy: {endpoint_mode: dnsrr}, ports: ['80:80']}\n", "service app: ports: with endpoint_mode dnsrr"),
            ("services:\n  app: {image: busybox, deploy: {update_config: {failure_action: explode}}}\n", "service app: deploy.update_config.failure_action: "),
            ("services:\n  app: {image: busybox}\nnetworks:\n  default: {driver: bridge}\n", "networks.default.driver: "),
        ] {
            let dir = std::env::temp_dir().join(format!("berth-swarm-refused-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("compose.yaml"), compose).expect("write");
            let result = render_dir(&dir, "demo");
            let _ = std::fs::remove_dir_all(&dir);
            match result {
                Err(e) => assert!(e.to_string().starts_with(why), "{compose}: {e}"),
                Ok(_) => panic!("rendered; should be refused: {compose}"),
            }
        }
    }
}
