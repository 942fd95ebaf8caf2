//! `POST /commit` (`docker commit`): one call to `Containers::commit`.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{json_reply, ApiError, Reply};
use crate::container::CommitOptions;
use crate::Engine;

pub async fn commit(engine: &Engine, params: &BTreeMap<String, String>, request: Request<Incoming>) -> Reply {
    let key = params.get("container").filter(|c| !c.is_empty()).ok_or_else(|| ApiError::bad_request("container is required"))?.clone();
    let changes = super::query_all(&request, "changes");
    let reference = match (params.get("repo").filter(|r| !r.is_empty()), params.get("tag").filter(|t| !t.is_empty())) {
        (Some(repo), Some(tag)) => format!("{repo}:{tag}"),
        (Some(repo), None) => repo.clone(),
        (None, Some(_)) => return Err(ApiError::bad_request("a tag needs a repository")),
        (None, None) => String::new(),
    };
    // The body: a config (the SDKs' `conf`) set over the container's.
    let config = match super::containers::json_body(request).await? {
        Value::Object(config) => config,
        _ => Default::default(),
    };
    let options = CommitOptions {
        reference,
        author: params.get("author").cloned().unwrap_or_default(),
        comment: params.get("comment").cloned().unwrap_or_default(),
        changes,
        config,
        pause: params.get("pause").is_none_or(|p| p != "0" && p != "false"),
    };
    let image = engine.containers().commit(&key, options).await?;
    json_reply(StatusCode::CREATED, &json!({"Id": image.id.to_string()}))
}
