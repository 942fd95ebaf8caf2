//! `POST /build` as docker's API defines it for the classic builder (what `docker build`
//! without BuildKit, docker-py's `images.build` and docker-compose v1 send): the context
//! tar as the body, the options in the query, docker's JSON message stream back
//! (`stream` lines, `aux` with the image ID, `errorDetail` on failure). And
//! `POST /build/prune`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::{ApiError, Body, Reply};
use futures::StreamExt as _;

use crate::build::{BuildEvent, BuildOptions};
use crate::Engine;

/// A JSON map in a query parameter (`buildargs`, `labels`).
fn json_map(params: &BTreeMap<String, String>, key: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    match params.get(key).filter(|v| !v.is_empty()) {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(Default::default()),
            _ => Err(ApiError::bad_request(format!("{key}: a JSON object is expected"))),
        },
        None => Ok(Default::default()),
    }
}

/// `X-Registry-Config`: base64 (URL-safe or standard) of a JSON map from registry to
/// login (`username`/`password`, or `auth` as base64 of `user:pass`), as the docker CLI
/// and docker-py send every login they hold. Its contents never reach a log.
fn registry_config(request: &Request<Incoming>) -> Result<BTreeMap<String, crate::registry::Credentials>, ApiError> {
    use base64::Engine as _;
    let Some(header) = request.headers().get("X-Registry-Config") else { return Ok(BTreeMap::new()) };
    let text = header.to_str().map_err(|_| ApiError::bad_request("X-Registry-Config: not text"))?.trim();
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    let padded = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(padded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(padded))
        .map_err(|_| ApiError::bad_request("X-Registry-Config: not base64"))?;
    let map: serde_json::Map<String, Value> = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => return Ok(BTreeMap::new()),
        _ => return Err(ApiError::bad_request("X-Registry-Config: a JSON object of logins is expected")),
    };
    let mut out = BTreeMap::new();
    for (key, login) in map {
        let (mut username, mut password) =
            (login["username"].as_str().unwrap_or_default().to_owned(), login["password"].as_str().unwrap_or_default().to_owned());
        if username.is_empty() {
            if let Some(auth) = login["auth"].as_str().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD.decode(auth).unwrap_or_default();
                if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                    (username, password) = (u.to_owned(), p.to_owned());
                }
            }
        }
        if !username.is_empty() {
            out.insert(key, crate::registry::Credentials { username, password });
        }
    }
    Ok(out)
}

pub async fn build(engine: &Engine, params: &BTreeMap<String, String>, request: Request<Incoming>) -> Reply {
    if let Some(platform) = params.get("platform").filter(|p| !p.is_empty()) {
        let host = crate::image::manifest::Platform::host();
        if !platform.contains(&host.architecture) {
            return Err(ApiError::bad_request(format!("this engine builds for linux/{} only, not {platform}", host.architecture)));
        }
    }
    let options = BuildOptions {
        dockerfile: params.get("dockerfile").cloned().unwrap_or_default(),
        tags: super::query_all(&request, "t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_map(params, "buildargs")?.into_iter().map(|(k, v)| (k, v.as_str().map(str::to_owned))).collect(),
        labels: json_map(params, "labels")?.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned())).collect(),
        target: params.get("target").cloned().unwrap_or_default(),
        no_cache: super::flag(params, "nocache"),
        pull: super::flag(params, "pull"),
        network_mode: params.get("networkmode").cloned().unwrap_or_default(),
        creds: None,
        registry_creds: registry_config(&request)?,
    };
    for tag in &options.tags {
        tag.parse::<crate::registry::Reference>().map_err(|e| ApiError::bad_request(format!("invalid tag {tag:?}: {e}")))?;
    }
    let quiet = super::flag(params, "q");
    let containers = engine.containers().clone();
    let body = request.into_body().into_data_stream().map(|r| r.map_err(std::io::Error::other));
    let workspace = crate::build::receive_context(&containers, body).await.map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    let line = |value: Value| Ok(Frame::data(Bytes::from(format!("{value}\r\n"))));
    tokio::spawn(async move {
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = erx.recv().await {
                let message = match event {
                    BuildEvent::Line(_) if quiet => continue,
                    BuildEvent::Line(text) => json!({"stream": text}),
                    BuildEvent::Built(id) => json!({"aux": {"ID": id}}),
                };
                if forward_tx.send(line(message)).await.is_err() {
                    return;
                }
            }
        });
        // A client that goes away (Ctrl-C) stops the build; its step's container goes.
        let result = tokio::select! {
            result = crate::build::build(&containers, &workspace, &options, &etx) => result,
            () = tx.closed() => {
                forward.abort();
                tracing::info!("build cancelled: its client went away");
                return;
            }
        };
        drop(etx);
        let _ = forward.await;
        match result {
            Ok(image) => {
                if quiet {
                    let _ = tx.send(line(json!({"stream": format!("{}\n", image.id)}))).await;
                }
            }
            Err(e) => {
                let message = crate::error_chain(&e);
                let mut detail = json!({"message": message});
                if let Some(code) = e.exit_code() {
                    detail["code"] = json!(code);
                }
                let _ = tx.send(line(json!({"errorDetail": detail, "error": message}))).await;
            }
        }
        // The answer ends before the workspace is removed.
        drop(tx);
        let _ = tokio::task::spawn_blocking(move || drop(workspace)).await;
    });
    let body: Body = BodyExt::boxed(StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)));
    Ok(Response::builder().header("Content-Type", "application/json").body(body).unwrap_or_else(|_| Response::new(super::full(""))))
}

/// `POST /build/prune`: the build cache's images, and the bytes freed.
pub fn prune(engine: &Engine) -> Reply {
    let pruned = crate::build::prune_cache(engine.images()).map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    super::ok_json(json!({"CachesDeleted": pruned.deleted, "SpaceReclaimed": pruned.reclaimed_bytes}))
}
