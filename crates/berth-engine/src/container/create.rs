//! `create`: checks the request the way docker does, merges it with the image's
//! config, and records the container. Nothing runs yet and nothing is mounted.

use std::collections::BTreeMap;

use serde_json::Value;

use super::record::{ContainerConfig, ContainerRecord, HostConfig, Resources, RestartPolicy, State, Status, TmpfsMount};
use super::{caps, new_id, now_rfc3339, signal, ContainerError, Containers};

/// What a client asks for (the gRPC request and, later, docker's create body, map
/// onto this).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub image: String,
    /// A verified signature by a key of the trust policy is required even where no
    /// rule covers the image's repository (`DOCKER_CONTENT_TRUST=1`).
    pub require_signature: bool,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Docker's StdinOnce.
    pub stdin_once: bool,
    pub init: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<i32>,
    pub auto_remove: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub resources: Resources,
    pub restart_policy: RestartPolicy,
    pub tmpfs: Vec<TmpfsMount>,
    pub network_mode: String,
    /// `--network-alias`, on the network of `network_mode`.
    pub network_aliases: Vec<String>,
    /// `--ip`.
    pub ipv4_address: String,
    /// `--mac-address` on the network it starts on.
    pub mac_address: String,
    /// `-p`, one entry per port.
    pub ports: Vec<crate::network::PortBinding>,
    /// `-P`.
    pub publish_all: bool,
    /// `--expose` ("80" or "80/tcp").
    pub expose: Vec<String>,
    /// Changes to the image's health check (`--health-*`; test `["NONE"]` disables it).
    pub healthcheck: Option<super::record::Healthcheck>,
    /// Volume and bind mounts.
    pub mounts: Vec<MountRequest>,
    /// `--add-host`, `--dns*`, `--shm-size`, `--ulimit`, `--sysctl`, `--group-add`.
    pub extras: super::record::HostExtras,
}

/// A volume or bind mount as asked for.
#[derive(Debug, Clone, Default)]
pub struct MountRequest {
    /// "volume" or "bind".
    pub kind: String,
    /// Volume name (empty: anonymous) or host path.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub no_copy: bool,
    /// bind: create the host directory if missing (`-v`).
    pub create_source: bool,
}

/// The image config fields a container inherits.
#[derive(Debug, Default)]
pub(crate) struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub healthcheck: Option<super::record::Healthcheck>,
    /// The image's VOLUME paths.
    pub volumes: Vec<String>,
    /// The image's ExposedPorts ("80/tcp").
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    pub(crate) fn parse(config_blob: &[u8]) -> ImageConfig {
        let value: Value = serde_json::from_slice(config_blob).unwrap_or(Value::Null);
        let c = &value["config"];
        let strings = |v: &Value| -> Vec<String> { v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default() };
        ImageConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"]),
            working_dir: c["WorkingDir"].as_str().unwrap_or("").to_owned(),
            user: c["User"].as_str().unwrap_or("").to_owned(),
            labels: c["Labels"].as_object().map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()).unwrap_or_default(),
            stop_signal: c["StopSignal"].as_str().unwrap_or("").to_owned(),
            volumes: c["Volumes"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
            exposed_ports: c["ExposedPorts"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
            healthcheck: c["Healthcheck"].as_object().map(|h| super::record::Healthcheck {
                test: strings(&h.get("Test").cloned().unwrap_or(Value::Null)),
                interval: h.get("Interval").and_then(Value::as_i64).unwrap_or(0),
                timeout: h.get("Timeout").and_then(Value::as_i64).unwrap_or(0),
                start_period: h.get("StartPeriod").and_then(Value::as_i64).unwrap_or(0),
                retries: h.get("Retries").and_then(Value::as_u64).unwrap_or(0) as u32,
            }),
        }
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphanumeric() && bytes[1..].iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

const ADJECTIVES: [&str; 16] =
    ["brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nimble", "quiet", "swift", "tidy", "vivid", "wise", "zesty"];
const NOUNS: [&str; 16] =
    ["anchor", "bollard", "buoy", "cargo", "dock", "ferry", "harbor", "keel", "mast", "pier", "quay", "rudder", "schooner", "tugboat", "wharf", "yawl"];

fn generated_name(id: &str) -> String {
    let n = u64::from_str_radix(&id[..8.min(id.len())], 16).unwrap_or(0);
    format!("{}_{}_{}", ADJECTIVES[(n % 16) as usize], NOUNS[((n / 16) % 16) as usize], &id[8..12.min(id.len())])
}

/// Merges `KEY=VALUE` lists: later keys replace earlier ones, order kept.
pub(crate) fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if let Some(slot) = out.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            *slot = entry.clone();
        } else {
            out.push(entry.clone());
        }
    }
    out
}

/// A new container's environment as dockerd orders it: the request's entries first, then
/// the image's that the request does not set (`docker inspect` shows this order, and
/// `docker commit` keeps it).
pub(crate) fn container_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut out = merge_env(&[], request);
    for entry in image {
        if !out.iter().any(|e| key(e) == key(entry)) {
            out.push(entry.clone());
        }
    }
    out
}

pub(super) fn validate(request: &CreateRequest, cpus: usize) -> Result<(), ContainerError> {
    let invalid = |m: String| Err(ContainerError::Invalid(m));
    if !request.name.is_empty() && !valid_name(request.name.trim_start_matches('/')) {
        return invalid(format!("invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", request.name));
    }
    let r = &request.resources;
    if r.memory != 0 && r.memory < 6 * 1024 * 1024 {
        return invalid("Minimum memory limit allowed is 6MB".to_owned());
    }
    if r.memory < 0 {
        return invalid("invalid memory limit: it cannot be negative".to_owned());
    }
    if r.memory_swap > 0 && r.memory == 0 {
        return invalid("you should always set the memory limit when using the memoryswap limit, see usage".to_owned());
    }
    if r.memory_swap > 0 && r.memory_swap < r.memory {
        return invalid("minimum memoryswap limit should be larger than memory limit, see usage".to_owned());
    }
    let extras = &request.extras;
    if extras.memory_reservation < 0 {
        return invalid("invalid memory reservation: it cannot be negative".to_owned());
    }
    if r.memory > 0 && extras.memory_reservation > r.memory {
        return invalid("Minimum memory limit can not be less than memory reservation limit, see usage".to_owned());
    }
    if extras.cpu_rt_period < 0 || extras.cpu_rt_runtime < 0 {
        return invalid("invalid cpu real-time period or runtime: it cannot be negative".to_owned());
    }
    if extras.cpu_rt_period > 0 && extras.cpu_rt_runtime > extras.cpu_rt_period {
        return invalid("cpu real-time runtime cannot be higher than cpu real-time period".to_owned());
    }
    if extras.cgroup_parent.split('/').any(|part| part == "..") {
        return invalid(format!("invalid cgroup parent {:?}: it may not climb with ..", extras.cgroup_parent));
    }
    if r.nano_cpus < 0 || r.nano_cpus > cpus as i64 * 1_000_000_000 {
        return invalid(format!("range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"));
    }
    if r.nano_cpus > 0 && r.nano_cpus < 10_000_000 {
        return invalid(format!("range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"));
    }
    if r.cpu_shares < 0 {
        return invalid("invalid CPU shares: it cannot be negative".to_owned());
    }
    if r.pids_limit < -1 {
        return invalid("invalid PIDs limit: it cannot be less than -1".to_owned());
    }
    for device in &extras.devices {
        device.validate().map_err(ContainerError::Invalid)?;
        // The node must be there now (and is looked at again at each start).
        super::spec::host_devices(std::slice::from_ref(device)).map_err(ContainerError::Invalid)?;
    }
    for rule in &extras.device_cgroup_rules {
        super::record::parse_device_cgroup_rule(rule).map_err(ContainerError::Invalid)?;
    }
    if !matches!(extras.cgroupns_mode.as_str(), "" | "host" | "private") {
        return invalid(format!("invalid cgroup namespace mode: {}", extras.cgroupns_mode));
    }
    if extras.memory_swappiness.is_some_and(|s| !(0..=100).contains(&s)) {
        return invalid(format!("Invalid value: {}, valid memory swappiness range is 0-100", extras.memory_swappiness.unwrap_or_default()));
    }
    extras.pid().map_err(ContainerError::Invalid)?;
    extras.ipc().map_err(ContainerError::Invalid)?;
    if extras.uts().map_err(ContainerError::Invalid)? == super::record::NamespaceMode::Host && !request.hostname.is_empty() {
        return invalid("conflicting options: hostname and the UTS mode".to_owned());
    }
    if !extras.cpuset_cpus.is_empty() {
        let wanted = super::record::cpuset_list(&extras.cpuset_cpus)
            .map_err(|_| ContainerError::Invalid(format!("Invalid value {} for cpuset cpus", extras.cpuset_cpus)))?;
        if wanted.iter().any(|&c| c as usize >= cpus) {
            return invalid(format!("Requested CPUs are not available - requested {}, available: 0-{}", extras.cpuset_cpus, cpus.saturating_sub(1)));
        }
    }
    if !extras.cpuset_mems.is_empty() {
        let wanted = super::record::cpuset_list(&extras.cpuset_mems)
            .map_err(|_| ContainerError::Invalid(format!("Invalid value {} for cpuset mems", extras.cpuset_mems)))?;
        let online = std::fs::read_to_string("/sys/devices/system/node/online").unwrap_or_else(|_| "0".to_owned());
        let available = super::record::cpuset_list(online.trim()).unwrap_or_default();
        if !wanted.is_subset(&available) {
            return invalid(format!("Requested memory nodes are not available - requested {}, available: {}", extras.cpuset_mems, online.trim()));
        }
    }
    match request.restart_policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if request.restart_policy.maximum_retry_count > 0 {
                return invalid(format!("maximum retry count cannot be used with restart policy '{}'", request.restart_policy.name));
            }
        }
        "on-failure" => {}
        other => return invalid(format!("invalid restart policy '{other}'")),
    }
    if request.auto_remove && !matches!(request.restart_policy.name.as_str(), "" | "no") {
        return Err(ContainerError::Conflict("conflicting options: cannot specify both --restart and --rm".to_owned()));
    }
    if !request.stop_signal.is_empty() && signal::parse(&request.stop_signal).is_none() {
        return invalid(format!("invalid signal: {}", request.stop_signal));
    }
    for cap in request.cap_add.iter().chain(&request.cap_drop) {
        caps::normalise(cap).map_err(|e| ContainerError::Invalid(e.to_string()))?;
    }
    for opt in &request.security_opt {
        parse_security_opt(opt)?;
    }
    let mut targets = std::collections::BTreeSet::new();
    for target in request.tmpfs.iter().map(|t| &t.target).chain(request.mounts.iter().map(|m| &m.target)) {
        if !target.starts_with('/') {
            return invalid(format!("invalid mount path {target:?}: mount path must be absolute"));
        }
        if target.trim_end_matches('/').is_empty() {
            return invalid("invalid mount path \"/\": the root cannot be a mount".to_owned());
        }
        if !targets.insert(target.trim_end_matches('/').to_owned()) {
            return invalid(format!("duplicate mount point: {target}"));
        }
    }
    for mount in &request.mounts {
        match mount.kind.as_str() {
            "volume" => {
                if !mount.source.is_empty() && !crate::volume::valid_name(&mount.source) {
                    return invalid(format!("invalid volume name {:?}", mount.source));
                }
            }
            "bind" => {
                if !mount.source.starts_with('/') {
                    return invalid(format!("invalid bind source {:?}: it must be an absolute host path", mount.source));
                }
                if !mount.create_source && !std::path::Path::new(&mount.source).exists() {
                    return invalid(format!("invalid mount config for type \"bind\": bind source path does not exist: {}", mount.source));
                }
            }
            other => return invalid(format!("invalid mount type {other:?}")),
        }
    }
    for port in &request.ports {
        if port.container_port == 0 || !matches!(port.protocol.as_str(), "tcp" | "udp") {
            return invalid(format!("invalid port {}/{}", port.container_port, port.protocol));
        }
    }
    for port in &request.expose {
        parse_port_proto(port)?;
    }
    if let Some(check) = &request.healthcheck {
        if check.interval < 0 || check.timeout < 0 || check.start_period < 0 {
            return invalid("health check durations cannot be negative".to_owned());
        }
        if (check.interval > 0 && check.interval < 1_000_000) || (check.timeout > 0 && check.timeout < 1_000_000) {
            return invalid("interval and timeout of a health check must be at least 1ms".to_owned());
        }
        match check.test.first().map(String::as_str) {
            None | Some("NONE") | Some("CMD") | Some("CMD-SHELL") => {}
            Some(other) => return invalid(format!("unknown health check type {other:?}: use CMD, CMD-SHELL or NONE")),
        }
    }
    if !request.working_dir.is_empty() && !request.working_dir.starts_with('/') {
        return invalid(format!("the working directory '{}' is invalid, it needs to be an absolute path", request.working_dir));
    }
    Ok(())
}

/// "80", "80/tcp" or "53/udp" as docker writes exposed ports ("80/tcp").
fn parse_port_proto(spec: &str) -> Result<(u16, String), ContainerError> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    match port.parse::<u16>() {
        Ok(p) if p > 0 && matches!(proto.as_str(), "tcp" | "udp") => Ok((p, proto)),
        _ => Err(ContainerError::Invalid(format!("invalid port {spec:?}: use port[/tcp|/udp]"))),
    }
}

/// A parsed `--security-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecurityOpt {
    NoNewPrivileges(bool),
    SeccompUnconfined,
    /// A profile in the OCI/docker JSON form.
    SeccompProfile(String),
    /// AppArmor and SELinux options: valid, and without effect where neither runs.
    Inert,
}

pub(crate) fn parse_security_opt(opt: &str) -> Result<SecurityOpt, ContainerError> {
    let bad = || ContainerError::Invalid(format!("invalid --security-opt: {opt:?}"));
    let (key, value) = match opt.split_once(['=', ':']) {
        Some((k, v)) => (k, Some(v)),
        None => (opt, None),
    };
    match (key, value) {
        ("no-new-privileges", None) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some(v)) => v.parse::<bool>().map(SecurityOpt::NoNewPrivileges).map_err(|_| bad()),
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::SeccompUnconfined),
        ("seccomp", Some(json)) if json.trim_start().starts_with('{') => {
            serde_json::from_str::<oci_spec::runtime::LinuxSeccomp>(json).map_err(|e| ContainerError::Invalid(format!("invalid seccomp profile: {e}")))?;
            Ok(SecurityOpt::SeccompProfile(json.to_owned()))
        }
        // Accepted as docker accepts them on a host without AppArmor or SELinux (as
        // Berth's VM and most hosts are): recorded, with nothing to apply.
        ("apparmor", Some(profile)) if !profile.is_empty() => Ok(SecurityOpt::Inert),
        ("label", Some(label))
            if matches!(label, "disable" | "nested")
                || ["user:", "role:", "type:", "level:", "filetype:"].iter().any(|p| label.starts_with(p) && label.len() > p.len()) =>
        {
            Ok(SecurityOpt::Inert)
        }
        _ => Err(bad()),
    }
}

impl Containers {
    /// Records a new container; returns it.
    pub async fn create(&self, mut request: CreateRequest) -> Result<ContainerRecord, ContainerError> {
        for mount in request.mounts.iter_mut().filter(|m| m.kind == "bind") {
            mount.source = self.runtime.bind_source(&mount.source);
        }
        validate(&request, self.facts.cpus)?;
        // A weight the kernel cannot apply is discarded (a warning), not checked: dockerd's order.
        let blkio = &request.extras.blkio;
        if self.facts.blkio.weight {
            if blkio.weight > 0 && !(10..=1000).contains(&blkio.weight) {
                return Err(ContainerError::Invalid("Range of blkio weight is from 10 to 1000".to_owned()));
            }
            if let Some(d) = blkio.weight_device.iter().find(|d| !(10..=1000).contains(&d.rate)) {
                return Err(ContainerError::Invalid(format!("invalid weight for device {}: range of blkio weight is from 10 to 1000", d.path)));
            }
        }
        let mut request = self.with_volumes_from(request)?;
        // Recorded by name, the default's too (inspect says which runs it, as dockerd's
        // "runc").
        request.extras.runtime = self.runtime.resolve(&request.extras.runtime).map_err(ContainerError::Invalid)?.0.to_owned();
        for link in &request.extras.links {
            let (name, _) = super::record::parse_link(link);
            self.find(&name).map_err(|_| ContainerError::Invalid(format!("could not get container for {name}")))?;
        }
        for mount in request.mounts.iter().filter(|m| m.kind == "bind") {
            // The engine's own folders (a build's context and cache mounts) are the VM's.
            if !std::path::Path::new(&mount.source).starts_with(self.images.home()) {
                self.runtime.check_bind_source(&mount.source).map_err(ContainerError::Invalid)?;
            }
        }
        if request.init && self.runtime.init.is_none() {
            return Err(ContainerError::Invalid(
                "--init needs a statically linked init: install tini (its tini-static), build berth-monitor for musl, or set BERTH_INIT".to_owned(),
            ));
        }
        let image = self.images.resolve(&request.image)?.ok_or_else(|| ContainerError::NoImage(request.image.clone()))?;
        self.images.enforce_on_create(&request.image, &image, request.require_signature)?;
        let blob = self.images.content.read(&image.id).await.map_err(|e| ContainerError::Invalid(format!("image {}: {e}", request.image)))?;
        let image_config = ImageConfig::parse(&blob);

        let entrypoint = request.entrypoint.clone().unwrap_or_else(|| image_config.entrypoint.clone());
        let cmd = if !request.cmd.is_empty() {
            request.cmd.clone()
        } else if request.entrypoint.is_some() {
            // Docker: a new entrypoint resets the image's Cmd.
            Vec::new()
        } else {
            image_config.cmd.clone()
        };
        let mut argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
        if argv.is_empty() {
            return Err(ContainerError::Invalid("no command specified".to_owned()));
        }
        let path = argv.remove(0);

        let id = new_id();
        let (network_mode, networks) = self.network_of(&request)?;
        request.extras.validate(&network_mode).map_err(ContainerError::Invalid)?;
        let mut exposed_ports: Vec<String> = image_config.exposed_ports.clone();
        for spec in request.expose.iter() {
            let (port, proto) = parse_port_proto(spec)?;
            exposed_ports.push(format!("{port}/{proto}"));
        }
        exposed_ports.extend(request.ports.iter().map(|p| format!("{}/{}", p.container_port, p.protocol)));
        exposed_ports.sort();
        exposed_ports.dedup();
        let name = if request.name.is_empty() { generated_name(&id) } else { request.name.trim_start_matches('/').to_owned() };
        let hostname = if request.hostname.is_empty() { id[..12].to_owned() } else { request.hostname.clone() };
        let mut labels = image_config.labels.clone();
        labels.extend(request.labels.clone());
        let mut env = container_env(&image_config.env, &request.env);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned());
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image_id: image.id.to_string(),
            path,
            args: argv,
            config: ContainerConfig {
                image: request.image.clone(),
                cmd,
                entrypoint: request.entrypoint.clone().or(Some(entrypoint)).filter(|e| !e.is_empty()),
                env,
                working_dir: if request.working_dir.is_empty() { image_config.working_dir } else { request.working_dir.clone() },
                user: if request.user.is_empty() { image_config.user } else { request.user.clone() },
                hostname,
                labels,
                tty: request.tty,
                open_stdin: request.open_stdin,
                stdin_once: request.stdin_once,
                stop_signal: if !request.stop_signal.is_empty() {
                    request.stop_signal.clone()
                } else if !image_config.stop_signal.is_empty() {
                    image_config.stop_signal
                } else {
                    "SIGTERM".to_owned()
                },
                stop_timeout: request.stop_timeout,
                healthcheck: super::health::merge(image_config.healthcheck.clone(), request.healthcheck.clone()).filter(|h| !h.test.is_empty()),
                exposed_ports,
            },
            host_config: HostConfig {
                auto_remove: request.auto_remove,
                read_only: request.read_only,
                privileged: request.privileged,
                cap_add: request.cap_add.clone(),
                cap_drop: request.cap_drop.clone(),
                security_opt: request.security_opt.clone(),
                resources: request.resources.clone(),
                restart_policy: RestartPolicy {
                    name: if request.restart_policy.name.is_empty() { "no".to_owned() } else { request.restart_policy.name.clone() },
                    maximum_retry_count: request.restart_policy.maximum_retry_count,
                },
                tmpfs: request.tmpfs.clone(),
                network_mode,
                init: request.init,
                mounts: Vec::new(),
                port_bindings: request.ports.clone(),
                publish_all_ports: request.publish_all,
                extras: request.extras.clone(),
            },
            state: State { status: Status::Created, ..Default::default() },
            networks,
        };
        let mut record = record;
        // A journal first: a kill before the record is written leaves volumes and a
        // folder that `sweep_unfinished_creates` (at the next start) then removes.
        let journal = self.root.join(format!("{id}.creating"));
        let anonymous = anonymous_names(&request, &image_config.volumes);
        std::fs::write(&journal, anonymous.join("\n")).map_err(ContainerError::io(format!("write {}", journal.display())))?;
        let dir = self.dir(&id);
        let made = self.make_mounts(&request, &image_config.volumes, &anonymous).and_then(|mounts| {
            record.host_config.mounts = mounts;
            std::fs::create_dir_all(&dir).map_err(ContainerError::io(format!("create {}", dir.display())))?;
            crate::failpoint("container-create-before-record");
            self.store.insert(&record).map_err(ContainerError::from)
        });
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&dir);
            self.drop_new_volumes(&anonymous);
            let _ = std::fs::remove_file(&journal);
            return Err(err);
        }
        let _ = std::fs::remove_file(&journal);
        self.images.mark_used(&record.image_id, &record.id);
        for mount in record.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.mark_used(&mount.source, &record.id);
        }
        self.publish(&record, "create", &[]);
        self.changed(&record.id);
        Ok(record)
    }
}

impl Containers {
    /// `--volumes-from NAME[:ro|:rw]`: the other container's volumes and binds at the
    /// same targets (read-only or not as the mode says, else as each was), wherever the
    /// request mounts nothing of its own. Its volumes are shared, never copied into.
    fn with_volumes_from(&self, mut request: CreateRequest) -> Result<CreateRequest, ContainerError> {
        for from in request.extras.volumes_from.clone() {
            let (name, read_only) = match from.rsplit_once(':') {
                None => (from.as_str(), None),
                Some((name, "ro")) => (name, Some(true)),
                Some((name, "rw")) => (name, Some(false)),
                Some((_, mode)) => return Err(ContainerError::Invalid(format!("invalid mode for volumes-from: {mode}"))),
            };
            // Not a 404: clients take a 404 from create for a missing image and pull.
            let donor = self.find(name).map_err(|e| match e {
                ContainerError::NotFound(_) => ContainerError::Invalid(format!("No such container: {name}")),
                other => other,
            })?;
            for mount in &donor.host_config.mounts {
                let covered = |target: &str| target.trim_end_matches('/') == mount.target.trim_end_matches('/');
                if request.mounts.iter().any(|m| covered(&m.target)) || request.tmpfs.iter().any(|t| covered(&t.target)) {
                    continue;
                }
                request.mounts.push(MountRequest {
                    kind: mount.kind.clone(),
                    source: mount.source.clone(),
                    target: mount.target.clone(),
                    read_only: read_only.unwrap_or(mount.read_only),
                    no_copy: true,
                    create_source: false,
                });
            }
        }
        Ok(request)
    }

    /// The network mode as recorded and the networks the container joins, checked the
    /// way docker checks them.
    fn network_of(&self, request: &CreateRequest) -> Result<(String, Vec<crate::network::EndpointRequest>), ContainerError> {
        if !request.mac_address.is_empty() {
            crate::network::ipam::parse_mac(&request.mac_address).map_err(ContainerError::Invalid)?;
        }
        let scoped = !request.network_aliases.is_empty() || !request.ipv4_address.is_empty() || !request.mac_address.is_empty();
        let mode = request.network_mode.as_str();
        match mode {
            "host" | "none" => {
                if scoped {
                    return Err(ContainerError::Invalid(format!("network-scoped aliases and --ip are not supported with --network {mode}")));
                }
                Ok((mode.to_owned(), Vec::new()))
            }
            _ if mode.starts_with("container:") => {
                if scoped || !request.ports.is_empty() || request.publish_all {
                    return Err(ContainerError::Invalid(
                        "conflicting options: port publishing, aliases and --ip cannot be used with the container network mode".into(),
                    ));
                }
                let other = self.find(&mode["container:".len()..])?;
                Ok((format!("container:{}", other.id), Vec::new()))
            }
            _ => {
                let key = if matches!(mode, "" | "default") { "bridge" } else { mode };
                let network = self.networks.find(key)?;
                match network.driver.as_str() {
                    "host" | "null" => return Err(ContainerError::Invalid("use --network host or --network none by name".into())),
                    _ => {}
                }
                if network.name == "bridge" && !request.network_aliases.is_empty() {
                    return Err(ContainerError::Invalid("network-scoped alias is supported only for containers in user defined networks".into()));
                }
                if !request.ipv4_address.is_empty() && !network.user_subnet {
                    return Err(ContainerError::Invalid(
                        "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                    ));
                }
                let mode = if network.name == "bridge" { "bridge".to_owned() } else { network.name.clone() };
                Ok((
                    mode,
                    vec![crate::network::EndpointRequest {
                        network_id: network.id,
                        aliases: request.network_aliases.clone(),
                        ipv4_address: request.ipv4_address.clone(),
                        mac_address: request.mac_address.clone(),
                    }],
                ))
            }
        }
    }

    /// The container's volume and bind mounts: named volumes made if missing, a new
    /// anonymous volume for each image VOLUME (and `-v /path`) nothing else covers,
    /// missing `-v` host directories created.
    /// `anonymous` names the anonymous volumes, in the order `wanted_mounts` gives them.
    fn make_mounts(&self, request: &CreateRequest, image_volumes: &[String], anonymous: &[String]) -> Result<Vec<super::record::MountPoint>, ContainerError> {
        let mut mounts = Vec::new();
        let mut names = anonymous.iter();
        for m in wanted_mounts(request, image_volumes) {
            let source = match m.kind.as_str() {
                "volume" => {
                    let anonymous = m.source.is_empty();
                    let name = if anonymous { names.next().map(String::as_str) } else { Some(m.source.as_str()) };
                    let (volume, _) = self
                        .volumes
                        .create(name, "local", BTreeMap::new(), BTreeMap::new(), anonymous)
                        .map_err(|e| ContainerError::Invalid(berth_proto::error_chain(&e)))?;
                    volume.name
                }
                _ => {
                    // Only a missing source is made (a folder, as docker makes it); a
                    // file or a socket that exists (/var/run/docker.sock) is mounted as is.
                    if m.create_source && std::fs::metadata(&m.source).is_err() {
                        std::fs::create_dir_all(&m.source).map_err(ContainerError::io(format!("create the bind source {}", m.source)))?;
                    }
                    m.source.clone()
                }
            };
            mounts.push(super::record::MountPoint { kind: m.kind, source, target: m.target, read_only: m.read_only, no_copy: m.no_copy });
        }
        Ok(mounts)
    }

    /// Anonymous volumes made for a container that was not created after all.
    fn drop_new_volumes(&self, names: &[String]) {
        for name in names {
            if self.volumes.get(name).ok().flatten().is_some_and(|v| v.anonymous) {
                let _ = self.volumes.remove(name, true);
            }
        }
    }

    /// Undoes the creates a kill interrupted: each `<id>.creating` journal without a
    /// record of its container names the anonymous volumes it made; they, the folder
    /// and the journal go. Call once at open, before any create.
    pub(crate) fn sweep_unfinished_creates(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".creating") else { continue };
            if self.store.get(id).ok().flatten().is_none() {
                let volumes: Vec<String> = std::fs::read_to_string(entry.path()).unwrap_or_default().lines().map(str::to_owned).collect();
                tracing::warn!(container = %id, volumes = volumes.len(), "removing what an interrupted create left");
                self.drop_new_volumes(&volumes);
                let _ = std::fs::remove_dir_all(self.dir(id));
            }
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The volume and bind mounts a create asks for: the request's, then an anonymous
/// volume for each image VOLUME nothing else covers.
fn wanted_mounts(request: &CreateRequest, image_volumes: &[String]) -> Vec<MountRequest> {
    let covered = |target: &str| {
        let t = target.trim_end_matches('/');
        request.mounts.iter().any(|m| m.target.trim_end_matches('/') == t) || request.tmpfs.iter().any(|m| m.target.trim_end_matches('/') == t)
    };
    request
        .mounts
        .iter()
        .cloned()
        .chain(image_volumes.iter().filter(|t| !covered(t)).map(|t| MountRequest { kind: "volume".into(), target: t.clone(), ..Default::default() }))
        .collect()
}

/// A fresh name for each anonymous volume the create will make.
fn anonymous_names(request: &CreateRequest, image_volumes: &[String]) -> Vec<String> {
    wanted_mounts(request, image_volumes).iter().filter(|m| m.kind == "volume" && m.source.is_empty()).map(|_| super::new_id()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_by_key() {
        let merged = merge_env(&["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(merged, vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn a_containers_env_is_the_requests_then_the_images() {
        let env = container_env(&["PATH=/bin".into(), "A=1".into(), "C=4".into()], &["B=3".into(), "A=2".into()]);
        assert_eq!(env, vec!["B=3", "A=2", "PATH=/bin", "C=4"]);
    }

    #[test]
    fn requests_are_checked_like_docker() {
        let ok = CreateRequest { image: "busybox".into(), ..Default::default() };
        assert!(validate(&ok, 2).is_ok());
        let bad = |f: &dyn Fn(&mut CreateRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            validate(&r, 2).expect_err("must be refused").to_string()
        };
        assert_eq!(bad(&|r| r.resources.memory = 1024), "Minimum memory limit allowed is 6MB");
        assert!(bad(&|r| r.resources.nano_cpus = 3_000_000_000).contains("range of CPUs is from 0.01 to 2.00"));
        assert!(bad(&|r| r.name = "bad name".into()).contains("invalid container name"));
        assert!(bad(&|r| r.restart_policy.name = "sometimes".into()).contains("invalid restart policy"));
        assert!(bad(&|r| {
            r.auto_remove = true;
            r.restart_policy.name = "always".into();
        })
        .contains("cannot specify both --restart and --rm"));
        assert!(bad(&|r| r.stop_signal = "SIGNOPE".into()).contains("invalid signal"));
        assert!(bad(&|r| r.cap_add = vec!["FLY".into()]).contains("unknown capability"));
        assert!(bad(&|r| r.security_opt = vec!["bogus".into()]).contains("invalid --security-opt"));
        assert!(bad(&|r| r.working_dir = "rel".into()).contains("needs to be an absolute path"));
        assert_eq!(parse_security_opt("no-new-privileges").expect("nnp"), SecurityOpt::NoNewPrivileges(true));
        assert_eq!(parse_security_opt("no-new-privileges:false").expect("nnp"), SecurityOpt::NoNewPrivileges(false));
        assert_eq!(parse_security_opt("seccomp=unconfined").expect("seccomp"), SecurityOpt::SeccompUnconfined);
        for inert in ["apparmor=unconfined", "apparmor:docker-default", "label=disable", "label:type:svirt_apache_t", "label=level:s0:c100,c200"] {
            assert_eq!(parse_security_opt(inert).expect(inert), SecurityOpt::Inert);
        }
        for bad in ["apparmor=", "label=bogus", "label=user:"] {
            assert!(parse_security_opt(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_names_are_valid() {
        let name = generated_name("0123456789abcdef");
        assert!(valid_name(&name), "{name}");
    }
}
