//! Planning: a loaded project turned into what the engine is asked for, with the
//! `com.docker.compose.*` labels docker compose puts on containers, networks and
//! volumes (so either tool sees the other's projects) and a config hash per service
//! (so `up` recreates only what changed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_proto::v1::{CreateContainerRequest, Healthcheck, Mount, PortBinding, Resources};
use sha2::{Digest, Sha256};

use crate::model::{ComposeFile, Service};
use crate::project::Project;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_VERSION: &str = "com.docker.compose.version";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
/// The compose version Berth's labels claim (the spec level it follows).
pub const COMPOSE_VERSION: &str = "2.20.2";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: {message}")]
pub struct PlanError {
    pub service: String,
    pub message: String,
}

fn err(service: &str, message: impl Into<String>) -> PlanError {
    PlanError { service: service.to_owned(), message: message.into() }
}

/// A network the project uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNetwork {
    /// The key in the file (`default` for the implicit one).
    pub key: String,
    /// The engine's name: `<project>_<key>`, or `name:`.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub subnet: Option<String>,
}

/// A named volume the project uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    /// The local driver's mount options (`driver_opts`: type, device, o).
    pub driver_opts: BTreeMap<String, String>,
}

/// One service, ready to create containers from.
#[derive(Debug, Clone)]
pub struct PlannedService {
    pub name: String,
    pub replicas: u32,
    /// Fixed `container_name`, if any.
    pub container_name: Option<String>,
    /// The request for one replica, without its name and number label.
    pub create: CreateContainerRequest,
    /// Networks beyond the first: (engine network name, aliases, ipv4 address).
    pub extra_networks: Vec<(String, Vec<String>, String)>,
    pub hash: String,
    /// Dependencies and their conditions.
    pub depends_on: BTreeMap<String, String>,
    /// How to build its image, when it has `build:`.
    pub build: Option<PlannedBuild>,
    pub pull_policy: PullPolicy,
}

/// A service's `pull_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull (or build) only when the engine lacks the image.
    #[default]
    Missing,
    /// Pull at every `up`.
    Always,
    /// Never pull: a missing image is an error.
    Never,
    /// Build at every `up`.
    Build,
}

impl PullPolicy {
    fn parse(service: &str, text: Option<&str>, has_build: bool) -> Result<PullPolicy, PlanError> {
        match text {
            None | Some("missing" | "if_not_present") => Ok(PullPolicy::Missing),
            Some("always") => Ok(PullPolicy::Always),
            Some("never") => Ok(PullPolicy::Never),
            Some("build") if has_build => Ok(PullPolicy::Build),
            Some("build") => Err(err(service, "pull_policy build needs a build section")),
            Some(other) => Err(err(service, format!("pull_policy {other:?} is not supported by Berth (always, never, missing, if_not_present or build)"))),
        }
    }
}

/// A service's `build:`, resolved against the project's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBuild {
    /// The context folder.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context ("" for `Dockerfile`).
    pub dockerfile: String,
    /// `args`, a value missing in the file taken from the environment (compose's rule).
    pub args: BTreeMap<String, String>,
    pub target: String,
}

impl PlannedService {
    /// `<project>-<service>-<n>` (docker compose v2's names), or `container_name`.
    pub fn container_name(&self, project: &str, number: u32) -> String {
        self.container_name.clone().unwrap_or_else(|| format!("{project}-{}-{number}", self.name))
    }

    /// The create request for replica `number`.
    pub fn request_for(&self, project: &str, number: u32) -> CreateContainerRequest {
        let mut request = self.create.clone();
        request.name = self.container_name(project, number);
        request.labels.insert(LABEL_NUMBER.into(), number.to_string());
        request
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub project: String,
    pub networks: Vec<PlannedNetwork>,
    pub volumes: Vec<PlannedVolume>,
    /// In start order.
    pub services: Vec<PlannedService>,
    /// Every service of the project (planned or not): containers of others are orphans.
    pub all_services: BTreeSet<String>,
}

impl Plan {
    pub fn service(&self, name: &str) -> Option<&PlannedService> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// The services `profiles` enables: those without profiles, those with an active one,
/// and every service named explicitly (with what they depend on).
pub fn enabled_services(file: &ComposeFile, profiles: &[String], named: &[String]) -> Result<BTreeSet<String>, String> {
    for name in named {
        if !file.services.contains_key(name) {
            return Err(format!("no such service: {name}"));
        }
    }
    let mut enabled: BTreeSet<String> = if named.is_empty() {
        file.services
            .iter()
            .filter(|(_, s)| s.profiles.is_empty() || s.profiles.iter().any(|p| profiles.contains(p) || p == "*"))
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        named.iter().cloned().collect()
    };
    let mut queue: Vec<String> = enabled.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        for dep in file.services[&name].depends_on.keys() {
            if file.services.contains_key(dep) && enabled.insert(dep.clone()) {
                queue.push(dep.clone());
            }
        }
    }
    Ok(enabled)
}

fn labels_of(map: &BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect()
}

/// Plans `services` of `project` (all enabled ones when empty). `scale` overrides
/// replicas.
pub fn plan(project: &Project, services: &BTreeSet<String>, scale: &BTreeMap<String, u32>) -> Result<Plan, PlanError> {
    let file = &project.model;
    let name = &project.name;
    let order = crate::graph::start_order(file).map_err(|e| err("*", e.to_string()))?;

    let mut networks: Vec<PlannedNetwork> = Vec::new();
    let mut used_networks: BTreeSet<String> = BTreeSet::new();
    for service in services {
        let s = &file.services[service];
        if s.networks.is_empty() {
            used_networks.insert("default".into());
        }
        for key in s.networks.keys() {
            if key != "default" && !file.networks.contains_key(key) {
                return Err(err(service, format!("refers to undefined network {key}")));
            }
            used_networks.insert(key.clone());
        }
    }
    for key in &used_networks {
        let spec = file.networks.get(key).cloned().flatten().unwrap_or_default();
        if let Some(driver) = spec.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(err("*", format!("network {key}: driver {driver:?} is not supported (only bridge)")));
        }
        let mut labels = labels_of(&spec.labels);
        if !spec.external {
            labels.insert(LABEL_PROJECT.into(), name.clone());
            labels.insert(LABEL_NETWORK.into(), key.clone());
            labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        }
        let subnet = spec
            .ipam
            .as_ref()
            .and_then(|ipam| ipam.get("config"))
            .and_then(|c| c.as_sequence())
            .and_then(|c| c.first())
            .and_then(|c| c.get("subnet"))
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        networks.push(PlannedNetwork {
            key: key.clone(),
            name: spec.name.clone().unwrap_or_else(|| if spec.external { key.clone() } else { format!("{name}_{key}") }),
            external: spec.external,
            internal: spec.internal,
            labels,
            subnet,
        });
    }

    let mut volumes = Vec::new();
    for (key, spec) in &file.volumes {
        let spec = spec.clone().unwrap_or_default();
        if let Some(driver) = spec.driver.as_deref().filter(|d| *d != "local") {
            return Err(err("*", format!("volume {key}: driver {driver:?} is not supported (only local)")));
        }
        let mut labels = labels_of(&spec.labels);
        if !spec.external {
            labels.insert(LABEL_PROJECT.into(), name.clone());
            labels.insert(LABEL_VOLUME.into(), key.clone());
            labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        }
        volumes.push(PlannedVolume {
            key: key.clone(),
            name: spec.name.clone().unwrap_or_else(|| if spec.external { key.clone() } else { format!("{name}_{key}") }),
            external: spec.external,
            labels,
            driver_opts: spec.driver_opts.clone(),
        });
    }

    let mut planned = Vec::new();
    for service in order.iter().filter(|s| services.contains(*s)) {
        let s = &file.services[service];
        let hash = config_hash(project, service);
        planned.push(plan_service(project, service, s, &networks, &volumes, hash, scale.get(service).copied())?);
    }
    Ok(Plan { project: name.clone(), networks, volumes, services: planned, all_services: file.services.keys().cloned().collect() })
}

/// sha256 of the service's resolved definition (replicas aside: scaling recreates
/// nothing) and of the project-level objects it names.
fn config_hash(project: &Project, service: &str) -> String {
    let mut definition = project.resolved.get("services").and_then(|s| s.get(service)).cloned().unwrap_or_default();
    if let Some(deploy) = definition.get_mut("deploy").and_then(|d| d.as_mapping_mut()) {
        deploy.remove("replicas");
    }
    let json = serde_json::to_string(&definition).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(json.as_bytes());
    for key in ["networks", "volumes", "secrets", "configs"] {
        if let Some(section) = project.resolved.get(key) {
            hasher.update(serde_json::to_string(section).unwrap_or_default().as_bytes());
        }
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A service's environment: env_file entries first, `environment` over them; a bare
/// name takes the value from the environment compose runs in, or is left out.
pub(crate) fn service_env(project: &Project, service: &str, s: &crate::model::Service) -> Result<BTreeMap<String, String>, PlanError> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for file in &s.env_file {
        let path = resolve_path(&project.dir, file);
        let text = std::fs::read_to_string(&path).map_err(|e| err(service, format!("env_file {}: {e}", path.display())))?;
        let outer = |name: &str| project.env.get(name).cloned();
        let parsed = crate::dotenv::parse(&text, &path.display().to_string(), &outer).map_err(|e| err(service, e.to_string()))?;
        env.extend(parsed);
    }
    for (key, value) in &s.environment {
        match value.clone().or_else(|| project.env.get(key).cloned()) {
            Some(value) => {
                env.insert(key.clone(), value);
            }
            None => {
                env.remove(key);
            }
        }
    }
    Ok(env)
}

pub(crate) fn resolve_path(dir: &Path, path: &str) -> PathBuf {
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest),
        None => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        dir.join(expanded)
    }
}

fn plan_service(
    project: &Project,
    service: &str,
    s: &Service,
    networks: &[PlannedNetwork],
    volumes: &[PlannedVolume],
    hash: String,
    scale: Option<u32>,
) -> Result<PlannedService, PlanError> {
    let dir = &project.dir;
    let pull_policy = PullPolicy::parse(service, s.pull_policy.as_deref(), s.build.is_some())?;
    let image = match (&s.image, &s.build) {
        (Some(image), _) => image.clone(),
        (None, Some(_)) => format!("{}-{service}", project.name),
        (None, None) => return Err(err(service, "has neither an image nor a build section")),
    };
    let mut labels: BTreeMap<String, String> = labels_of(&s.labels);
    labels.insert(LABEL_PROJECT.into(), project.name.clone());
    labels.insert(LABEL_SERVICE.into(), service.into());
    labels.insert(LABEL_ONEOFF.into(), "False".into());
    labels.insert(LABEL_HASH.into(), hash.clone());
    labels.insert(LABEL_WORKING_DIR.into(), dir.display().to_string());
    labels.insert(LABEL_CONFIG_FILES.into(), project.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(","));
    labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
    labels.insert(LABEL_IMAGE.into(), image.clone());

    let env = service_env(project, service, s)?;

    let mut ports = Vec::new();
    for port in &s.ports {
        if port.protocol == "sctp" {
            return Err(err(service, "sctp ports are not supported"));
        }
        let (start, end) = match port.published.as_deref() {
            None => (0, 0),
            Some(p) => {
                let (a, b) = p.split_once('-').unwrap_or((p, p));
                (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0))
            }
        };
        // A host range for one container port: docker compose takes the first port.
        ports.push(PortBinding {
            container_port: u32::from(port.target),
            protocol: port.protocol.clone(),
            host_ip: port.host_ip.clone().unwrap_or_default(),
            host_port: if end >= start { start } else { 0 },
        });
    }

    let mut mounts = Vec::new();
    for v in &s.volumes {
        let (source, create_source) = match (v.kind.as_str(), &v.source) {
            ("volume", Some(key)) => {
                let planned = volumes.iter().find(|p| &p.key == key).ok_or_else(|| err(service, format!("refers to undefined volume {key}")))?;
                (planned.name.clone(), false)
            }
            ("bind", Some(path)) => (resolve_path(dir, path).display().to_string(), true),
            ("bind", None) => return Err(err(service, format!("bind mount {} has no source", v.target))),
            _ => (String::new(), false),
        };
        mounts.push(Mount {
            r#type: v.kind.clone(),
            target: v.target.clone(),
            options: String::new(),
            read_only: v.read_only,
            source,
            no_copy: v.no_copy,
            create_source,
        });
    }
    for (kind, refs, objects, base) in [("secret", &s.secrets, &project.model.secrets, "/run/secrets/"), ("config", &s.configs, &project.model.configs, "/")] {
        for r in refs {
            let object = objects.get(&r.source).ok_or_else(|| err(service, format!("refers to undefined {kind} {}", r.source)))?;
            let file = object.file.as_deref().ok_or_else(|| err(service, format!("{kind} {}: only file sources are supported", r.source)))?;
            let path = resolve_path(dir, file);
            if !path.exists() {
                return Err(err(service, format!("{kind} {}: file {} not found", r.source, path.display())));
            }
            let target = match &r.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{base}{t}"),
                None => format!("{base}{}", r.source),
            };
            mounts.push(Mount {
                r#type: "bind".into(),
                target,
                options: String::new(),
                read_only: true,
                source: path.display().to_string(),
                no_copy: false,
                create_source: false,
            });
        }
    }

    // Networks: the service is reachable by its name on each; the first (by name,
    // `default` when none is given) is the one it is created on.
    let mut joined: Vec<(String, Vec<String>, String)> = Vec::new();
    let keys: Vec<(String, crate::model::ServiceNetwork)> =
        if s.networks.is_empty() { vec![("default".to_owned(), Default::default())] } else { s.networks.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
    for (key, spec) in keys {
        let planned = networks.iter().find(|n| n.key == key).ok_or_else(|| err(service, format!("refers to undefined network {key}")))?;
        let mut aliases = vec![service.to_owned()];
        aliases.extend(spec.aliases.iter().cloned());
        joined.push((planned.name.clone(), aliases, spec.ipv4_address.clone().unwrap_or_default()));
    }
    let (network_mode, aliases, ipv4) = joined.remove(0);

    let healthcheck = match &s.healthcheck {
        None => None,
        Some(h) if h.disable => Some(Healthcheck { test: vec!["NONE".into()], ..Default::default() }),
        Some(h) => {
            let duration = |v: &Option<String>| -> Result<i64, PlanError> {
                v.as_deref().map(berth_proto::units::parse_duration).transpose().map(|d| d.unwrap_or(0)).map_err(|e| err(service, format!("healthcheck: {e}")))
            };
            Some(Healthcheck {
                test: h.test.clone().unwrap_or_default(),
                interval: duration(&h.interval)?,
                timeout: duration(&h.timeout)?,
                start_period: duration(&h.start_period)?,
                retries: h.retries.unwrap_or(0),
            })
        }
    };
    let limits = s.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.clone()).unwrap_or_default();
    let resources = Resources {
        memory: limits.memory.as_deref().map(berth_proto::units::parse_bytes).transpose().map_err(|e| err(service, e))?.unwrap_or(0),
        nano_cpus: limits
            .cpus
            .as_deref()
            .map(|c| c.parse::<f64>().map(|c| (c * 1e9) as i64).map_err(|_| err(service, format!("invalid cpus {c:?}"))))
            .transpose()?
            .unwrap_or(0),
        pids_limit: limits.pids.unwrap_or(0),
        ..Default::default()
    };
    let restart_policy = s.restart.as_deref().map(berth_proto::units::parse_restart).transpose().map_err(|e| err(service, e))?;
    let stop_timeout = match &s.stop_grace_period {
        Some(p) => (berth_proto::units::parse_duration(p).map_err(|e| err(service, format!("stop_grace_period: {e}")))? / 1_000_000_000) as i32,
        None => -1,
    };
    let replicas = scale.or(s.deploy.as_ref().and_then(|d| d.replicas)).unwrap_or(1);
    if replicas > 1 && s.container_name.is_some() {
        return Err(err(service, "container_name is set, so it cannot have more than one replica"));
    }

    let create = CreateContainerRequest {
        name: String::new(),
        image,
        // The engine's trust policy applies whatever this says; DOCKER_CONTENT_TRUST
        // reaches compose's pulls (`credentials::pull_request`).
        require_signature: false,
        cmd: s.command.clone().unwrap_or_default(),
        entrypoint: s.entrypoint.clone().unwrap_or_default(),
        entrypoint_set: s.entrypoint.is_some(),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: s.working_dir.clone().unwrap_or_default(),
        user: s.user.clone().unwrap_or_default(),
        hostname: s.hostname.clone().unwrap_or_default(),
        labels: labels.into_iter().collect(),
        tty: s.tty,
        open_stdin: s.stdin_open,
        stdin_once: false,
        init: s.init.unwrap_or(false),
        stop_signal: s.stop_signal.clone().unwrap_or_default(),
        stop_timeout,
        auto_remove: false,
        read_only: s.read_only,
        privileged: s.privileged,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        security_opt: Vec::new(),
        resources: Some(resources),
        restart_policy,
        mounts,
        network_mode,
        healthcheck,
        network_aliases: aliases,
        ipv4_address: ipv4,
        mac_address: s.mac_address.clone().unwrap_or_default(),
        ports,
        publish_all: false,
        expose: s.expose.clone(),
        extra_hosts: s.extra_hosts.clone(),
        dns: s.dns.clone(),
        dns_search: s.dns_search.clone(),
        dns_options: s.dns_opt.clone(),
        shm_size: match &s.shm_size {
            Some(size) => berth_proto::units::parse_bytes(size).map_err(|e| err(service, format!("shm_size: {e}")))?,
            None => 0,
        },
        ulimits: s.ulimits.iter().map(|(name, (soft, hard))| berth_proto::v1::Ulimit { name: name.clone(), soft: *soft, hard: *hard }).collect(),
        sysctls: s.sysctls.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect(),
        group_add: s.group_add.clone(),
        log_driver: s.logging.as_ref().and_then(|l| l.driver.clone()).unwrap_or_default(),
        log_options: s.logging.iter().flat_map(|l| l.options.iter()).map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect(),
        pid_mode: s.pid.clone().unwrap_or_default(),
        ipc_mode: s.ipc.clone().unwrap_or_default(),
        uts_mode: s.uts.clone().unwrap_or_default(),
        cpuset_cpus: s.cpuset.clone().unwrap_or_default(),
        cpuset_mems: String::new(),
        volumes_from: Vec::new(),
        // A link names a service (its first container) or, outside the project, a
        // container; the alias defaults to that name.
        links: s
            .links
            .iter()
            .map(|l| {
                let (target, alias) = l.split_once(':').unwrap_or((l, l));
                let container = project
                    .model
                    .services
                    .get(target)
                    .map_or_else(|| target.to_owned(), |other| other.container_name.clone().unwrap_or_else(|| format!("{}-{target}-1", project.name)));
                format!("{container}:{alias}")
            })
            .collect(),
        cgroupns_mode: s.cgroup.clone().unwrap_or_default(),
        runtime: s.runtime.clone().unwrap_or_default(),
        memory_swappiness: None,
        devices: s.devices.clone(),
        device_cgroup_rules: s.device_cgroup_rules.clone(),
    };
    Ok(PlannedService {
        name: service.to_owned(),
        replicas,
        container_name: s.container_name.clone(),
        create,
        extra_networks: joined,
        hash,
        depends_on: s.depends_on.iter().map(|(k, d)| (k.clone(), d.condition.clone())).collect(),
        build: s.build.as_ref().map(|b| PlannedBuild {
            // `./web` in the file: the folder, without its `.` parts.
            context: dir.join(b.context.as_deref().unwrap_or(".")).components().collect(),
            dockerfile: b.dockerfile.clone().unwrap_or_default(),
            args: b.args.iter().filter_map(|(k, v)| v.clone().or_else(|| std::env::var(k).ok()).map(|v| (k.clone(), v))).collect(),
            target: b.target.clone().unwrap_or_default(),
        }),
        pull_policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{load_project, LoadOptions};

    /// A project in a scratch directory, removed when the project's guard drops.
    struct Scratch(Project);

    impl std::ops::Deref for Scratch {
        type Target = Project;
        fn deref(&self) -> &Project {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0.dir);
        }
    }

    fn project(yaml: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-plan-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("compose.yaml"), yaml).expect("write");
        std::fs::write(dir.join("app.env"), "FROM_FILE=1\nSHARED=file\n").expect("write");
        std::fs::write(dir.join("secret.txt"), "s3cret\n").expect("write");
        Scratch(load_project(&LoadOptions { working_dir: dir, project_name: Some("shop".into()), ..Default::default() }).expect("load"))
    }

    const STACK: &str = r#"
services:
  web:
    image: busybox
    ports: ["8080:80", "127.0.0.1:5353:53/udp"]
    networks:
      front:
        aliases: [www]
      back: {}
    depends_on:
      app: {condition: service_healthy}
    deploy: {replicas: 2, resources: {limits: {memory: 64M, cpus: "0.5"}}}
  app:
    image: busybox
    command: sleep 100
    env_file: app.env
    environment: {SHARED: env, EMPTY: ""}
    volumes: ["data:/data", "./conf:/conf:ro", "/scratch"]
    secrets: [token]
    healthcheck: {test: ["CMD", "true"], interval: 1s}
    restart: on-failure:3
    stop_grace_period: 1m
    networks: [back]
  tool:
    image: busybox
    profiles: [debug]
networks:
  front: {}
  back: {internal: true}
volumes:
  data: {labels: {keep: "yes"}}
secrets:
  token: {file: ./secret.txt}
"#;

    #[test]
    fn services_become_requests_with_compose_labels() {
        let project = project(STACK);
        let enabled = enabled_services(&project.model, &[], &[]).expect("enabled");
        assert_eq!(enabled.iter().cloned().collect::<Vec<_>>(), ["app", "web"], "profiles keep tool out");
        let plan = plan(&project, &enabled, &BTreeMap::new()).expect("plan");
        assert_eq!(plan.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["app", "web"]);
        assert_eq!(plan.networks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["shop_back", "shop_front"]);
        assert!(plan.networks[0].internal);
        assert_eq!(plan.networks[0].labels[LABEL_NETWORK], "back");
        assert_eq!(plan.volumes[0].name, "shop_data");
        assert_eq!(plan.volumes[0].labels["keep"], "yes");

        let web = plan.service("web").expect("web");
        assert_eq!(web.replicas, 2);
        let request = web.request_for("shop", 2);
        assert_eq!(request.name, "shop-web-2");
        assert_eq!(request.labels[LABEL_PROJECT], "shop");
        assert_eq!(request.labels[LABEL_SERVICE], "web");
        assert_eq!(request.labels[LABEL_NUMBER], "2");
        assert_eq!(request.labels[LABEL_ONEOFF], "False");
        assert_eq!(request.network_mode, "shop_back", "the first network by name");
        assert_eq!(request.network_aliases, ["web"]);
        assert_eq!(web.extra_networks, vec![("shop_front".to_owned(), vec!["web".to_owned(), "www".to_owned()], String::new())]);
        assert_eq!(request.ports.len(), 2);
        assert_eq!((request.ports[1].host_ip.as_str(), request.ports[1].host_port, request.ports[1].protocol.as_str()), ("127.0.0.1", 5353, "udp"));
        let resources = request.resources.expect("resources");
        assert_eq!((resources.memory, resources.nano_cpus), (64 << 20, 500_000_000));
        assert_eq!(web.depends_on["app"], "service_healthy");

        let app = plan.service("app").expect("app").request_for("shop", 1);
        assert_eq!(app.cmd, ["sleep", "100"]);
        assert_eq!(app.env, ["EMPTY=", "FROM_FILE=1", "SHARED=env"]);
        assert_eq!(app.mounts[0].source, "shop_data");
        assert!(app.mounts[1].source.ends_with("/conf") && app.mounts[1].read_only && app.mounts[1].create_source);
        assert_eq!((app.mounts[2].r#type.as_str(), app.mounts[2].source.as_str()), ("volume", ""));
        assert_eq!(app.mounts[3].target, "/run/secrets/token");
        assert_eq!(app.restart_policy.clone().expect("restart").maximum_retry_count, 3);
        assert_eq!(app.stop_timeout, 60);
        assert_eq!(app.healthcheck.clone().expect("health").interval, 1_000_000_000);
    }

    #[test]
    fn the_hash_follows_the_definition_not_the_scale() {
        let base = project(STACK);
        let enabled = enabled_services(&base.model, &[], &[]).expect("enabled");
        let a = plan(&base, &enabled, &BTreeMap::new()).expect("plan");
        let scaled = plan(&base, &enabled, &BTreeMap::from([("web".to_owned(), 5)])).expect("plan");
        assert_eq!(a.service("web").expect("web").hash, scaled.service("web").expect("web").hash);
        assert_eq!(scaled.service("web").expect("web").replicas, 5);
        let changed = project(&STACK.replace("command: sleep 100", "command: sleep 200"));
        let b = plan(&changed, &enabled, &BTreeMap::new()).expect("plan");
        assert_ne!(a.service("app").expect("app").hash, b.service("app").expect("app").hash);
        assert_eq!(a.service("web").expect("web").hash, b.service("web").expect("web").hash);
    }

    #[test]
    fn host_settings_reach_the_request() {
        let p = project(
            "services:\n  a:\n    image: x\n    extra_hosts: ['db.local:10.0.0.5', 'gw=host-gateway']\n    dns: 10.0.0.53\n    dns_search: [corp.test]\n    dns_opt: ['ndots:2']\n    shm_size: 256m\n    ulimits:\n      nproc: 512\n      nofile: {soft: 1024, hard: 2048}\n    sysctls: {net.core.somaxconn: 1024}\n    group_add: [staff, 4242]\n    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}\n    pid: host\n    ipc: shareable\n    uts: host\n    cpuset: 0-1\n    runtime: runc\n    cgroup: private\n    links: [b, 'b:database', 'outside:o']\n  b:\n    image: x\n",
        );
        let all = enabled_services(&p.model, &[], &[]).expect("enabled");
        let planned = plan(&p, &all, &BTreeMap::new()).expect("plan");
        let create = &planned.service("a").expect("a").create;
        assert_eq!(create.extra_hosts, ["db.local:10.0.0.5", "gw:host-gateway"]);
        assert_eq!(
            (create.dns.as_slice(), create.dns_search.as_slice(), create.dns_options.as_slice()),
            (&["10.0.0.53".to_owned()][..], &["corp.test".to_owned()][..], &["ndots:2".to_owned()][..])
        );
        assert_eq!(create.shm_size, 256 << 20);
        let limits: Vec<(&str, i64, i64)> = create.ulimits.iter().map(|u| (u.name.as_str(), u.soft, u.hard)).collect();
        assert_eq!(limits, [("nofile", 1024, 2048), ("nproc", 512, 512)]);
        assert_eq!(create.sysctls.get("net.core.somaxconn").map(String::as_str), Some("1024"));
        assert_eq!(create.group_add, ["staff", "4242"]);
        assert_eq!(create.log_driver, "json-file");
        assert_eq!(create.log_options.get("max-file").map(String::as_str), Some("3"));
        assert_eq!(create.log_options.get("max-size").map(String::as_str), Some("10m"));
        assert_eq!(
            (create.pid_mode.as_str(), create.ipc_mode.as_str(), create.uts_mode.as_str(), create.cpuset_cpus.as_str()),
            ("host", "shareable", "host", "0-1")
        );
        assert_eq!((create.runtime.as_str(), create.cgroupns_mode.as_str()), ("runc", "private"));
        assert_eq!(create.links, [format!("{}-b-1:b", p.name), format!("{}-b-1:database", p.name), "outside:o".to_owned()]);
        assert_eq!(crate::graph::start_order(&p.model).expect("order"), ["b", "a"]);
        // A half-given limit is the file's error, named.
        let dir = std::env::temp_dir().join(format!("berth-plan-{}-ulimit", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("compose.yaml"), "services:\n  a:\n    image: x\n    ulimits:\n      nofile: {soft: 1}\n").expect("write");
        let refused = load_project(&LoadOptions { working_dir: dir.clone(), project_name: Some("shop".into()), ..Default::default() }).expect_err("refused");
        assert!(refused.to_string().contains("nofile: expected a number or soft and hard numbers"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_references_are_named() {
        let p = project("services:\n  a:\n    image: x\n    networks: [nowhere]\n");
        let all = enabled_services(&p.model, &[], &[]).expect("enabled");
        assert_eq!(plan(&p, &all, &BTreeMap::new()).expect_err("network").to_string(), "service a: refers to undefined network nowhere");
        let p = project("services:\n  a:\n    image: x\n    volumes: ['gone:/x']\n");
        assert_eq!(plan(&p, &all, &BTreeMap::new()).expect_err("volume").to_string(), "service a: refers to undefined volume gone");
        let p = project("services:\n  a:\n    image: x\n    container_name: fixed\n    deploy: {replicas: 2}\n");
        assert!(plan(&p, &all, &BTreeMap::new()).expect_err("replicas").to_string().contains("container_name"));
        assert_eq!(enabled_services(&p.model, &[], &["b".into()]).expect_err("unknown"), "no such service: b");
    }
}
