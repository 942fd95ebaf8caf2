//! The `/containers/...` endpoints around a container rather than its life: top, stats,
//! changes, export, archive (GET, HEAD and PUT: `docker cp` both ways), rename, update,
//! resize and prune.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use super::containers::{json_body, no_content};
use super::files::{body_to_file, file_reply, Scratch};
use super::{flag, full, ok_json, ApiError, Body, Reply};
use crate::container::record::{Resources, RestartPolicy};
use crate::container::stats::Sample;
use crate::container::{ContainerRecord, Containers, UpdateRequest};

/// docker's `X-Docker-Container-Path-Stat` header value: base64 of the JSON.
fn path_stat_header(stat: &crate::container::copy::PathStat) -> String {
    use base64::Engine as _;
    let value = json!({"name": stat.name, "size": stat.size, "mode": stat.mode, "mtime": stat.mtime, "linkTarget": stat.link_target});
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

fn archive_path(params: &BTreeMap<String, String>) -> Result<String, ApiError> {
    params.get("path").filter(|p| !p.is_empty()).cloned().ok_or_else(|| ApiError::bad_request("the path parameter is required"))
}

fn stats_json(record: &ContainerRecord, sample: &Sample, previous: &Sample) -> Value {
    let cpu = |s: &Sample| {
        json!({
            "cpu_usage": {"total_usage": s.cpu_total, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": s.system_cpu,
            "online_cpus": s.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    json!({
        "read": sample.read,
        "preread": previous.read,
        "pids_stats": {"current": sample.pids},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "Read", "value": sample.block_read},
            {"major": 0, "minor": 0, "op": "Write", "value": sample.block_write},
        ]},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(sample),
        "precpu_stats": cpu(previous),
        "memory_stats": {"usage": sample.memory_usage, "limit": sample.memory_limit, "stats": {}},
        "name": format!("/{}", record.name),
        "id": record.id,
        "networks": {"eth0": {"rx_bytes": sample.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0, "tx_bytes": sample.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}},
    })
}

/// `stats`: one reading a second; `stream=false` gives one, with a reading a second
/// earlier to compute CPU use from (`one-shot` skips that wait).
fn stats(containers: &Arc<Containers>, id: &str, params: &BTreeMap<String, String>) -> Reply {
    let record = containers.find(id)?;
    let stream = params.get("stream").is_none_or(|v| matches!(v.as_str(), "1" | "true" | "True"));
    let one_shot = flag(params, "one-shot");
    let first = containers.stats_sample(&record)?;
    let containers = containers.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(2);
    tokio::spawn(async move {
        // A reading a second after the last; None once the container is gone or stopped.
        let next = || async {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            containers.find(&record.id).ok().and_then(|r| containers.stats_sample(&r).ok())
        };
        let mut previous = Sample { read: "0001-01-01T00:00:00Z".to_owned(), ..Sample::default() };
        let mut current = first;
        if !stream && !one_shot {
            // A second reading, so the one answer carries a CPU figure.
            let Some(second) = next().await else { return };
            previous = std::mem::replace(&mut current, second);
        }
        loop {
            let body = stats_json(&record, &current, &previous);
            if tx.send(Ok(hyper::body::Frame::data(Bytes::from(format!("{body}\n"))))).await.is_err() || !stream {
                return;
            }
            let Some(reading) = next().await else { return };
            previous = std::mem::replace(&mut current, reading);
        }
    });
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    Ok(Response::builder().header("Content-Type", "application/json").body(body).unwrap_or_else(|_| Response::new(full(""))))
}

/// `update`: resources and the restart policy; docker's answer lists warnings.
async fn update(containers: &Arc<Containers>, id: &str, request: Request<Incoming>) -> Reply {
    let body = json_body(request).await?;
    let number = |key: &str| body[key].as_i64().unwrap_or(0);
    let policy = body["RestartPolicy"]["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(|name| RestartPolicy { name: name.to_owned(), maximum_retry_count: body["RestartPolicy"]["MaximumRetryCount"].as_u64().unwrap_or(0) as u32 });
    let update = UpdateRequest {
        resources: Resources {
            memory: number("Memory"),
            memory_swap: number("MemorySwap"),
            nano_cpus: number("NanoCpus"),
            cpu_shares: number("CpuShares"),
            pids_limit: number("PidsLimit"),
        },
        restart_policy: policy,
    };
    containers.update(id, update).await?;
    ok_json(json!({"Warnings": []}))
}

pub async fn route(
    containers: &Arc<Containers>,
    method: &Method,
    segments: &[&str],
    params: &BTreeMap<String, String>,
    request: Request<Incoming>,
) -> Option<Reply> {
    let reply = match (method, segments) {
        (&Method::GET, [id, "top"]) => match containers.top(id, params.get("ps_args").map_or("", String::as_str)).await {
            Ok((titles, processes)) => ok_json(json!({"Titles": titles, "Processes": processes})),
            Err(e) => Err(e.into()),
        },
        (&Method::GET, [id, "stats"]) => stats(containers, id, params),
        (&Method::GET, [id, "changes"]) => match containers.changes(id) {
            Ok(changes) => {
                let list: Vec<Value> = changes.iter().map(|(kind, path)| json!({"Path": path, "Kind": kind.code()})).collect();
                ok_json(if list.is_empty() { Value::Null } else { Value::Array(list) })
            }
            Err(e) => Err(e.into()),
        },
        (&Method::GET, [id, "export"]) => {
            let out = Scratch(containers.scratch_file("export"));
            match containers.export(id, &out.0).await {
                Ok(()) => match std::fs::File::open(&out.0) {
                    Ok(file) => file_reply(file, "application/x-tar", None),
                    Err(e) => Err(ApiError::internal(e.to_string())),
                },
                Err(e) => Err(e.into()),
            }
        }
        (&Method::HEAD, [id, "archive"]) => match archive_path(params) {
            Ok(path) => match containers.stat_path(id, &path).await {
                Ok(stat) => Ok(Response::builder()
                    .header("X-Docker-Container-Path-Stat", path_stat_header(&stat))
                    .header("Content-Type", "application/x-tar")
                    .body(full(""))
                    .unwrap_or_else(|_| Response::new(full("")))),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        },
        (&Method::GET, [id, "archive"]) => match archive_path(params) {
            Ok(path) => {
                let out = Scratch(containers.scratch_file("cp-out"));
                match containers.archive_with_stat(id, &path, &out.0).await {
                    Ok(stat) => match std::fs::File::open(&out.0) {
                        Ok(file) => file_reply(file, "application/x-tar", Some(("X-Docker-Container-Path-Stat", path_stat_header(&stat)))),
                        Err(e) => Err(ApiError::internal(e.to_string())),
                    },
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        },
        (&Method::PUT, [id, "archive"]) => match archive_path(params) {
            Ok(path) => {
                let input = Scratch(containers.scratch_file("cp-in"));
                match body_to_file(request, &input.0).await {
                    Ok(()) => {
                        containers.extract(id, &path, &input.0, flag(params, "copyUIDGID")).await.map_err(ApiError::from).and_then(|()| ok_json(Value::Null))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        },
        (&Method::POST, [id, "rename"]) => match params.get("name").filter(|n| !n.is_empty()) {
            Some(name) => containers.rename(id, name).await.map_err(ApiError::from).and_then(|()| no_content()),
            None => Err(ApiError::bad_request("the name parameter is required")),
        },
        (&Method::POST, [id, "update"]) => update(containers, id, request).await,
        (&Method::POST, [id, "resize"]) => {
            let number = |key: &str| params.get(key).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
            containers.resize(id, number("h"), number("w")).await.map_err(ApiError::from).and_then(|()| ok_json(Value::Null))
        }
        (&Method::POST, ["prune"]) => prune(containers, params).await,
        _ => return None,
    };
    Some(reply)
}

/// `POST /containers/prune`: every stopped container (label filters narrow it).
async fn prune(containers: &Arc<Containers>, params: &BTreeMap<String, String>) -> Reply {
    let pairs = super::filters(params)?;
    let (deleted, reclaimed) = containers.prune(&pairs).await?;
    ok_json(json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}))
}
