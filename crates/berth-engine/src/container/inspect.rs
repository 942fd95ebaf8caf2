//! Containers as docker shows them: `docker inspect`'s JSON, `ps`'s status text
//! ("Up 3 seconds", "Exited (0) 2 minutes ago") and `ps --filter`.

use serde_json::{json, Value};

use super::record::{ContainerRecord, Status};
use super::{ContainerError, Containers};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn seconds_since(rfc3339: &str) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0))
}

/// docker's `units.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".to_owned(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if (s as f64 / 3600.0).round() as i64 == 1 => "About an hour".to_owned(),
        s if s < 48 * 3600 => format!("{} hours", (s as f64 / 3600.0).round() as i64),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        s if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

/// `ps`'s STATUS column.
pub fn status_text(record: &ContainerRecord) -> String {
    let s = &record.state;
    let since = |t: &str| seconds_since(t).map(human_duration).unwrap_or_default();
    match s.status {
        Status::Created => "Created".to_owned(),
        Status::Running => {
            let health = match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(&s.started_at))
        }
        Status::Paused => format!("Up {} (Paused)", since(&s.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Removing => "Removal In Progress".to_owned(),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Dead => "Dead".to_owned(),
    }
}

/// The command as `ps` shows it.
pub fn command_text(record: &ContainerRecord) -> String {
    std::iter::once(record.path.as_str()).chain(record.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

pub fn created_unix(record: &ContainerRecord) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&record.created).map(|t| t.timestamp()).unwrap_or(0)
}

fn or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

impl Containers {
    /// `docker inspect`'s JSON for one container.
    pub fn inspect_json(&self, record: &ContainerRecord) -> Value {
        let dir = self.dir(&record.id);
        let s = &record.state;
        let hc = &record.host_config;
        let r = &hc.resources;
        let files = dir.join("files");
        let image_layers = self.lowers(&record.image_id).iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
        json!({
            "Id": record.id,
            "Created": record.created,
            "Path": record.path,
            "Args": record.args,
            "State": {
                "Status": s.status.as_str(),
                "Running": s.status.is_running(),
                "Paused": s.status == Status::Paused,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == Status::Dead,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": or_zero(&s.started_at),
                "FinishedAt": or_zero(&s.finished_at),
                "Health": s.health.as_ref().map(|h| json!({
                    "Status": h.status,
                    "FailingStreak": h.failing_streak,
                    "Log": h.log.iter().map(|p| json!({"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output})).collect::<Vec<_>>(),
                })),
            },
            "Image": record.image_id,
            "ResolvConfPath": files.join("resolv.conf"),
            "HostnamePath": files.join("hostname"),
            "HostsPath": files.join("hosts"),
            "LogPath": dir.join("container.log"),
            "Name": format!("/{}", record.name),
            "RestartCount": s.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": Value::Null,
            "HostConfig": {
                "Binds": hc.mounts.iter().map(|m| format!("{}:{}{}", m.source, m.target, if m.read_only { ":ro" } else { "" })).collect::<Vec<_>>(),
                "LogConfig": {
                    "Type": if hc.extras.log_config.driver.is_empty() { "json-file" } else { hc.extras.log_config.driver.as_str() },
                    "Config": hc.extras.log_config.options,
                },
                "NetworkMode": hc.network_mode,
                "PidMode": hc.extras.pid_mode,
                // dockerd's default IPC mode is "private".
                "IpcMode": if hc.extras.ipc_mode.is_empty() { "private" } else { hc.extras.ipc_mode.as_str() },
                "UTSMode": hc.extras.uts_mode,
                "CpusetCpus": hc.extras.cpuset_cpus,
                "CpusetMems": hc.extras.cpuset_mems,
                "VolumesFrom": if hc.extras.volumes_from.is_empty() { Value::Null } else { json!(hc.extras.volumes_from) },
                "Links": if hc.extras.links.is_empty() {
                    Value::Null
                } else {
                    json!(hc.extras.links.iter().map(|l| {
                        let (name, alias) = super::record::parse_link(l);
                        format!("/{name}:/{}/{alias}", record.name)
                    }).collect::<Vec<_>>())
                },
                "Devices": hc.extras.devices.iter().map(|d| json!({"PathOnHost": d.path_on_host, "PathInContainer": d.target(), "CgroupPermissions": d.permissions()})).collect::<Vec<_>>(),
                "DeviceCgroupRules": if hc.extras.device_cgroup_rules.is_empty() { Value::Null } else { json!(hc.extras.device_cgroup_rules) },
                "CgroupnsMode": if hc.extras.private_cgroupns(self.facts.cgroup_v2) { "private" } else { "host" },
                "MemorySwappiness": hc.extras.memory_swappiness,
                "MemoryReservation": hc.extras.memory_reservation,
                "OomKillDisable": hc.extras.oom_kill_disable && !self.facts.cgroup_v2,
                "CpuRealtimePeriod": hc.extras.cpu_rt_period,
                "CpuRealtimeRuntime": hc.extras.cpu_rt_runtime,
                "CgroupParent": hc.extras.cgroup_parent,
                // What the kernel could not apply was discarded at create (dockerd's).
                "BlkioWeight": if self.facts.blkio.weight { hc.extras.blkio.weight } else { 0 },
                "BlkioWeightDevice": if self.facts.blkio.weight { rates(&hc.extras.blkio.weight_device, "Weight") } else { json!([]) },
                "BlkioDeviceReadBps": if self.facts.blkio.throttle { rates(&hc.extras.blkio.read_bps, "Rate") } else { json!([]) },
                "BlkioDeviceWriteBps": if self.facts.blkio.throttle { rates(&hc.extras.blkio.write_bps, "Rate") } else { json!([]) },
                "BlkioDeviceReadIOps": if self.facts.blkio.throttle { rates(&hc.extras.blkio.read_iops, "Rate") } else { json!([]) },
                "BlkioDeviceWriteIOps": if self.facts.blkio.throttle { rates(&hc.extras.blkio.write_iops, "Rate") } else { json!([]) },
                "Annotations": if hc.extras.annotations.is_empty() { Value::Null } else { json!(hc.extras.annotations) },
                "MaskedPaths": if hc.privileged { json!([]) } else {
                    hc.extras.masked_paths.as_ref().map_or_else(|| json!(super::spec::MASKED_PATHS), |p| json!(p))
                },
                "ReadonlyPaths": if hc.privileged { json!([]) } else {
                    hc.extras.readonly_paths.as_ref().map_or_else(|| json!(super::spec::READONLY_PATHS), |p| json!(p))
                },
                "Isolation": "",
                "Runtime": if hc.extras.runtime.is_empty() { self.runtime.default_name() } else { &hc.extras.runtime },
                "PortBindings": port_bindings(&hc.port_bindings),
                "PublishAllPorts": hc.publish_all_ports,
                "RestartPolicy": {"Name": hc.restart_policy.name, "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
                "AutoRemove": hc.auto_remove,
                "CapAdd": hc.cap_add,
                "CapDrop": hc.cap_drop,
                "Privileged": hc.privileged,
                "ReadonlyRootfs": hc.read_only,
                "SecurityOpt": hc.security_opt,
                "Tmpfs": hc.tmpfs.iter().map(|t| (t.target.clone(), Value::String(t.options.clone()))).collect::<serde_json::Map<_, _>>(),
                "Init": hc.init,
                "ExtraHosts": if hc.extras.extra_hosts.is_empty() { Value::Null } else { json!(hc.extras.extra_hosts) },
                "Dns": hc.extras.dns,
                "DnsSearch": hc.extras.dns_search,
                "DnsOptions": hc.extras.dns_options,
                "ShmSize": if hc.extras.shm_size > 0 { hc.extras.shm_size } else { 67_108_864 },
                "Ulimits": hc.extras.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
                "Sysctls": hc.extras.sysctls,
                "GroupAdd": if hc.extras.group_add.is_empty() { Value::Null } else { json!(hc.extras.group_add) },
                "OomScoreAdj": hc.extras.oom_score_adj,
                "Memory": r.memory,
                "MemorySwap": r.memory_swap,
                "NanoCpus": r.nano_cpus,
                "CpuShares": r.cpu_shares,
                "PidsLimit": if r.pids_limit > 0 { json!(r.pids_limit) } else { Value::Null },
            },
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": image_layers,
                    "UpperDir": dir.join("upper"),
                    "WorkDir": dir.join("work"),
                    "MergedDir": dir.join("rootfs"),
                },
            },
            "Mounts": hc.mounts.iter().map(|m| {
                let volume = m.kind == "volume";
                json!({
                    "Type": m.kind,
                    "Name": if volume { Value::String(m.source.clone()) } else { Value::Null },
                    "Source": if volume { self.volumes.data_dir(&m.source).display().to_string() } else { m.source.clone() },
                    "Destination": m.target,
                    "Driver": if volume { "local" } else { "" },
                    "Mode": if m.read_only { "ro" } else { "" },
                    "RW": !m.read_only,
                    "Propagation": if volume { "" } else { "rprivate" },
                })
            }).collect::<Vec<_>>(),
            "Config": {
                "Hostname": record.config.hostname,
                "Domainname": hc.extras.domainname,
                "User": record.config.user,
                "AttachStdin": false,
                "AttachStdout": false,
                "AttachStderr": false,
                "Tty": record.config.tty,
                "OpenStdin": record.config.open_stdin,
                "StdinOnce": record.config.stdin_once,
                "Env": record.config.env,
                "Cmd": record.config.cmd,
                "Image": record.config.image,
                "Volumes": Value::Null,
                "ExposedPorts": if record.config.exposed_ports.is_empty() { Value::Null } else {
                    Value::Object(record.config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect())
                },
                "WorkingDir": record.config.working_dir,
                "Entrypoint": record.config.entrypoint,
                "OnBuild": Value::Null,
                "Labels": record.config.labels,
                "StopSignal": record.config.stop_signal,
                "StopTimeout": record.config.stop_timeout,
                "Healthcheck": record.config.healthcheck.as_ref().map(|h| json!({
                    "Test": h.test, "Interval": h.interval, "Timeout": h.timeout, "StartPeriod": h.start_period, "Retries": h.retries,
                })),
            },
            "NetworkSettings": self.network_settings(record),
        })
    }

    /// One entry of docker's `GET /containers/json`.
    /// The bytes a container wrote (its writable layer), and those plus its image's:
    /// docker's `SizeRw` and `SizeRootFs`.
    pub fn sizes(&self, record: &ContainerRecord) -> (u64, u64) {
        let written = crate::volume::dir_size(&self.dir(&record.id).join("upper"));
        let image = self.images.resolve(&record.image_id).ok().flatten().map_or(0, |i| i.size);
        (written, written + image)
    }

    /// docker's `size=true` on a list or an inspect: `SizeRw` and `SizeRootFs` added.
    pub fn with_sizes(&self, record: &ContainerRecord, mut value: Value) -> Value {
        let (written, root) = self.sizes(record);
        value["SizeRw"] = json!(written);
        value["SizeRootFs"] = json!(root);
        value
    }

    pub fn summary_json(&self, record: &ContainerRecord) -> Value {
        let settings = self.network_settings(record);
        let ports: Vec<Value> = record
            .state
            .network
            .iter()
            .flat_map(|n| &n.ports)
            .map(|p| json!({"IP": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.protocol}))
            .chain(record.config.exposed_ports.iter().filter(|e| {
                !record.state.network.iter().flat_map(|n| &n.ports).any(|p| format!("{}/{}", p.container_port, p.protocol) == **e)
            }).filter_map(|e| {
                let (port, proto) = e.split_once('/')?;
                Some(json!({"PrivatePort": port.parse::<u16>().ok()?, "Type": proto}))
            }))
            .collect();
        json!({
            "Id": record.id,
            "Names": [format!("/{}", record.name)],
            "Image": record.config.image,
            "ImageID": record.image_id,
            "Command": command_text(record),
            "Created": created_unix(record),
            "Ports": ports,
            "Labels": record.config.labels,
            "State": record.state.status.as_str(),
            "Status": status_text(record),
            "HostConfig": {"NetworkMode": record.host_config.network_mode},
            "NetworkSettings": {"Networks": settings["Networks"]},
            "Mounts": record.host_config.mounts.iter().map(|m| json!({
                "Type": m.kind,
                "Name": if m.kind == "volume" { Value::String(m.source.clone()) } else { Value::Null },
                "Source": if m.kind == "volume" { self.volumes.data_dir(&m.source).display().to_string() } else { m.source.clone() },
                "Destination": m.target,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": "",
            })).collect::<Vec<_>>(),
        })
    }

    /// docker's `NetworkSettings`: the networks the container joins (with their
    /// addresses while it runs) and its ports.
    fn network_settings(&self, record: &ContainerRecord) -> Value {
        let running = record.state.network.as_ref();
        let mut networks = serde_json::Map::new();
        for request in &record.networks {
            let Ok(network) = self.networks.find(&request.network_id) else { continue };
            let live = running.and_then(|r| r.endpoints.iter().find(|e| e.network_id == request.network_id));
            let mut aliases = request.aliases.clone();
            if network.name != "bridge" {
                aliases.push(record.short_id().to_owned());
            }
            networks.insert(
                network.name.clone(),
                json!({
                    "IPAMConfig": if request.ipv4_address.is_empty() { Value::Null } else { json!({"IPv4Address": request.ipv4_address}) },
                    "Links": Value::Null,
                    "Aliases": if network.name == "bridge" { Value::Null } else { json!(aliases) },
                    "NetworkID": network.id,
                    "EndpointID": live.map(|_| record.id.clone()).unwrap_or_default(),
                    "Gateway": live.map(|e| e.gateway.to_string()).unwrap_or_default(),
                    "IPAddress": live.map(|e| e.ip.to_string()).unwrap_or_default(),
                    "IPPrefixLen": live.map(|e| e.prefix).unwrap_or(0),
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "MacAddress": live.map(|e| e.mac.clone()).unwrap_or_default(),
                    "DNSNames": if network.name == "bridge" { Value::Null } else {
                        json!(std::iter::once(record.name.clone()).chain(aliases).collect::<Vec<_>>())
                    },
                }),
            );
        }
        let mode = record.host_config.network_mode.as_str();
        if record.networks.is_empty() && (mode == "host" || mode == "none") {
            if let Ok(network) = self.networks.find(mode) {
                networks.insert(mode.to_owned(), json!({"NetworkID": network.id, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "", "Aliases": Value::Null}));
            }
        }
        let mut ports = serde_json::Map::new();
        for exposed in &record.config.exposed_ports {
            ports.insert(exposed.clone(), Value::Null);
        }
        if let Some(running) = running {
            for p in &running.ports {
                let entry = ports.entry(format!("{}/{}", p.container_port, p.protocol)).or_insert(json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                if let Some(list) = entry.as_array_mut() {
                    list.push(json!({"HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "HostPort": p.host_port.to_string()}));
                }
            }
        }
        let bridge = running.and_then(|r| r.endpoints.iter().find(|e| e.network_name == "bridge"));
        json!({
            "Bridge": "",
            "SandboxID": if running.is_some() { record.id.clone() } else { String::new() },
            "SandboxKey": if running.is_some() { self.networks.netns_path(&record.id).display().to_string() } else { String::new() },
            "Ports": ports,
            "HairpinMode": false,
            "Gateway": bridge.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "IPAddress": bridge.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": bridge.map(|e| e.prefix).unwrap_or(0),
            "MacAddress": bridge.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }
}

/// docker's `HostConfig.PortBindings`: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}.
/// docker's `[{"Path": ..., "Weight"|"Rate": ...}]`.
fn rates(list: &[super::record::DeviceRate], key: &str) -> Value {
    Value::Array(list.iter().map(|d| json!({"Path": d.path, key: d.rate})).collect())
}

fn port_bindings(bindings: &[crate::network::PortBinding]) -> Value {
    let mut map = serde_json::Map::new();
    for b in bindings {
        let entry = map.entry(format!("{}/{}", b.container_port, b.protocol)).or_insert(json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": b.host_ip, "HostPort": if b.host_port == 0 { String::new() } else { b.host_port.to_string() }}));
        }
    }
    Value::Object(map)
}

impl Containers {
    /// `top`: the container's processes, in `ps -ef`'s columns (UID PID PPID C STIME TTY
    /// TIME CMD) read from /proc.
    /// `top`: the container's processes. Without `ps_args`, docker's default columns
    /// read from /proc; with them, the engine's `ps` run with those arguments and its
    /// rows kept for the container's processes, as dockerd does it.
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>), super::ContainerError> {
        let record = self.find(key)?;
        if !record.state.status.is_running() {
            return Err(super::ContainerError::NotRunning(record.name.clone()));
        }
        let output = self
            .runtime_command(&record)
            .args(["ps", "--format", "json", &record.id])
            .output()
            .await
            .map_err(|e| super::ContainerError::Runtime(format!("cannot run the runtime: {e}")))?;
        if !output.status.success() {
            return Err(super::ContainerError::Runtime(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        let pids: Vec<i32> = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if !ps_args.trim().is_empty() {
            return ps_rows(ps_args, &pids).await;
        }
        let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(str::to_owned).to_vec();
        let ticks = 100.0;
        let mut rows = Vec::new();
        for pid in pids {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ppid = fields.get(1).copied().unwrap_or("0");
            let cpu_ticks: f64 =
                fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0) + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
            let secs = (cpu_ticks / ticks) as u64;
            let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:").map(|u| u.split_whitespace().next().unwrap_or("0").to_owned())))
                .unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            rows.push(vec![
                uid,
                pid.to_string(),
                ppid.to_owned(),
                "0".to_owned(),
                String::new(),
                "?".to_owned(),
                format!("{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60),
                cmd,
            ]);
        }
        Ok((titles, rows))
    }
}

/// `ps ARGS`, its rows for `pids`: the `PID` column picks them, the last column keeps
/// its spaces (a command line).
async fn ps_rows(ps_args: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), super::ContainerError> {
    let output = tokio::process::Command::new("ps")
        .args(ps_args.split_whitespace())
        .output()
        .await
        .map_err(|e| super::ContainerError::Invalid(format!("top with ps options needs ps where the engine runs: {e}")))?;
    if !output.status.success() {
        return Err(super::ContainerError::Invalid(format!("Error running ps: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    parse_ps(&String::from_utf8_lossy(&output.stdout), pids).map_err(super::ContainerError::Invalid)
}

fn parse_ps(text: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines.next().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let pid_at = titles.iter().position(|t| t == "PID").ok_or_else(|| "Couldn't find PID field in ps output".to_owned())?;
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let Some((field, tail)) = rest.split_once(char::is_whitespace) else { break };
            fields.push(field.to_owned());
            rest = tail.trim_start();
        }
        fields.push(rest.to_owned());
        if fields.get(pid_at).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod ps_tests {
    #[test]
    fn rows_are_the_containers_and_the_command_keeps_its_spaces() {
        let text = "USER PID %CPU COMMAND\nroot 1 0.0 /sbin/init splash\nroot 42 0.1 sleep 300\n";
        let (titles, rows) = super::parse_ps(text, &[42]).expect("parsed");
        assert_eq!(titles, ["USER", "PID", "%CPU", "COMMAND"]);
        assert_eq!(rows, vec![vec!["root", "42", "0.1", "sleep 300"]]);
        assert!(super::parse_ps("USER COMMAND\n", &[1]).is_err(), "no PID column");
    }
}

/// Whether `ps` lists `record` at all: every container with `-a` or a `status` filter
/// (dockerd's rule), else only those running (paused and restarting ones too).
pub fn listed(record: &ContainerRecord, all: bool, filters: &[(String, String)]) -> bool {
    all || filters.iter().any(|(k, _)| k == "status") || record.state.status.is_running() || record.state.status == Status::Restarting
}

/// The `ps` filter keys dockerd knows; any other is refused.
const PS_FILTERS: &[&str] =
    &["id", "name", "label", "status", "exited", "volume", "health", "ancestor", "network", "before", "since", "publish", "expose", "is-task"];

/// What a `ps` filter needs to look up beyond the container's own record.
struct Lookups<'a> {
    /// An image's id from a name or id.
    image_id: &'a dyn Fn(&str) -> Option<String>,
    /// A network's id from a name or id (prefix).
    network_id: &'a dyn Fn(&str) -> Option<String>,
}

impl Containers {
    /// docker's `ps`: the containers `all` (or the filters, or a `limit`) lists, newest
    /// first, passing every filter, at most `limit` of them (0: no limit). `before` and
    /// `since` name containers; an unknown filter key is refused, as dockerd refuses it.
    pub fn list_matching(&self, all: bool, filters: &[(String, String)], limit: usize) -> Result<Vec<ContainerRecord>, ContainerError> {
        if let Some((key, _)) = filters.iter().find(|(k, _)| !PS_FILTERS.contains(&k.as_str())) {
            return Err(ContainerError::Invalid(format!("invalid filter '{key}'")));
        }
        let mut bounds = Vec::new();
        for (key, value) in filters.iter().filter(|(k, _)| k == "before" || k == "since") {
            bounds.push((key.as_str(), self.find(value)?.created));
        }
        let mut list = self.list()?;
        list.sort_by(|a, b| b.created.cmp(&a.created));
        let image_id = |name: &str| self.images.resolve(name).ok().flatten().map(|i| i.id.to_string());
        let network_id = |key: &str| self.networks.find(key).ok().map(|n| n.id);
        let lookups = Lookups { image_id: &image_id, network_id: &network_id };
        // A limit lists stopped containers too ("the last n created").
        let all = all || limit > 0;
        let mut out: Vec<ContainerRecord> = list
            .into_iter()
            .filter(|r| listed(r, all, filters) && matches_filters(r, filters, &lookups))
            .filter(|r| bounds.iter().all(|(key, at)| if *key == "before" { r.created < *at } else { r.created > *at }))
            .collect();
        if limit > 0 {
            out.truncate(limit);
        }
        Ok(out)
    }
}

/// docker's port filter value, `80`, `80/udp` or `8000-8080/tcp`: a range and a
/// protocol (tcp when none is given).
fn port_filter(value: &str) -> Option<(std::ops::RangeInclusive<u16>, &str)> {
    let (ports, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let (low, high) = ports.split_once('-').unwrap_or((ports, ports));
    Some((low.parse().ok()?..=high.parse().ok()?, proto))
}

/// docker's `name` filter: a regular expression, matched against the name (with or
/// without its leading slash, as dockerd keeps it). One that does not compile matches
/// nothing; the engine's regex has no backtracking, so none can be slow.
fn name_matches(pattern: &str, name: &str) -> bool {
    match regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
        Ok(re) => re.is_match(name) || re.is_match(&format!("/{name}")),
        Err(_) => false,
    }
}

/// Whether `record` passes docker's `ps --filter` list (key=value; several values of
/// one key are alternatives, different keys must all match).
fn matches_filters(record: &ContainerRecord, filters: &[(String, String)], lookups: &Lookups<'_>) -> bool {
    let ports = || record.state.network.iter().flat_map(|n| &n.ports);
    filters_match(filters, |key, value| match key {
        "label" => label_matches(value, |k| record.config.labels.get(k).map(String::as_str)),
        "id" => record.id.starts_with(value),
        "name" => name_matches(value, &record.name),
        "status" => record.state.status.as_str() == value,
        "exited" => record.state.status == Status::Exited && value.parse::<i32>().is_ok_and(|c| c == record.state.exit_code),
        "volume" => record.host_config.mounts.iter().any(|m| m.source == value || m.target == value),
        "health" => record.state.health.as_ref().map_or("none", |h| h.status.as_str()) == value,
        "ancestor" => record.config.image == value || (lookups.image_id)(value).is_some_and(|id| id == record.image_id),
        "network" => {
            let wanted = (lookups.network_id)(value);
            record.networks.iter().any(|e| Some(&e.network_id) == wanted.as_ref()) || (record.networks.is_empty() && record.host_config.network_mode == value)
        }
        // A published port is matched by its host port, an exposed one by the
        // container's (as dockerd reads its port list).
        "publish" => port_filter(value).is_some_and(|(range, proto)| ports().any(|p| p.protocol == proto && range.contains(&p.host_port))),
        "expose" => port_filter(value).is_some_and(|(range, proto)| {
            ports().any(|p| p.protocol == proto && range.contains(&p.container_port))
                || record.config.exposed_ports.iter().any(|e| port_filter(e).is_some_and(|(port, p)| p == proto && range.contains(port.start())))
        }),
        // before and since: bounds applied by `list_matching`; Berth runs no swarm tasks.
        "before" | "since" => true,
        "is-task" => value == "false",
        _ => false,
    })
}

pub use crate::filters::{filters_match, label_matches};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(65), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
    }

    #[test]
    fn filters_combine_like_docker() {
        let mut record = ContainerRecord { id: "abc".into(), name: "web-1".into(), ..Default::default() };
        record.config.labels.insert("tier".into(), "front".into());
        record.state.status = Status::Exited;
        record.state.exit_code = 3;
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> { pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() };
        let none_of = |_: &str| None;
        let none = Lookups { image_id: &none_of, network_id: &none_of };
        assert!(matches_filters(&record, &f(&[("status", "exited"), ("label", "tier=front")]), &none));
        assert!(matches_filters(&record, &f(&[("status", "running"), ("status", "exited")]), &none));
        assert!(!matches_filters(&record, &f(&[("status", "exited"), ("label", "tier=back")]), &none));
        assert!(matches_filters(&record, &f(&[("exited", "3"), ("name", "web")]), &none));
        assert!(!matches_filters(&record, &f(&[("exited", "0")]), &none));
        assert!(!matches_filters(&record, &f(&[("bogus", "x")]), &none));
        // Labels all have to match.
        record.config.labels.insert("app".into(), "shop".into());
        assert!(matches_filters(&record, &f(&[("label", "tier=front"), ("label", "app")]), &none));
        assert!(!matches_filters(&record, &f(&[("label", "tier=front"), ("label", "app=other")]), &none));
        // Exposed ports, by the container's port; a range; udp apart from tcp.
        record.config.exposed_ports.push("9090/tcp".into());
        assert!(matches_filters(&record, &f(&[("expose", "9090")]), &none));
        assert!(matches_filters(&record, &f(&[("expose", "9000-9100/tcp")]), &none));
        assert!(!matches_filters(&record, &f(&[("expose", "9090/udp")]), &none));
        assert!(!matches_filters(&record, &f(&[("publish", "9090")]), &none));
        assert!(!matches_filters(&record, &f(&[("expose", "nonsense")]), &none));
    }

    #[test]
    fn port_filters_read_like_docker() {
        assert_eq!(port_filter("80"), Some((80..=80, "tcp")));
        assert_eq!(port_filter("53/udp"), Some((53..=53, "udp")));
        assert_eq!(port_filter("8000-8080/tcp"), Some((8000..=8080, "tcp")));
        assert_eq!(port_filter("x/tcp"), None);
        assert_eq!(port_filter("70000"), None);
    }
}
