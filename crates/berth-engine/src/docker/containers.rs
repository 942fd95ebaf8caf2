//! `/containers/...`: create (docker's Config, HostConfig and NetworkingConfig),
//! start, stop, restart, kill, pause, unpause, wait, delete, inspect, logs (docker's
//! multiplexed framing, raw with a TTY) and attach (the hijacked connection `docker
//! run` uses: HTTP upgrade, then the container's stdio both ways).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{flag, full, ok_json, ApiError, Body, Reply};
use crate::container::record::{Healthcheck, Resources, RestartPolicy, TmpfsMount};
use crate::container::{ContainerError, Containers, CreateRequest, LogsQuery, MountRequest};

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> ApiError {
        ApiError::from_kind(e.kind(), crate::error_chain(&e))
    }
}

/// The most a JSON request body may hold.
const MAX_JSON_BODY: usize = 4 << 20;

/// The request body as JSON (at most 4 MiB). The limit holds while reading: a larger
/// body is refused at its first byte past it (or at once by its Content-Length),
/// never held in memory whole.
pub async fn json_body(request: Request<Incoming>) -> Result<Value, ApiError> {
    let too_large = || ApiError::new(hyper::StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than {} MiB", MAX_JSON_BODY >> 20));
    let declared = request.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BODY as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(request.into_body(), MAX_JSON_BODY);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err(ApiError::bad_request(format!("cannot read the body: {e}"))),
    };
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

pub(super) fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect()).unwrap_or_default()
}

/// docker's create body as Berth's request.
pub fn create_request(name: &str, body: &Value) -> Result<CreateRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("config cannot be empty in order to create a container"));
    }
    let hc = &body["HostConfig"];
    let mut mounts = Vec::new();
    for bind in strings(&hc["Binds"]) {
        // docker's `-v` rules (`berth_proto::mounts`). The daemon has no current folder:
        // a bind's source is absolute (a Windows host's `C:\src` too: the engine maps it
        // to its share in the VM). A target alone is an anonymous volume, as dockerd
        // takes it.
        use berth_proto::mounts::{parse_volume_spec, windows_path_in_vm, VolumeSource};
        let spec = parse_volume_spec(&bind).map_err(ApiError::bad_request)?;
        let bind_mount = match spec.source_kind {
            VolumeSource::HostPath if !spec.source.starts_with('/') && windows_path_in_vm(spec.source, false).is_none() => {
                return Err(ApiError::bad_request(format!(
                    "invalid volume specification: '{bind}': a host path must be absolute (the client resolves relative ones)"
                )))
            }
            VolumeSource::HostPath => true,
            VolumeSource::Named | VolumeSource::Anonymous => false,
        };
        mounts.push(MountRequest {
            kind: if bind_mount { "bind".into() } else { "volume".into() },
            source: spec.source.to_owned(),
            target: spec.target.to_owned(),
            read_only: spec.read_only,
            no_copy: spec.no_copy,
            create_source: bind_mount,
        });
    }
    // Config.Volumes: `-v /path` from the CLI, an anonymous volume made at create
    // unless a bind, mount or tmpfs already covers the path.
    for target in body["Volumes"].as_object().map(|v| v.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        let covered = mounts.iter().any(|m: &MountRequest| m.target == target)
            || hc["Mounts"].as_array().is_some_and(|ms| ms.iter().any(|m| m["Target"].as_str() == Some(target.as_str())))
            || hc["Tmpfs"].get(&target).is_some();
        if !covered {
            if !target.starts_with('/') || target == "/" {
                return Err(ApiError::bad_request(format!("invalid volume specification: '{target}'")));
            }
            mounts.push(MountRequest { kind: "volume".into(), target, ..Default::default() });
        }
    }
    let mut tmpfs: Vec<TmpfsMount> = string_map(&hc["Tmpfs"]).into_iter().map(|(target, options)| TmpfsMount { target, options, read_only: false }).collect();
    for m in hc["Mounts"].as_array().into_iter().flatten() {
        let kind = m["Type"].as_str().unwrap_or("volume");
        let target = m["Target"].as_str().unwrap_or_default().to_owned();
        let read_only = m["ReadOnly"].as_bool().unwrap_or(false);
        match kind {
            "tmpfs" => {
                let mut options = Vec::new();
                if let Some(size) = m["TmpfsOptions"]["SizeBytes"].as_i64() {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = m["TmpfsOptions"]["Mode"].as_u64() {
                    options.push(format!("mode={mode:o}"));
                }
                tmpfs.push(TmpfsMount { target, options: options.join(","), read_only });
            }
            "bind" | "volume" => mounts.push(MountRequest {
                kind: kind.to_owned(),
                source: m["Source"].as_str().unwrap_or_default().to_owned(),
                target,
                read_only,
                no_copy: m["VolumeOptions"]["NoCopy"].as_bool().unwrap_or(false),
                create_source: false,
            }),
            other => return Err(ApiError::bad_request(format!("mount type {other:?} is not supported"))),
        }
    }
    let mut ports = Vec::new();
    for (key, bindings) in hc["PortBindings"].as_object().into_iter().flatten() {
        let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
        let port: u16 = port.parse().map_err(|_| ApiError::bad_request(format!("invalid port {key:?}")))?;
        for b in bindings.as_array().into_iter().flatten() {
            let host_port = b["HostPort"].as_str().unwrap_or("");
            ports.push(crate::network::PortBinding {
                container_port: port,
                protocol: protocol.to_owned(),
                host_ip: b["HostIp"].as_str().unwrap_or_default().to_owned(),
                host_port: if host_port.is_empty() {
                    0
                } else {
                    host_port.parse().map_err(|_| ApiError::bad_request(format!("invalid host port {host_port:?}")))?
                },
            });
        }
    }
    let network_mode = hc["NetworkMode"].as_str().unwrap_or_default().to_owned();
    let endpoints = body["NetworkingConfig"]["EndpointsConfig"].as_object();
    let endpoint = endpoints.and_then(|e| e.get(&network_mode).or_else(|| e.values().next()));
    let entrypoint = match &body["Entrypoint"] {
        Value::Null => None,
        other => Some(strings(other)),
    };
    // Settings Berth does not apply are refused by name, never ignored.
    let unsupported: [(&str, bool); 3] = [
        ("DeviceRequests", hc["DeviceRequests"].as_array().is_some_and(|d| !d.is_empty())),
        ("UsernsMode", hc["UsernsMode"].as_str().is_some_and(|m| !m.is_empty())),
        ("StorageOpt", hc["StorageOpt"].as_object().is_some_and(|o| !o.is_empty())),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(ApiError::bad_request(format!("HostConfig.{name} is not supported by Berth")));
    }
    // --cpu-period/--cpu-quota as the equivalent NanoCpus.
    let nano_cpus = match (hc["CpuQuota"].as_i64().unwrap_or(0), hc["CpuPeriod"].as_i64().unwrap_or(0)) {
        (quota, _) if quota <= 0 => hc["NanoCpus"].as_i64().unwrap_or(0),
        (_, period) if period != 0 && !(1000..=1_000_000).contains(&period) => {
            return Err(ApiError::bad_request("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)"))
        }
        (quota, _) if quota < 1000 => return Err(ApiError::bad_request("CPU cfs quota can not be less than 1ms (i.e. 1000)")),
        // In 128 bits: a large quota must reach the CPU-count check, not wrap.
        (quota, period) => {
            let nanos = i128::from(quota) * 1_000_000_000 / i128::from(if period > 0 { period } else { 100_000 });
            i64::try_from(nanos).unwrap_or(i64::MAX)
        }
    };
    let extras = crate::container::record::HostExtras {
        extra_hosts: strings(&hc["ExtraHosts"]).into_iter().map(|h| h.replacen('=', ":", 1)).collect(),
        dns: strings(&hc["Dns"]),
        dns_search: strings(&hc["DnsSearch"]),
        dns_options: strings(&hc["DnsOptions"]),
        shm_size: hc["ShmSize"].as_i64().unwrap_or(0),
        ulimits: hc["Ulimits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| crate::container::record::Ulimit {
                name: u["Name"].as_str().unwrap_or_default().to_owned(),
                soft: u["Soft"].as_i64().unwrap_or(0),
                hard: u["Hard"].as_i64().unwrap_or(0),
            })
            .collect(),
        sysctls: string_map(&hc["Sysctls"]),
        group_add: strings(&hc["GroupAdd"]),
        oom_score_adj: hc["OomScoreAdj"].as_i64().map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        domainname: body["Domainname"].as_str().unwrap_or_default().to_owned(),
        log_config: crate::container::record::LogConfig {
            driver: hc["LogConfig"]["Type"].as_str().unwrap_or_default().to_owned(),
            options: string_map(&hc["LogConfig"]["Config"]),
        },
        pid_mode: hc["PidMode"].as_str().unwrap_or_default().to_owned(),
        ipc_mode: hc["IpcMode"].as_str().unwrap_or_default().to_owned(),
        uts_mode: hc["UTSMode"].as_str().unwrap_or_default().to_owned(),
        cpuset_cpus: hc["CpusetCpus"].as_str().unwrap_or_default().to_owned(),
        cpuset_mems: hc["CpusetMems"].as_str().unwrap_or_default().to_owned(),
        volumes_from: strings(&hc["VolumesFrom"]),
        // Legacy links, and the links docker-compose v1 gives each network.
        links: strings(&hc["Links"])
            .into_iter()
            .chain(endpoints.into_iter().flat_map(|e| e.values()).flat_map(|e| strings(&e["Links"])))
            .map(|l| {
                let (name, alias) = crate::container::record::parse_link(&l);
                format!("{name}:{alias}")
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        cgroupns_mode: hc["CgroupnsMode"].as_str().unwrap_or_default().to_owned(),
        runtime: hc["Runtime"].as_str().unwrap_or_default().to_owned(),
        devices: hc["Devices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| crate::container::record::DeviceMapping {
                path_on_host: d["PathOnHost"].as_str().unwrap_or_default().to_owned(),
                path_in_container: d["PathInContainer"].as_str().unwrap_or_default().to_owned(),
                cgroup_permissions: d["CgroupPermissions"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        device_cgroup_rules: strings(&hc["DeviceCgroupRules"]),
        // -1 (or none) is the kernel's default.
        memory_swappiness: hc["MemorySwappiness"].as_i64().filter(|&s| s != -1),
        memory_reservation: hc["MemoryReservation"].as_i64().unwrap_or(0),
        oom_kill_disable: hc["OomKillDisable"].as_bool().unwrap_or(false),
        cpu_rt_period: hc["CpuRealtimePeriod"].as_i64().unwrap_or(0),
        cpu_rt_runtime: hc["CpuRealtimeRuntime"].as_i64().unwrap_or(0),
        // null: docker's defaults; a list (empty too): exactly those.
        masked_paths: hc["MaskedPaths"].as_array().map(|_| strings(&hc["MaskedPaths"])),
        readonly_paths: hc["ReadonlyPaths"].as_array().map(|_| strings(&hc["ReadonlyPaths"])),
        cgroup_parent: hc["CgroupParent"].as_str().unwrap_or_default().to_owned(),
        blkio: crate::container::record::Blkio {
            weight: hc["BlkioWeight"].as_u64().map_or(0, |w| u16::try_from(w).unwrap_or(u16::MAX)),
            weight_device: device_rates(&hc["BlkioWeightDevice"], "Weight"),
            read_bps: device_rates(&hc["BlkioDeviceReadBps"], "Rate"),
            write_bps: device_rates(&hc["BlkioDeviceWriteBps"], "Rate"),
            read_iops: device_rates(&hc["BlkioDeviceReadIOps"], "Rate"),
            write_iops: device_rates(&hc["BlkioDeviceWriteIOps"], "Rate"),
        },
        annotations: string_map(&hc["Annotations"]),
    };
    // Linux has one isolation technology; docker's words for any other.
    match hc["Isolation"].as_str().unwrap_or_default() {
        "" | "default" => {}
        other => return Err(ApiError::bad_request(format!("Invalid isolation: {other:?} - linux only supports 'default'"))),
    }
    let healthcheck = body.get("Healthcheck").filter(|h| h.is_object()).map(|h| Healthcheck {
        test: strings(&h["Test"]),
        interval: h["Interval"].as_i64().unwrap_or(0),
        timeout: h["Timeout"].as_i64().unwrap_or(0),
        start_period: h["StartPeriod"].as_i64().unwrap_or(0),
        retries: h["Retries"].as_u64().unwrap_or(0) as u32,
    });
    Ok(CreateRequest {
        name: name.to_owned(),
        image: body["Image"].as_str().unwrap_or_default().to_owned(),
        // The docker CLI checks content trust itself; the engine's policy still applies.
        require_signature: false,
        cmd: strings(&body["Cmd"]),
        entrypoint,
        env: strings(&body["Env"]),
        working_dir: body["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        user: body["User"].as_str().unwrap_or_default().to_owned(),
        hostname: body["Hostname"].as_str().unwrap_or_default().to_owned(),
        labels: string_map(&body["Labels"]),
        tty: body["Tty"].as_bool().unwrap_or(false),
        open_stdin: body["OpenStdin"].as_bool().unwrap_or(false),
        stdin_once: body["StdinOnce"].as_bool().unwrap_or(false),
        init: hc["Init"].as_bool().unwrap_or(false),
        stop_signal: body["StopSignal"].as_str().unwrap_or_default().to_owned(),
        stop_timeout: body["StopTimeout"].as_i64().map(|t| t as i32),
        auto_remove: hc["AutoRemove"].as_bool().unwrap_or(false),
        read_only: hc["ReadonlyRootfs"].as_bool().unwrap_or(false),
        privileged: hc["Privileged"].as_bool().unwrap_or(false),
        cap_add: strings(&hc["CapAdd"]),
        cap_drop: strings(&hc["CapDrop"]),
        security_opt: strings(&hc["SecurityOpt"]),
        resources: Resources {
            memory: hc["Memory"].as_i64().unwrap_or(0),
            memory_swap: hc["MemorySwap"].as_i64().unwrap_or(0),
            nano_cpus,
            cpu_shares: hc["CpuShares"].as_i64().unwrap_or(0),
            pids_limit: hc["PidsLimit"].as_i64().unwrap_or(0),
        },
        restart_policy: RestartPolicy {
            name: hc["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned(),
            maximum_retry_count: hc["RestartPolicy"]["MaximumRetryCount"].as_u64().unwrap_or(0) as u32,
        },
        tmpfs,
        network_mode,
        network_aliases: endpoint.map(|e| strings(&e["Aliases"])).unwrap_or_default(),
        ipv4_address: endpoint.and_then(|e| e["IPAMConfig"]["IPv4Address"].as_str()).unwrap_or_default().to_owned(),
        // Config.MacAddress before API 1.44, the endpoint's since.
        mac_address: endpoint
            .and_then(|e| e["MacAddress"].as_str())
            .filter(|m| !m.is_empty())
            .or_else(|| body["MacAddress"].as_str())
            .unwrap_or_default()
            .to_owned(),
        ports,
        publish_all: hc["PublishAllPorts"].as_bool().unwrap_or(false),
        expose: body["ExposedPorts"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
        healthcheck,
        mounts,
        extras,
    })
}

pub(super) fn no_content() -> Reply {
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(full("")).unwrap_or_else(|_| Response::new(full(""))))
}

fn not_modified() -> Reply {
    Ok(Response::builder().status(StatusCode::NOT_MODIFIED).body(full("")).unwrap_or_else(|_| Response::new(full(""))))
}

fn seconds(params: &BTreeMap<String, String>) -> Result<Option<i32>, ApiError> {
    params.get("t").or_else(|| params.get("timeout")).map(|t| t.parse::<i32>().map_err(|_| ApiError::bad_request(format!("invalid timeout {t:?}")))).transpose()
}

/// docker's `[{"Path": ..., "Weight"|"Rate": ...}]`.
fn device_rates(list: &Value, key: &str) -> Vec<crate::container::record::DeviceRate> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|d| crate::container::record::DeviceRate { path: d["Path"].as_str().unwrap_or_default().to_owned(), rate: d[key].as_u64().unwrap_or(0) })
        .collect()
}

/// Settings that dockerd, too, discards with a warning where the kernel cannot apply
/// them (kernel memory): Berth does not apply them, and says so in the create answer's
/// Warnings, which the docker CLI prints.
fn discarded(hc: &Value) -> Vec<String> {
    let set = |key: &str| match &hc[key] {
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        Value::Array(list) => !list.is_empty(),
        _ => false,
    };
    ["KernelMemory", "KernelMemoryTCP"].into_iter().filter(|key| set(key)).map(|key| format!("Berth does not apply HostConfig.{key}: discarded")).collect()
}

/// Routes `/containers/{id}/...` (and `/containers/create`).
pub async fn route(
    containers: &Arc<Containers>,
    method: &hyper::Method,
    segments: &[&str],
    params: &BTreeMap<String, String>,
    request: Request<Incoming>,
) -> Option<Reply> {
    use hyper::Method;
    let reply = match (method, segments) {
        (&Method::POST, ["create"]) => {
            let name = params.get("name").cloned().unwrap_or_default();
            let body = match json_body(request).await {
                Ok(body) => body,
                Err(e) => return Some(Err(e)),
            };
            let reply = async {
                let request = create_request(&name, &body)?;
                let record = containers.create(request).await?;
                let mut warnings = discarded(&body["HostConfig"]);
                warnings.extend(containers.create_warnings(&record));
                super::json_reply(StatusCode::CREATED, &json!({"Id": record.id, "Warnings": warnings}))
            };
            reply.await
        }
        (&Method::GET, [id, "json"]) => match containers.find(id) {
            Ok(record) if super::flag(params, "size") => ok_json(containers.with_sizes(&record, containers.inspect_json(&record))),
            Ok(record) => ok_json(containers.inspect_json(&record)),
            Err(e) => Err(e.into()),
        },
        (&Method::POST, [id, "start"]) => match containers.find(id) {
            Ok(record) if record.state.status.is_running() => not_modified(),
            Ok(_) => match containers.start(id).await {
                Ok(()) => no_content(),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        },
        (&Method::POST, [id, "stop"]) => match seconds(params) {
            Ok(timeout) => match containers.stop(id, timeout, params.get("signal").map(String::as_str)).await {
                Ok(true) => no_content(),
                Ok(false) => not_modified(),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        },
        (&Method::POST, [id, "restart"]) => match seconds(params) {
            Ok(timeout) => containers.restart(id, timeout).await.map_err(ApiError::from).and_then(|()| no_content()),
            Err(e) => Err(e),
        },
        (&Method::POST, [id, "kill"]) => {
            let signal = params.get("signal").map(String::as_str).unwrap_or("KILL");
            match containers.kill(id, signal).await {
                Ok(()) => {
                    // As dockerd: a SIGKILL answers once the container has stopped.
                    if matches!(signal.trim_start_matches("SIG"), "KILL" | "9") {
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), containers.wait(id, "not-running")).await;
                    }
                    no_content()
                }
                Err(e) => Err(e.into()),
            }
        }
        (&Method::POST, [id, "pause"]) => containers.pause(id, true).await.map_err(ApiError::from).and_then(|()| no_content()),
        (&Method::POST, [id, "unpause"]) => containers.pause(id, false).await.map_err(ApiError::from).and_then(|()| no_content()),
        (&Method::DELETE, [id]) => containers.remove(id, flag(params, "force"), flag(params, "v")).await.map_err(ApiError::from).and_then(|()| no_content()),
        (&Method::POST, [id, "wait"]) => wait(containers, id, params.get("condition").cloned().unwrap_or_default()),
        (&Method::GET, [id, "logs"]) => logs(containers, id, params),
        (&Method::POST, [id, "attach"]) => attach(containers, id, params, request).await,
        _ => return None,
    };
    Some(reply)
}

/// `wait`: the headers go out at once, the status code when the condition is met
/// (clients start the container after sending this).
fn wait(containers: &Arc<Containers>, id: &str, condition: String) -> Reply {
    if !matches!(condition.as_str(), "" | "not-running" | "next-exit" | "removed") {
        return Err(ApiError::bad_request(format!("invalid condition: {condition:?}")));
    }
    let record = containers.find(id)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(1);
    let containers = containers.clone();
    tokio::spawn(async move {
        let body = match containers.wait(&record.id, &condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": crate::error_chain(&e)}}),
        };
        let _ = tx.send(Ok(hyper::body::Frame::data(Bytes::from(format!("{body}\n"))))).await;
    });
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    Ok(Response::builder().header("Content-Type", "application/json").body(body).unwrap_or_else(|_| Response::new(full(""))))
}

/// docker's stream header: [stream, 0, 0, 0, size (u32, big-endian)].
pub(super) fn docker_frame(stream: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}

fn logs(containers: &Arc<Containers>, id: &str, params: &BTreeMap<String, String>) -> Reply {
    let record = containers.find(id)?;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match params.get(key).filter(|v| !v.is_empty() && v.as_str() != "0") {
            None => Ok(None),
            Some(v) => crate::container::logs::parse_time(v, now).map(Some).ok_or_else(|| ApiError::bad_request(format!("invalid {key} {v:?}"))),
        }
    };
    let query = LogsQuery {
        follow: flag(params, "follow"),
        stdout: flag(params, "stdout"),
        stderr: flag(params, "stderr"),
        since: time("since")?,
        until: time("until")?,
        tail: params.get("tail").and_then(|t| t.parse::<usize>().ok()),
    };
    if !query.stdout && !query.stderr {
        return Err(ApiError::bad_request("you must choose at least one stream"));
    }
    let timestamps = flag(params, "timestamps");
    let tty = record.config.tty;
    let mut lines = containers.logs(&record.id, query)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(64);
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            let mut data = Vec::new();
            if timestamps {
                data.extend_from_slice(line.time.as_bytes());
                data.push(b' ');
            }
            data.extend_from_slice(&line.data);
            let chunk = if tty { Bytes::from(data) } else { docker_frame(line.stream, &data) };
            if tx.send(Ok(hyper::body::Frame::data(chunk))).await.is_err() {
                return;
            }
        }
    });
    let content_type = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    Ok(Response::builder().header("Content-Type", content_type).body(body).unwrap_or_else(|_| Response::new(full(""))))
}

/// `attach` with `Upgrade: tcp`: 101, then the container's output (docker's framing
/// unless it has a TTY) and the client's input, until the container's stdio closes.
async fn attach(containers: &Arc<Containers>, id: &str, params: &BTreeMap<String, String>, mut request: Request<Incoming>) -> Reply {
    let record = containers.find(id)?;
    // With a TTY, the detach keys end the attach and leave the container running.
    let keys = crate::container::detach::parse(params.get("detachKeys").map_or("", String::as_str)).map_err(ApiError::bad_request)?;
    let wants_upgrade = request.headers().get(hyper::header::UPGRADE).is_some();
    if !wants_upgrade {
        return Err(ApiError::bad_request("attach needs a connection upgrade (Upgrade: tcp)"));
    }
    let (tty, stdin_once) = (record.config.tty, record.config.stdin_once);
    let (stdin, stdout, stderr) = (flag(params, "stdin"), flag(params, "stdout"), flag(params, "stderr"));
    let mut watcher = tty.then(|| crate::container::detach::Watcher::new(keys));
    // `logs`: what the container wrote before, first; `stream`: then its live output
    // (without it the attach ends after the logs, as dockerd's).
    let (logs, stream) = (flag(params, "logs"), flag(params, "stream"));
    let replay = if logs && (stdout || stderr) {
        let query = LogsQuery { follow: false, stdout, stderr, since: None, until: None, tail: None };
        Some(containers.logs(&record.id, query)?)
    } else {
        None
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let (containers, container_id) = (containers.clone(), record.id.clone());
    // Registered before the 101 goes out: the client starts the container after it,
    // and the first output must not be missed.
    let pending = if stream { Some(containers.attach_begin(&record.id).await?) } else { None };
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::warn!("attach: the connection was not upgraded: {e}");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        if let Some(mut lines) = replay {
            while let Some(line) = lines.recv().await {
                let chunk = if tty { Bytes::from(line.data) } else { docker_frame(line.stream, &line.data) };
                if client.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        let Some(pending) = pending else {
            let _ = client.flush().await;
            let _ = client.shutdown().await;
            return;
        };
        let socket = match pending.connected().await {
            Ok(s) => s,
            Err(e) => {
                // The start's own answer tells the client why (as with dockerd); the
                // stream just ends.
                tracing::debug!("attach: the container did not start: {}", crate::error_chain(&e));
                let _ = client.shutdown().await;
                return;
            }
        };
        let socket = match socket.set_nonblocking(true).and_then(|()| tokio::net::UnixStream::from_std(socket)) {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!("attach: {e}");
                return;
            }
        };
        let (monitor_out, mut monitor_in) = socket.into_split();
        let (mut client_in, mut client_out) = tokio::io::split(client);
        // The client's end of input closes the container's stdin only for a container
        // made with StdinOnce and no TTY (`docker run -i`, piped); otherwise, as at the
        // detach keys, it ends this attach and the container runs on with its stdin
        // open (the CLI, seeing the keys itself, just closes its connection). Dropping
        // the monitor connection's write half tells the monitor the client is gone.
        let close_stdin = stdin_once && !tty;
        let input = async move {
            let mut buf = vec![0u8; 32 * 1024];
            if stdin {
                loop {
                    match client_in.read(&mut buf).await {
                        Ok(0) | Err(_) if close_stdin => {
                            let _ = monitor_in.write_all(&crate::container::attach::frame(crate::container::attach::CLOSE_STDIN, &[])).await;
                            break;
                        }
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let (data, detached) = match watcher.as_mut() {
                                Some(w) => w.feed(&buf[..n]),
                                None => (buf[..n].to_vec(), false),
                            };
                            if !data.is_empty() && monitor_in.write_all(&crate::container::attach::frame(crate::container::attach::STDIN, &data)).await.is_err()
                            {
                                break;
                            }
                            if detached {
                                containers.detached(&container_id);
                                return;
                            }
                        }
                    }
                }
            }
            std::future::pending::<()>().await;
        };
        let output = async move {
            let mut frames = crate::container::attach::OutputFrames::new(monitor_out);
            while let Some((stream, data)) = frames.next().await {
                let wanted = (stream == 1 && stdout) || (stream == 2 && stderr);
                if wanted {
                    let chunk = if tty { Bytes::from(data) } else { docker_frame(stream, &data) };
                    if client_out.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            }
            let _ = client_out.flush().await;
            let _ = client_out.shutdown().await;
        };
        // The output's end (the container's stdio closed) ends the attach.
        tokio::select! {
            _ = output => {}
            _ = input => {}
        }
    });
    upgraded(tty)
}

/// The 101 that hands a connection over to a container's stdio.
pub(super) fn upgraded(tty: bool) -> Reply {
    let content_type = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", content_type)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "tcp")
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full(""))))
}
