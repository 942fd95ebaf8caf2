//! `GET /events`: the engine's event bus in docker's JSON shape, with `since` and
//! `until` (unix seconds, fractions allowed, or RFC 3339) and docker's filters
//! (type, event, container, image, label, network, volume).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use serde_json::{json, Value};

use super::{filters, full, ApiError, Body, Reply};
use crate::{Engine, EventRecord};

/// docker's JSON for one event.
fn to_docker(e: &EventRecord) -> Value {
    let id = e.attributes.get("id").cloned().unwrap_or_default();
    let mut attributes = e.attributes.clone();
    attributes.remove("id");
    let mut value = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": id, "Attributes": attributes},
        "scope": "local",
        "time": e.time_unix_nanos / 1_000_000_000,
        "timeNano": e.time_unix_nanos,
    });
    if e.kind == "container" {
        value["status"] = json!(e.action);
        value["id"] = json!(id);
        value["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    value
}

fn matches(e: &EventRecord, filters: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        filters.iter().filter(|(k, _)| k == key).any(|(_, v)| {
            let attr = |name: &str| e.attributes.get(name).map(String::as_str).unwrap_or("");
            match key {
                "type" => e.kind == *v,
                "event" => e.action == *v || e.action.starts_with(&format!("{v}:")),
                "container" => e.kind == "container" && (attr("id").starts_with(v.as_str()) || attr("name") == v),
                "image" => attr("image") == v || (e.kind == "image" && (attr("name") == v || attr("id") == v)),
                "network" => e.kind == "network" && (attr("name") == v || attr("id").starts_with(v.as_str())),
                "volume" => e.kind == "volume" && (attr("id") == v || attr("name") == v),
                "label" => match v.split_once('=') {
                    Some((k, val)) => attr(k) == val,
                    None => e.attributes.contains_key(v.as_str()),
                },
                _ => false,
            }
        })
    })
}

/// Unix seconds (with a fraction) or RFC 3339, as nanoseconds.
pub(super) fn time_param(params: &BTreeMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = params.get(key).filter(|t| !t.is_empty()) else { return Ok(None) };
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if !nanos.is_finite() || nanos.abs() >= i64::MAX as f64 {
            return Err(ApiError::bad_request(format!("invalid {key} {text:?}: out of range")));
        }
        return Ok(Some(nanos as i64));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid {key} {text:?}")))
}

pub fn events(engine: &Engine, params: &BTreeMap<String, String>) -> Reply {
    let wanted = filters(params)?;
    let since = time_param(params, "since")?;
    let until = time_param(params, "until")?;
    let (backlog, mut live) = engine.events().subscribe(since.is_some());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(64);
    let frame = |e: &EventRecord| Ok(hyper::body::Frame::data(Bytes::from(format!("{}\n", to_docker(e)))));
    tokio::spawn(async move {
        let in_range = |e: &EventRecord| since.is_none_or(|s| e.time_unix_nanos >= s) && until.is_none_or(|u| e.time_unix_nanos <= u);
        for e in backlog.iter().filter(|e| in_range(e) && matches(e, &wanted)) {
            if tx.send(frame(e)).await.is_err() {
                return;
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let deadline = until.map(|u| tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, live.recv()).await {
                    Ok(next) => next,
                    Err(_) => return,
                },
                None => live.recv().await,
            };
            match next {
                Ok(e) if in_range(&e) && matches(&e, &wanted) => {
                    if tx.send(frame(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let body: Body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    Ok(Response::builder().header("Content-Type", "application/json").body(body).unwrap_or_else(|_| Response::new(full(""))))
}
