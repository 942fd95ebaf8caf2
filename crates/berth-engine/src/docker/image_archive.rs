//! The image endpoints that move whole images or report on them: `load`, `get` (save),
//! import (`/images/create?fromSrc=-`), push, history and prune. Archives pass through
//! a scratch file in the engine's `tmp/`, removed whatever the outcome.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::files::{body_to_file, file_reply, Scratch};
use super::{full, ok_json, ApiError, Reply};
use crate::Engine;

/// JSON lines, as docker streams progress (`{"stream": ...}`).
fn lines_reply(lines: &[Value]) -> Reply {
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    Ok(Response::builder().header("Content-Type", "application/json").body(full(text)).unwrap_or_else(|_| Response::new(full(""))))
}

/// `POST /images/load`: a docker or OCI archive in the body.
pub async fn load(engine: &Engine, request: Request<Incoming>) -> Reply {
    let images = engine.images();
    let scratch = Scratch(images.scratch_file("load"));
    body_to_file(request, &scratch.0).await?;
    let loaded = images.load(&scratch.0).await.map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let lines: Vec<Value> = loaded
        .iter()
        .map(|name| {
            let text = if name.starts_with("sha256:") { format!("Loaded image ID: {name}\n") } else { format!("Loaded image: {}\n", super::familiar(name)) };
            json!({"stream": text})
        })
        .collect();
    lines_reply(&lines)
}

/// `GET /images/get?names=...` and `GET /images/{name}/get`: the images as one tar.
pub async fn get(engine: &Engine, names: Vec<String>) -> Reply {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    let images = engine.images_shared();
    let path = images.scratch_file("save");
    let scratch = Scratch(path.clone());
    let saver = images.clone();
    tokio::task::spawn_blocking(move || saver.save(&names, &path))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let file = std::fs::File::open(&scratch.0).map_err(|e| ApiError::internal(e.to_string()))?;
    // The file is unlinked when `scratch` drops; the open handle streams it.
    file_reply(file, "application/x-tar", None)
}

/// `POST /images/create?fromSrc=-`: a root filesystem tarball in the body.
pub async fn import(engine: &Engine, params: &BTreeMap<String, String>, request: Request<Incoming>) -> Reply {
    if params.get("fromSrc").map(String::as_str) != Some("-") {
        return Err(ApiError::bad_request("only fromSrc=- (the tarball in the request body) is supported"));
    }
    let name = match (params.get("repo").filter(|r| !r.is_empty()), params.get("tag").filter(|t| !t.is_empty())) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.clone()),
        _ => None,
    };
    // `changes` comes once per `--change`: every one, not the last.
    let changes = super::query_all(&request, "changes");
    let message = params.get("message").cloned().unwrap_or_default();
    let images = engine.images();
    let scratch = Scratch(images.scratch_file("import"));
    body_to_file(request, &scratch.0).await?;
    let record =
        images.import_with(&scratch.0, name.as_deref(), &changes, &message).await.map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    lines_reply(&[json!({"status": record.id.to_string()})])
}

/// `POST /images/{name}/push`: docker's JSON progress lines, an error as the last line.
pub async fn push(engine: &Engine, name: &str, params: &BTreeMap<String, String>, request: &Request<Incoming>) -> Reply {
    let reference = match params.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name.to_owned(),
    };
    let creds = super::objects::registry_auth(request);
    let pushed = engine.images().push(&reference, creds.as_ref()).await;
    match pushed {
        Ok(p) => {
            // A colon after the last slash starts the tag (one before it is a port's).
            let (repository, tag) = match reference.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => (repository, tag),
                _ => (reference.as_str(), "latest"),
            };
            lines_reply(&[
                json!({"status": format!("The push refers to repository [{repository}]")}),
                json!({"status": format!("{tag}: digest: {} size: {}", p.manifest_digest, p.manifest_size)}),
                json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": p.manifest_digest.to_string(), "Size": p.manifest_size}}),
            ])
        }
        Err(e) => {
            let message = crate::error_chain(&e);
            lines_reply(&[json!({"errorDetail": {"message": message}, "error": message})])
        }
    }
}

/// `GET /images/{name}/history`.
pub async fn history(engine: &Engine, name: &str) -> Reply {
    let images = engine.images();
    let steps = images.history(name).await.map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let image = images.resolve(name).ok().flatten();
    let id = image.as_ref().map(|r| r.id.to_string()).unwrap_or_default();
    let tags: Vec<String> = image.map(|r| r.tags.iter().map(|t| super::familiar(t)).collect()).unwrap_or_default();
    let out: Vec<Value> = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "Id": if i == 0 { id.clone() } else { "<missing>".to_owned() },
                "Created": chrono::DateTime::parse_from_rfc3339(&s.created).map(|t| t.timestamp()).unwrap_or(0),
                "CreatedBy": s.created_by,
                "Tags": if i == 0 { tags.clone() } else { Vec::new() },
                "Size": s.size,
                "Comment": s.comment,
            })
        })
        .collect();
    ok_json(Value::Array(out))
}

/// `POST /images/prune`: `dangling=false` in the filters prunes every unused image;
/// `label=k[=v]` prunes only images with that label, `label!=k[=v]` only those without,
/// `until` only those created before a time (or a duration ago).
pub fn prune(engine: &Engine, params: &BTreeMap<String, String>) -> Reply {
    let mut pairs = super::filters(params)?;
    let all = pairs.iter().any(|(k, v)| k == "dangling" && matches!(v.as_str(), "false" | "0"));
    pairs.retain(|(k, _)| k != "dangling");
    let filter = crate::filters::prune_filter(&pairs).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let images = engine.images();
    let labels_of = |image: &crate::image::ImageRecord| -> BTreeMap<String, String> {
        std::fs::read(images.content.path(&image.id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["config"]["Labels"].as_object().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
            .collect()
    };
    let wanted = |image: &crate::image::ImageRecord| filter(&labels_of(image), &image.created);
    let pruned = images.prune_matching(all, &wanted).map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
    let deleted = super::objects::removal_json(&pruned.untagged, &pruned.deleted);
    ok_json(json!({"ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) }, "SpaceReclaimed": pruned.reclaimed_bytes}))
}
