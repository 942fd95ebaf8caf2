//! `/images/...`, `/networks/...` and `/volumes/...` of the Docker Engine API: pull
//! with docker's JSON progress stream, image inspect, tag and delete; network create,
//! inspect, delete, connect, disconnect and prune; volume create, inspect, delete and
//! prune.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::containers::{json_body, no_content, string_map, strings};
use super::{flag, full, json_reply, ok_json, ApiError, Body, Reply};
use crate::Engine;

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Credentials from `X-Registry-Auth` (base64url JSON, as docker clients send it).
pub(super) fn registry_auth(request: &Request<Incoming>) -> Option<crate::registry::Credentials> {
    use base64::Engine as _;
    let header = request.headers().get("X-Registry-Auth")?.to_str().ok()?;
    let decoded =
        base64::engine::general_purpose::URL_SAFE.decode(header.trim()).or_else(|_| base64::engine::general_purpose::STANDARD.decode(header.trim())).ok()?;
    let value: Value = serde_json::from_slice(&decoded).ok()?;
    let username = value["username"].as_str().unwrap_or_default().to_owned();
    let password = value["password"].as_str().unwrap_or_default().to_owned();
    (!username.is_empty()).then_some(crate::registry::Credentials { username, password })
}

/// `/images/create`: a pull, reported as docker's JSON progress lines.
fn pull(engine: &Engine, params: &BTreeMap<String, String>, request: &Request<Incoming>) -> Reply {
    let from = params.get("fromImage").filter(|f| !f.is_empty()).cloned().ok_or_else(|| ApiError::bad_request("fromImage or fromSrc is required"))?;
    let reference = match params.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.starts_with("sha256:") => format!("{from}@{tag}"),
        Some(tag) => format!("{from}:{tag}"),
        None => from.clone(),
    };
    let platform = params.get("platform").cloned().filter(|p| !p.is_empty());
    let creds = registry_auth(request);
    let images = engine.images_shared();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(64);
    let line = |value: Value| Ok(hyper::body::Frame::data(Bytes::from(format!("{value}\r\n"))));
    tokio::spawn(async move {
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let tag = reference.rsplit_once(':').map(|(_, t)| t.to_owned()).filter(|t| !t.contains('/')).unwrap_or_else(|| "latest".into());
        let _ = tx.send(line(json!({"status": format!("Pulling from {}", from), "id": tag}))).await;
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let value = match p {
                    crate::image::PullProgress::Resolved { .. } => continue,
                    crate::image::PullProgress::Layer { digest, done, total } => json!({
                        "status": "Downloading",
                        "progressDetail": {"current": done, "total": total},
                        "id": short(&digest.to_string()),
                    }),
                    crate::image::PullProgress::LayerDone { digest, cached } => json!({
                        "status": if cached { "Already exists" } else { "Pull complete" },
                        "progressDetail": {},
                        "id": short(&digest.to_string()),
                    }),
                };
                if forward_tx.send(line(value)).await.is_err() {
                    return;
                }
            }
        });
        // A client that hangs up (docker pull's Ctrl-C) stops the pull, as in dockerd.
        let result = tokio::select! {
            result = images.pull(&reference, platform.as_deref(), creds.as_ref(), ptx) => result,
            () = tx.closed() => {
                forward.abort();
                tracing::info!(%reference, "pull cancelled: its client went away");
                return;
            }
        };
        let _ = forward.await;
        match result {
            Ok(record) => {
                let _ = tx.send(line(json!({"status": format!("Digest: {}", record.manifest_digest)}))).await;
                let _ = tx.send(line(json!({"status": format!("Status: Downloaded newer image for {reference}")}))).await;
            }
            Err(e) => {
                let message = crate::error_chain(&e);
                let _ = tx.send(line(json!({"errorDetail": {"message": message}, "error": message}))).await;
            }
        }
    });
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    Ok(Response::builder().header("Content-Type", "application/json").body(body).unwrap_or_else(|_| Response::new(full(""))))
}

/// `GET /distribution/{name}/json`: the registry's manifest descriptor and platforms.
pub async fn distribution(engine: &Engine, name: &str, request: &Request<Incoming>) -> Reply {
    let creds = registry_auth(request);
    let found = engine.images().distribution(name, creds.as_ref()).await.map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let platforms: Vec<Value> = found
        .platforms
        .iter()
        .map(|p| {
            let mut v = json!({"architecture": p.architecture, "os": p.os});
            if let Some(variant) = &p.variant {
                v["variant"] = json!(variant);
            }
            v
        })
        .collect();
    ok_json(json!({"Descriptor": {"mediaType": found.media_type, "digest": found.digest, "size": found.size}, "Platforms": platforms}))
}

/// `GET /images/search`: `term`, `limit` (1 to 100, 25 by default), `filters`
/// (`is-official`, `is-automated`, `stars`), with the login of `X-Registry-Auth`.
pub async fn search(engine: &Engine, params: &BTreeMap<String, String>, request: &Request<Incoming>) -> Reply {
    let term = params.get("term").filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad_request("term is required"))?;
    let limit = match params.get("limit").filter(|l| !l.is_empty()) {
        Some(text) => text.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
        None => 25,
    };
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is outside the range of [1, 100]")));
    }
    let filters = crate::registry::search::SearchFilters::parse(&super::filters(params)?).map_err(ApiError::bad_request)?;
    let found = engine
        .images()
        .registry
        .search(term, usize::try_from(limit).unwrap_or(25), registry_auth(request).as_ref())
        .await
        .map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let results: Vec<Value> = found.iter().filter(|r| filters.matches(r)).map(|r| json!(r)).collect();
    ok_json(Value::Array(results))
}

async fn image_inspect(engine: &Engine, name: &str) -> Reply {
    let images = engine.images();
    let record = images
        .resolve(name)
        .map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No such image: {name}")))?;
    let config: Value = images.content.read(&record.id).await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    ok_json(json!({
        "Id": record.id.to_string(),
        "RepoTags": record.tags.iter().map(|t| super::familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": record.repo_digests.iter().map(|t| super::familiar(t)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config["comment"].as_str().unwrap_or_default(),
        "Created": if record.created.is_empty() { "0001-01-01T00:00:00Z".to_owned() } else { record.created.clone() },
        "DockerVersion": "",
        "Author": config["author"].as_str().unwrap_or_default(),
        "Config": config["config"],
        "Architecture": record.architecture,
        "Os": record.os,
        "Size": record.size,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {"Type": "layers", "Layers": record.layers.iter().map(|l| l.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }))
}

pub async fn images(engine: &Engine, method: &Method, segments: &[&str], params: &BTreeMap<String, String>, request: Request<Incoming>) -> Option<Reply> {
    let images = engine.images();
    let reply = match (method, segments) {
        (&Method::POST, ["create"]) if params.contains_key("fromSrc") => super::image_archive::import(engine, params, request).await,
        (&Method::POST, ["create"]) => pull(engine, params, &request),
        (&Method::POST, ["load"]) => super::image_archive::load(engine, request).await,
        (&Method::GET, ["get"]) => {
            let names = request.uri().query().unwrap_or_default().split('&').filter_map(|p| p.strip_prefix("names=")).map(super::percent_decode).collect();
            super::image_archive::get(engine, names).await
        }
        (&Method::POST, ["prune"]) => super::image_archive::prune(engine, params),
        (&Method::GET, [name @ .., "get"]) if !name.is_empty() => super::image_archive::get(engine, vec![name.join("/")]).await,
        (&Method::GET, [name @ .., "history"]) if !name.is_empty() => super::image_archive::history(engine, &name.join("/")).await,
        (&Method::POST, [name @ .., "push"]) if !name.is_empty() => super::image_archive::push(engine, &name.join("/"), params, &request).await,
        // Names hold slashes: everything between `images/` and the action.
        (&Method::GET, [name @ .., "json"]) if !name.is_empty() => image_inspect(engine, &name.join("/")).await,
        (&Method::POST, [name @ .., "tag"]) if !name.is_empty() => {
            let repo = params.get("repo").cloned().unwrap_or_default();
            let target = match params.get("tag").filter(|t| !t.is_empty()) {
                Some(tag) => format!("{repo}:{tag}"),
                None => repo,
            };
            match images.tag(&name.join("/"), &target) {
                Ok(_) => json_reply(StatusCode::CREATED, &Value::Null),
                Err(e) => Err(ApiError::from_kind(e.kind(), crate::error_chain(&e))),
            }
        }
        (&Method::DELETE, name) if !name.is_empty() => match images.remove(&name.join("/"), flag(params, "force")) {
            Ok(removed) => ok_json(Value::Array(removal_json(&removed.untagged, &removed.deleted))),
            Err(e) => Err(ApiError::from_kind(e.kind(), crate::error_chain(&e))),
        },
        _ => return None,
    };
    Some(reply)
}

pub async fn networks(engine: &Engine, method: &Method, segments: &[&str], params: &BTreeMap<String, String>, request: Request<Incoming>) -> Option<Reply> {
    let networks = engine.networks();
    let net_err = |e: crate::network::NetworkError| ApiError::from_kind(e.kind(), crate::error_chain(&e));
    let reply = match (method, segments) {
        (&Method::POST, ["create"]) => {
            let body = match json_body(request).await {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let ipam = &body["IPAM"]["Config"][0];
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let created = networks
                .create(crate::network::CreateNetwork {
                    name: text(&body["Name"]),
                    driver: text(&body["Driver"]),
                    subnet: text(&ipam["Subnet"]),
                    gateway: text(&ipam["Gateway"]),
                    ip_range: text(&ipam["IPRange"]),
                    internal: body["Internal"].as_bool().unwrap_or(false),
                    attachable: body["Attachable"].as_bool().unwrap_or(false),
                    labels: string_map(&body["Labels"]),
                    options: string_map(&body["Options"]),
                })
                .await;
            match created {
                // The event is the network store's own.
                Ok(n) => json_reply(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})),
                Err(e) => Err(net_err(e)),
            }
        }
        // docker's prune filters: label, label! and until.
        (&Method::POST, ["prune"]) => match super::filters(params) {
            Ok(pairs) => match crate::filters::prune_filter(&pairs) {
                Ok(filter) => match networks.prune(|n| filter(&n.labels, &n.created)).await {
                    Ok(removed) => ok_json(json!({"NetworksDeleted": removed})),
                    Err(e) => Err(net_err(e)),
                },
                Err(e) => Err(ApiError::bad_request(e.to_string())),
            },
            Err(e) => Err(e),
        },
        (&Method::GET, [id]) => networks.find(id).map(|n| crate::network::inspect_json(&n, networks)).map_err(net_err).and_then(ok_json),
        (&Method::DELETE, [id]) => match networks.remove(id).await {
            Ok(_) => no_content(),
            Err(e) => Err(net_err(e)),
        },
        (&Method::POST, [id, action @ ("connect" | "disconnect")]) => {
            let body = match json_body(request).await {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let container = body["Container"].as_str().unwrap_or_default();
            let containers = engine.containers();
            let result = if *action == "connect" {
                let endpoint = &body["EndpointConfig"];
                let aliases = strings(&endpoint["Aliases"]);
                let ip = endpoint["IPAMConfig"]["IPv4Address"].as_str().unwrap_or_default().to_owned();
                containers.connect_network(id, container, aliases, ip).await
            } else {
                containers.disconnect_network(id, container).await
            };
            result.map_err(ApiError::from).and_then(|()| ok_json(Value::Null))
        }
        _ => return None,
    };
    Some(reply)
}

/// docker's account of an image removal: the names untagged, then the images deleted.
pub(super) fn removal_json(untagged: &[String], deleted: &[String]) -> Vec<Value> {
    let mut items: Vec<Value> = untagged.iter().map(|n| json!({"Untagged": super::familiar(n)})).collect();
    items.extend(deleted.iter().map(|d| json!({"Deleted": d})));
    items
}

/// The `label` filters (`key` or `key=value`) of a prune.
fn label_filters(pairs: Vec<(String, String)>) -> Vec<String> {
    pairs.into_iter().filter(|(k, _)| k == "label").map(|(_, v)| v).collect()
}

/// docker's volume JSON.
pub(super) fn volume_json(volumes: &crate::volume::Volumes, v: &crate::volume::VolumeRecord) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": volumes.data_dir(&v.name),
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    })
}

pub async fn volumes(engine: &Engine, method: &Method, segments: &[&str], params: &BTreeMap<String, String>, request: Request<Incoming>) -> Option<Reply> {
    let volumes = engine.volumes();
    let vol_err = |e: crate::volume::VolumeError| ApiError::from_kind(e.kind(), crate::error_chain(&e));
    let reply = match (method, segments) {
        (&Method::POST, ["create"]) => {
            let body = match json_body(request).await {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let name = body["Name"].as_str().filter(|n| !n.is_empty());
            match volumes.create(name, body["Driver"].as_str().unwrap_or("local"), string_map(&body["Labels"]), string_map(&body["DriverOpts"]), name.is_none())
            {
                Ok((v, _)) => json_reply(StatusCode::CREATED, &volume_json(volumes, &v)),
                Err(e) => Err(vol_err(e)),
            }
        }
        (&Method::POST, ["prune"]) => match super::filters(params) {
            Ok(pairs) => {
                let all = pairs.iter().any(|(k, v)| k == "all" && (v == "true" || v == "1"));
                let labels = label_filters(pairs);
                match volumes.prune(all, &labels) {
                    Ok((removed, bytes)) => ok_json(json!({"VolumesDeleted": removed, "SpaceReclaimed": bytes})),
                    Err(e) => Err(vol_err(e)),
                }
            }
            Err(e) => Err(e),
        },
        (&Method::GET, [name]) => match volumes.get(name) {
            Ok(Some(v)) => ok_json(volume_json(volumes, &v)),
            Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("get {name}: no such volume"))),
            Err(e) => Err(vol_err(e)),
        },
        (&Method::DELETE, [name]) => match volumes.remove(name, flag(params, "force")) {
            Ok(()) => no_content(),
            Err(e) => Err(vol_err(e)),
        },
        _ => return None,
    };
    Some(reply)
}

/// Shared handles the streaming endpoints move into their tasks.
impl Engine {
    pub fn images_shared(&self) -> Arc<crate::image::Images> {
        self.inner.images.clone()
    }
}
