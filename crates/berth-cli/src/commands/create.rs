//! `create`, and the container options `run` shares with it.

use std::collections::HashMap;
use std::process::ExitCode;

use berth_host::agent::{AgentClient, CallError};
use berth_proto::v1::{pull_event::Event, CreateContainerRequest, Mount, Resources};
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, Clone, clap::Args)]
pub struct ContainerArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(long, short = 'w')]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name (no `-h`: that is help here).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Set metadata (KEY=VALUE).
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Keep STDIN open.
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i32>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Security options (no-new-privileges, seccomp=unconfined|<profile.json>).
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(long, short = 'm')]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(long, short = 'c')]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped.
    #[arg(long)]
    pub restart: Option<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount or volume: [NAME|/HOST-PATH:]/CONTAINER-PATH[:ro|rw|nocopy].
    #[arg(long = "volume", short = 'v')]
    pub volumes: Vec<String>,
    /// A mount: type=volume|bind|tmpfs,source=...,target=...[,readonly][,volume-nocopy][,tmpfs-size=...][,tmpfs-mode=...].
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Connect to a network: bridge (default), host, none, container:NAME, or a network's name.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// A network-scoped alias (user networks).
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_aliases: Vec<String>,
    /// IPv4 address on the network (user networks with a subnet of the user's).
    #[arg(long)]
    pub ip: Option<String>,
    /// Publish a port: [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|/udp]; ranges allowed.
    #[arg(long = "publish", short = 'p')]
    pub publish: Vec<String>,
    /// Publish every exposed port on a free host port.
    #[arg(long = "publish-all", short = 'P')]
    pub publish_all: bool,
    /// Expose a port (or range) without publishing it.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add a line to /etc/hosts: name:ip (ip may be host-gateway, the host's address).
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// A DNS server for the container.
    #[arg(long)]
    pub dns: Vec<String>,
    /// A DNS search domain.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// A resolver option (resolv.conf's options).
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_options: Vec<String>,
    /// Size of /dev/shm (e.g. 256m; default 64m).
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// A resource limit: name=soft[:hard], e.g. nofile=1024:2048.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// A namespaced kernel parameter: name=value (net.*, kernel.shm*, kernel.msg*, ...).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// An extra group for the container's user (a name or a number).
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// The log driver: json-file (the default) or local.
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// A log option: max-size=10m, max-file=3.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// The PID namespace: host, or container:<name|id> (default: its own).
    #[arg(long)]
    pub pid: Option<String>,
    /// The IPC namespace: private, shareable, none, host, or container:<name|id>.
    #[arg(long)]
    pub ipc: Option<String>,
    /// The UTS namespace: host (default: its own).
    #[arg(long)]
    pub uts: Option<String>,
    /// The CPUs it may run on, e.g. 0-1 or 0,2.
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may use, e.g. 0.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Another container's volumes and binds: NAME[:ro|:rw].
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// A host device: HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/sda:/dev/xvda:rwm.
    #[arg(long)]
    pub device: Vec<String>,
    /// A device cgroup rule, e.g. 'c 1:3 rwm'.
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Its MAC address on the network it starts on, e.g. 02:42:ac:11:00:99.
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// A legacy link: NAME[:ALIAS] (its address in /etc/hosts).
    #[arg(long)]
    pub link: Vec<String>,
    /// The OCI runtime that runs it: crun (the default) or runc.
    #[arg(long)]
    pub runtime: Option<String>,
    /// The cgroup namespace: host or private.
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// How readily the kernel swaps its memory out, 0 to 100.
    #[arg(long = "memory-swappiness", allow_negative_numbers = true)]
    pub memory_swappiness: Option<i64>,
    /// Command to run to check health (run by /bin/sh -c).
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 500ms).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time a health check may take.
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start period during which failures do not count.
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// The image.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub use berth_proto::units::{parse_bytes, parse_duration, parse_restart};

fn read_env_file(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read env file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| if l.contains('=') { Some(l.to_owned()) } else { std::env::var(l).ok().map(|v| format!("{l}={v}")) })
        .collect())
}

impl ContainerArgs {
    fn ports(&self) -> Result<Vec<berth_proto::v1::PortBinding>, String> {
        let mut all = Vec::new();
        for spec in &self.publish {
            all.extend(berth_proto::ports::parse_publish(spec)?);
        }
        Ok(all)
    }

    /// `--expose 80`, `--expose 53/udp`, `--expose 8000-8002`.
    fn exposed(&self) -> Result<Vec<String>, String> {
        let mut all = Vec::new();
        for spec in &self.expose {
            let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
            let bad = || format!("invalid range format for --expose: {spec}");
            let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
            let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a == 0 || b < a {
                return Err(bad());
            }
            all.extend((a..=b).map(|p| format!("{p}/{proto}")));
        }
        Ok(all)
    }

    fn healthcheck(&self) -> Result<Option<berth_proto::v1::Healthcheck>, String> {
        if self.no_healthcheck {
            return Ok(Some(berth_proto::v1::Healthcheck { test: vec!["NONE".into()], ..Default::default() }));
        }
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some();
        if !any {
            return Ok(None);
        }
        let duration = |d: &Option<String>| d.as_deref().map(parse_duration).transpose().map(|d| d.unwrap_or(0));
        Ok(Some(berth_proto::v1::Healthcheck {
            test: self.health_cmd.iter().flat_map(|c| ["CMD-SHELL".to_owned(), c.clone()]).collect(),
            interval: duration(&self.health_interval)?,
            timeout: duration(&self.health_timeout)?,
            start_period: duration(&self.health_start_period)?,
            retries: self.health_retries.unwrap_or(0),
        }))
    }

    pub fn request(&self) -> Result<CreateContainerRequest, String> {
        let mut env = Vec::new();
        for file in &self.env_file {
            env.extend(read_env_file(file)?);
        }
        for entry in &self.env {
            if entry.contains('=') {
                env.push(entry.clone());
            } else if let Ok(value) = std::env::var(entry) {
                env.push(format!("{entry}={value}"));
            }
        }
        let labels: HashMap<String, String> =
            self.labels.iter().map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((l.clone(), String::new()))).collect();
        let restart = self.restart.as_deref().map(parse_restart).transpose()?;
        let mut mounts: Vec<Mount> = self
            .tmpfs
            .iter()
            .map(|t| {
                let (target, options) = t.split_once(':').unwrap_or((t.as_str(), ""));
                Mount { r#type: "tmpfs".into(), target: target.into(), options: options.into(), ..Default::default() }
            })
            .collect();
        for v in &self.volumes {
            mounts.push(berth_proto::mounts::parse_volume_flag(v)?);
        }
        for m in &self.mounts {
            mounts.push(berth_proto::mounts::parse_mount_flag(m)?);
        }
        Ok(CreateContainerRequest {
            require_signature: berth_host::credentials::content_trust(),
            name: self.name.clone().unwrap_or_default(),
            image: self.image.clone(),
            cmd: self.command.clone(),
            entrypoint: self.entrypoint.iter().filter(|e| !e.is_empty()).cloned().collect(),
            entrypoint_set: self.entrypoint.is_some(),
            env,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            labels,
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: false,
            init: self.init,
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self.stop_timeout.unwrap_or(-1),
            auto_remove: self.rm,
            read_only: self.read_only,
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self
                .security_opt
                .iter()
                .map(|o| match o.split_once(['=', ':']) {
                    // docker reads a profile file on the client and sends its JSON.
                    Some(("seccomp", path)) if path != "unconfined" && !path.trim_start().starts_with('{') => {
                        std::fs::read_to_string(path).map(|json| format!("seccomp={json}")).map_err(|e| format!("opening seccomp profile ({path}) failed: {e}"))
                    }
                    _ => Ok(o.clone()),
                })
                .collect::<Result<_, _>>()?,
            resources: Some(Resources {
                memory: self.memory.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
                memory_swap: self.memory_swap.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
                nano_cpus: self.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
                cpu_shares: self.cpu_shares.unwrap_or(0),
                pids_limit: self.pids_limit.unwrap_or(0),
            }),
            restart_policy: restart,
            mounts,
            network_mode: self.network.clone().unwrap_or_default(),
            network_aliases: self.network_aliases.clone(),
            ipv4_address: self.ip.clone().unwrap_or_default(),
            mac_address: self.mac_address.clone().unwrap_or_default(),
            ports: self.ports()?,
            publish_all: self.publish_all,
            expose: self.exposed()?,
            healthcheck: self.healthcheck()?,
            extra_hosts: self.add_hosts.iter().map(|h| h.replacen('=', ":", 1)).collect(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_options.clone(),
            shm_size: self.shm_size.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
            ulimits: self
                .ulimit
                .iter()
                .map(|u| berth_proto::units::parse_ulimit(u).map(|(name, soft, hard)| berth_proto::v1::Ulimit { name, soft, hard }))
                .collect::<Result<_, _>>()?,
            sysctls: self
                .sysctl
                .iter()
                .map(|s| s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("invalid sysctl {s:?}: want name=value")))
                .collect::<Result<_, _>>()?,
            group_add: self.group_add.clone(),
            log_driver: self.log_driver.clone().unwrap_or_default(),
            log_options: self
                .log_opt
                .iter()
                .map(|s| s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("invalid log opt {s:?}: want key=value")))
                .collect::<Result<_, _>>()?,
            pid_mode: self.pid.clone().unwrap_or_default(),
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            uts_mode: self.uts.clone().unwrap_or_default(),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            volumes_from: self.volumes_from.clone(),
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            runtime: self.runtime.clone().unwrap_or_default(),
            links: self.link.clone(),
            devices: self.device.clone(),
            device_cgroup_rules: self.device_cgroup_rule.clone(),
            memory_swappiness: self.memory_swappiness,
        })
    }
}

/// Pulls `image`, reporting on stderr as `docker run` does.
async fn pull_for_create(agent: &AgentClient, image: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    eprintln!("Unable to find image '{image}' locally");
    let request = berth_host::credentials::pull_request(image, "")?;
    let mut stream = agent.images().pull(request).await.map_err(|s| CallError::from_status("pull", s))?.into_inner();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|s| CallError::from_status("pull", s))?;
        if let Some(Event::Done(done)) = event.event {
            eprintln!("Digest: {}", done.manifest_digest);
            eprintln!("Status: Downloaded newer image for {image}");
        }
    }
    Ok(())
}

/// Creates the container, pulling its image first if the engine lacks it.
pub async fn create_container(agent: &AgentClient, args: &ContainerArgs) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let request = args.request()?;
    let first = agent.containers().create(request.clone()).await;
    let response = match first {
        Err(status) if berth_proto::is_missing_image(&status) => {
            pull_for_create(agent, &args.image).await?;
            agent.containers().create(request).await.map_err(|s| CallError::from_status("create", s))?
        }
        other => other.map_err(|s| CallError::from_status("create", s))?,
    };
    let response = response.into_inner();
    for warning in response.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(response.id)
}

pub async fn run(ctx: &Context, args: ContainerArgs) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let id = create_container(&agent, &args).await?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(super::parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(super::parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(super::parse_bytes("512kb"), Ok(512 << 10));
        assert_eq!(super::parse_bytes("1000"), Ok(1000));
        assert_eq!(super::parse_bytes("-1"), Ok(-1));
        assert!(super::parse_bytes("lots").is_err());
        assert_eq!(super::parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(super::parse_duration("250ms"), Ok(250_000_000));
        assert!(super::parse_duration("soon").is_err());
    }
}
