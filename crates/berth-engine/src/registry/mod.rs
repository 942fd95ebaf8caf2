//! The OCI distribution protocol, client side: manifests (with a size cap), blobs
//! streamed into the content store, and auth (anonymous or basic bearer-token flow from
//! `WWW-Authenticate`, or basic). Credentials never appear in an error or a log.

mod auth;
mod push;
mod reference;
pub mod search;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use berth_proto::ErrorKind;
use futures::StreamExt;

pub use auth::{Challenge, Credentials};
pub use push::{BlobPush, CHUNK};
pub use reference::{InvalidReference, Reference, DOCKER_HUB};

use crate::content::{ContentError, ContentStore, Digest};

/// Manifests bigger than this are refused (Docker uses 4 MiB as well).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry}: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{what} not found in {reference}")]
    NotFound { what: String, reference: String },
    #[error("access to {reference} denied: {detail}")]
    Denied { reference: String, detail: String },
    #[error("registry answered {status} for {what} of {reference}")]
    Status { status: u16, what: String, reference: String },
    /// 429: Docker Hub's pull rate limit (or any registry's), in docker's words, with the
    /// limit Docker Hub's headers give.
    #[error("toomanyrequests: {message}{limit}")]
    RateLimited { message: String, limit: String },
    #[error("manifest of {reference} is over the {limit} byte limit")]
    ManifestTooLarge { reference: String, limit: usize },
    #[error("manifest of {reference} does not match its digest {expected} (got {actual})")]
    ManifestDigest { reference: String, expected: Digest, actual: Digest },
    #[error("bad token answer from {realm}: {detail}")]
    Token { realm: String, detail: String },
    #[error(transparent)]
    Content(#[from] ContentError),
}

impl RegistryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Token { .. } => ErrorKind::Unavailable,
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            RegistryError::Denied { .. } => ErrorKind::InvalidArgument,
            RegistryError::Status { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            RegistryError::RateLimited { .. } => ErrorKind::Unavailable,
            RegistryError::Status { .. } => ErrorKind::Internal,
            RegistryError::ManifestTooLarge { .. } | RegistryError::ManifestDigest { .. } => ErrorKind::InvalidArgument,
            RegistryError::Content(e) => e.kind(),
        }
    }
}

/// A registry's answer that is not what was asked for: a pull rate limit (429; its
/// message from the registry's error body, at most 64 KiB of it read, and Docker Hub's
/// `ratelimit-limit` and `ratelimit-remaining` headers), else the bare status.
async fn refusal(response: reqwest::Response, what: &str, reference: &Reference) -> RegistryError {
    let status = response.status().as_u16();
    if status != 429 {
        return RegistryError::Status { status, what: what.to_owned(), reference: reference.to_string() };
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = rate_limit_note(header("ratelimit-limit").as_deref(), header("ratelimit-remaining").as_deref());
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            body.clear();
            break;
        }
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{} refused {what} of {reference}: too many requests", reference.registry));
    RegistryError::RateLimited { message, limit }
}

/// Docker Hub's `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 0;w=21600`, as
/// " (pull limit: 100 per 6 hours, 0 left)"; empty without them.
fn rate_limit_note(limit: Option<&str>, remaining: Option<&str>) -> String {
    let parse = |v: &str| -> Option<(u64, Option<u64>)> {
        let mut parts = v.split(';');
        let count = parts.next()?.trim().parse().ok()?;
        let window = parts.find_map(|p| p.trim().strip_prefix("w=")?.parse().ok());
        Some((count, window))
    };
    let Some((count, window)) = limit.and_then(parse) else { return String::new() };
    let per = match window {
        Some(w) if w % 3600 == 0 => format!(" per {} hour{}", w / 3600, if w == 3600 { "" } else { "s" }),
        Some(w) => format!(" per {w} s"),
        None => String::new(),
    };
    let left = remaining.and_then(parse).map(|(n, _)| format!(", {n} left")).unwrap_or_default();
    format!(" (pull limit: {count}{per}{left})")
}

/// The engine's config file is not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("invalid engine config {path}: {detail}")]
pub struct ConfigError {
    pub path: std::path::PathBuf,
    pub detail: String,
}

/// Where registries are and how to talk to them.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `host:port` of registries spoken to over plain http (loopback ones always are).
    pub insecure: Vec<String>,
    /// Credentials per registry host.
    pub credentials: HashMap<String, Credentials>,
    /// Where "127.0.0.1" / "localhost" registries really are. In the VM the user's
    /// loopback is the host's, reached at QEMU's host address
    /// (`BERTH_LOOPBACK_REGISTRY_HOST`); natively it is this machine's own.
    pub loopback_host: Option<String>,
    /// `registry-mirrors` from daemon.json: reported in /info; pulls do not use them yet.
    pub mirrors: Vec<String>,
}

impl RegistryConfig {
    /// From `BERTH_INSECURE_REGISTRIES=host:port,...` and the engine's config file
    /// (`insecure-registries` in `daemon.json` under the engine's root, as dockerd has it).
    pub fn load(config_file: &std::path::Path) -> Result<RegistryConfig, ConfigError> {
        let mut insecure: Vec<String> =
            std::env::var("BERTH_INSECURE_REGISTRIES").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let mut mirrors = Vec::new();
        match std::fs::read(config_file) {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| ConfigError { path: config_file.to_owned(), detail: e.to_string() })?;
                if let Some(list) = v.get("registry-mirrors").and_then(|m| m.as_array()) {
                    mirrors = list.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
                }
                match v.get("insecure-registries") {
                    None => {}
                    Some(serde_json::Value::Array(list)) => {
                        for item in list {
                            let host = item.as_str().ok_or_else(|| ConfigError {
                                path: config_file.to_owned(),
                                detail: "insecure-registries must be a list of host:port strings".into(),
                            })?;
                            insecure.push(host.to_owned());
                        }
                    }
                    Some(_) => {
                        return Err(ConfigError { path: config_file.to_owned(), detail: "insecure-registries must be a list of host:port strings".into() })
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(ConfigError { path: config_file.to_owned(), detail: err.to_string() }),
        }
        let loopback_host = std::env::var("BERTH_LOOPBACK_REGISTRY_HOST").ok().filter(|h| !h.is_empty());
        Ok(RegistryConfig { insecure, credentials: HashMap::new(), loopback_host, mirrors })
    }

    /// The host to connect to for a registry name: loopback names go to `loopback_host`.
    fn connect_host(&self, host: &str) -> String {
        let (bare, port) = match host.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || host.starts_with('[') => (h, Some(p)),
            _ => (host, None),
        };
        let loopback = bare == "localhost" || bare.starts_with("127.");
        match (&self.loopback_host, loopback) {
            (Some(alias), true) => match port {
                Some(p) => format!("{alias}:{p}"),
                None => alias.clone(),
            },
            _ => host.to_owned(),
        }
    }

    fn scheme(&self, host: &str) -> &'static str {
        let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let loopback = bare == "localhost" || bare.starts_with("127.") || bare == "[::1]";
        if loopback || self.insecure.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        }
    }
}

/// A manifest as fetched: bytes, digest and media type.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// A client for OCI registries.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    /// Bearer tokens by (registry, scope, user).
    tokens: Mutex<HashMap<(String, String, String), String>>,
    /// Registries known to want basic auth.
    basic: Mutex<std::collections::HashSet<String>>,
}

/// One request, as [`RegistryClient::send`] makes it.
#[derive(Debug)]
struct Call<'a> {
    method: reqwest::Method,
    reference: &'a Reference,
    url: &'a str,
    accept: Option<&'a str>,
    body: Option<bytes::Bytes>,
    content_type: Option<&'a str>,
    creds: Option<&'a Credentials>,
    push: bool,
    /// `Content-Range` of a chunk (chunked uploads).
    content_range: Option<String>,
}

/// How long a registry may go without sending a byte before its request fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a token server's answer may hold (tokens are a few KiB).
const MAX_TOKEN_BYTES: usize = 1 << 20;

/// The `host[:port]` of a realm URL.
fn realm_host(realm: &str) -> Option<&str> {
    let rest = realm.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(authority.rsplit_once('@').map_or(authority, |(_, host)| host))
}

/// `host[:port]` without the port (`[::1]:5000` is `[::1]`).
fn host_only(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

impl RegistryClient {
    /// What the client was configured with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    pub fn new(config: RegistryConfig) -> RegistryClient {
        RegistryClient::with_read_timeout(config, READ_TIMEOUT)
    }

    /// `new` with another idle-read timeout (the tests use a short one).
    pub fn with_read_timeout(config: RegistryConfig, read_timeout: Duration) -> RegistryClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // Per read, not per request: a layer may take long, a registry that stops
            // sending may not hang a pull for ever.
            .read_timeout(read_timeout)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        RegistryClient { http, config, tokens: Mutex::new(HashMap::new()), basic: Mutex::default() }
    }

    fn url(&self, reference: &Reference, tail: &str) -> String {
        let host = reference.api_host();
        format!("{}://{}/v2/{}/{tail}", self.config.scheme(host), self.config.connect_host(host), reference.repository)
    }

    /// GET with auth (see [`RegistryClient::send`]).
    async fn get(&self, reference: &Reference, url: &str, accept: Option<&str>, creds: Option<&Credentials>) -> Result<reqwest::Response, RegistryError> {
        self.send(Call { method: reqwest::Method::GET, reference, url, accept, body: None, content_type: None, creds, push: false, content_range: None }).await
    }

    /// One request with auth: on a 401 the challenge is answered once (a bearer token
    /// for the repository's pull, or pull+push, scope; or basic credentials) and the
    /// request is sent again. `creds` are this call's; without them the configured ones.
    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, RegistryError> {
        let Call { method, reference, url, accept, body, content_type, creds, push, content_range } = call;
        let actions = if push { "pull,push" } else { "pull" };
        let scope = format!("repository:{}:{actions}", reference.repository);
        let creds = creds.or_else(|| self.config.credentials.get(&reference.registry));
        let user = creds.map(|c| c.username.clone()).unwrap_or_default();
        let key = (reference.registry.clone(), scope.clone(), user);
        let mut retried = false;
        loop {
            let mut request = self.http.request(method.clone(), url);
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            if let Some(content_type) = content_type {
                request = request.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            if let Some(range) = &content_range {
                request = request.header(reqwest::header::CONTENT_RANGE, range);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let token = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
            let basic = self.basic.lock().unwrap_or_else(|p| p.into_inner()).contains(&reference.registry);
            request = match (&token, creds) {
                (Some(token), _) => request.bearer_auth(token),
                (None, Some(c)) if retried || basic => request.basic_auth(&c.username, Some(&c.password)),
                _ => request,
            };
            let response = request
                .send()
                .await
                .map_err(|e| RegistryError::Unreachable { registry: reference.registry.clone(), detail: auth::without_secrets(&e.to_string()) })?;
            if response.status() != reqwest::StatusCode::UNAUTHORIZED || retried {
                return Ok(response);
            }
            retried = true;
            let challenge = response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).and_then(Challenge::parse);
            match challenge {
                Some(Challenge::Bearer { realm, service, scope: asked }) => {
                    // The registry's own scope list, when it gives one (a cross-repository
                    // mount needs pull on the source too); else the one this call needs.
                    let wanted = asked.unwrap_or_else(|| scope.clone());
                    let token = self.fetch_token(reference, &realm, service.as_deref(), &wanted, creds).await?;
                    self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), token);
                }
                Some(Challenge::Basic) if creds.is_some() => {
                    // Send basic credentials up front from now on: one round trip, not two.
                    self.basic.lock().unwrap_or_else(|p| p.into_inner()).insert(reference.registry.clone());
                }
                _ => {
                    return Err(RegistryError::Denied {
                        reference: reference.to_string(),
                        detail: if creds.is_some() { "credentials refused".into() } else { "authentication required (berth login)".into() },
                    })
                }
            }
        }
    }

    async fn fetch_token(
        &self,
        reference: &Reference,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        // A token server on the user's loopback is reached like a loopback registry.
        let realm_url = match realm.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                format!("{scheme}://{}/{path}", self.config.connect_host(host))
            }
            None => realm.to_owned(),
        };
        let Ok(parsed) = reqwest::Url::parse(&realm_url) else {
            return Err(RegistryError::Token { realm: realm.to_owned(), detail: "the token realm is not a URL".into() });
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RegistryError::Token { realm: realm.to_owned(), detail: "the token realm must be an http(s) URL".into() });
        }
        // The user's password goes to the token server over TLS, or to the registry's
        // own host; a registry cannot send it in clear text to a host of its choosing.
        let same_host = realm_host(realm).is_some_and(|h| host_only(h).eq_ignore_ascii_case(host_only(reference.api_host())));
        let creds = match creds {
            Some(_) if parsed.scheme() != "https" && !same_host => {
                tracing::warn!(%realm, registry = %reference.registry, "not sending credentials to a plain-http token server on another host");
                None
            }
            other => other,
        };
        let mut request = self.http.get(&realm_url);
        for one in scope.split(' ').filter(|s| !s.is_empty()) {
            request = request.query(&[("scope", one)]);
        }
        if let Some(service) = service {
            request = request.query(&[("service", service)]);
        }
        if let Some(c) = creds {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let token_err = |detail: String| RegistryError::Token { realm: realm.to_owned(), detail: auth::without_secrets(&detail) };
        let response = request.send().await.map_err(|e| token_err(e.to_string()))?;
        if matches!(response.status().as_u16(), 401 | 403) {
            return Err(RegistryError::Denied {
                reference: reference.to_string(),
                detail: if creds.is_some() { "credentials refused".into() } else { "authentication required (berth login)".into() },
            });
        }
        if !response.status().is_success() {
            return Err(token_err(format!("status {}", response.status().as_u16())));
        }
        if response.content_length().is_some_and(|n| n > MAX_TOKEN_BYTES as u64) {
            return Err(token_err(format!("the answer is larger than {} KiB", MAX_TOKEN_BYTES >> 10)));
        }
        let mut response = response;
        let mut raw = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| token_err(e.to_string()))? {
            if raw.len() + chunk.len() > MAX_TOKEN_BYTES {
                return Err(token_err(format!("the answer is larger than {} KiB", MAX_TOKEN_BYTES >> 10)));
            }
            raw.extend_from_slice(&chunk);
        }
        let body: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| token_err(e.to_string()))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| token_err("no token in the answer".into()))
    }

    /// Fetches a manifest (or index) by the reference's tag or digest, reading at most
    /// [`MAX_MANIFEST_BYTES`], and checks it against the digest it was asked by.
    pub async fn manifest(&self, reference: &Reference, creds: Option<&Credentials>) -> Result<Fetched, RegistryError> {
        let url = self.url(reference, &format!("manifests/{}", reference.lookup()));
        let response = self.get(reference, &url, Some(ACCEPT_MANIFESTS), creds).await?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(RegistryError::NotFound { what: format!("manifest {}", reference.lookup()), reference: reference.name() });
        }
        if status != 200 {
            return Err(refusal(response, "manifest", reference).await);
        }
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned())
            .unwrap_or_default();
        let too_large = || RegistryError::ManifestTooLarge { reference: reference.to_string(), limit: MAX_MANIFEST_BYTES };
        if response.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Unreachable { registry: reference.registry.clone(), detail: e.to_string() })?;
            if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = &reference.digest {
            if expected != &digest {
                return Err(RegistryError::ManifestDigest { reference: reference.to_string(), expected: expected.clone(), actual: digest });
            }
        }
        // Some registries send no or a generic content type: the document says what it is.
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or(media_type)
        } else {
            media_type
        };
        Ok(Fetched { media_type, digest, bytes })
    }

    /// GET of a blob, answered 200 (a 404 is NotFound, another status the registry's
    /// refusal).
    async fn blob_response(&self, reference: &Reference, digest: &Digest, creds: Option<&Credentials>) -> Result<reqwest::Response, RegistryError> {
        let url = self.url(reference, &format!("blobs/{digest}"));
        let response = self.get(reference, &url, None, creds).await?;
        match response.status().as_u16() {
            200 => Ok(response),
            404 => Err(RegistryError::NotFound { what: format!("blob {digest}"), reference: reference.name() }),
            _ => Err(refusal(response, &format!("blob {digest}"), reference).await),
        }
    }

    /// A small blob's bytes (a signature's payload), at most `limit` of them, checked
    /// against its digest; nothing is stored.
    pub async fn blob_bytes(&self, reference: &Reference, digest: &Digest, limit: u64, creds: Option<&Credentials>) -> Result<Vec<u8>, RegistryError> {
        let response = self.blob_response(reference, digest, creds).await?;
        let too_large = || RegistryError::Status { status: 200, what: format!("blob {digest} (over {limit} bytes)"), reference: reference.to_string() };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Unreachable { registry: reference.registry.clone(), detail: e.to_string() })?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::Content(ContentError::DigestMismatch { expected: digest.clone(), actual }));
        }
        Ok(bytes)
    }

    /// Streams a blob into the store, verifying digest and size; `progress` hears the
    /// bytes done so far. A blob already in the store is not fetched again.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        store: &ContentStore,
        creds: Option<&Credentials>,
        mut progress: impl FnMut(u64),
    ) -> Result<(), RegistryError> {
        if store.contains(digest) {
            progress(size);
            return Ok(());
        }
        let response = self.blob_response(reference, digest, creds).await?;
        let mut writer = store.writer(digest.clone(), Some(size)).await?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Unreachable { registry: reference.registry.clone(), detail: e.to_string() })?;
            writer.write(&chunk).await?;
            progress(writer.written());
        }
        writer.commit().await?;
        Ok(())
    }
}

impl RegistryClient {
    /// Checks credentials the way `docker login` does: the API root, answering its
    /// challenge with them.
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let registry = if registry.is_empty() { DOCKER_HUB } else { registry };
        // Any repository of that registry: only the host and the credentials matter here.
        let reference: Reference = format!("{registry}/berth/login-check:latest")
            .parse()
            .map_err(|_| RegistryError::Unreachable { registry: registry.to_owned(), detail: "not a registry address".into() })?;
        let host = reference.api_host();
        let url = format!("{}://{}/v2/", self.config.scheme(host), self.config.connect_host(host));
        let response = self.get(&reference, &url, None, Some(creds)).await?;
        match response.status().as_u16() {
            200 => Ok(()),
            401 | 403 => Err(RegistryError::Denied { reference: registry.to_owned(), detail: "credentials refused".into() }),
            status => Err(RegistryError::Status { status, what: "login".into(), reference: registry.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_hubs_rate_limit_headers_are_read() {
        assert_eq!(super::rate_limit_note(Some("100;w=21600"), Some("0;w=21600")), " (pull limit: 100 per 6 hours, 0 left)");
        assert_eq!(super::rate_limit_note(Some("200;w=3600"), None), " (pull limit: 200 per 1 hour)");
        assert_eq!(super::rate_limit_note(Some("5;w=90"), Some("2")), " (pull limit: 5 per 90 s, 2 left)");
        assert_eq!(super::rate_limit_note(Some("many"), Some("0")), "");
        assert_eq!(super::rate_limit_note(None, Some("0;w=21600")), "");
    }

    use super::*;

    /// A hostile server on loopback: answers each request with `answer(head)` and keeps
    /// every request head it was sent.
    fn hostile(addr: &str, answer: fn(&str) -> Option<Vec<u8>>) -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind(addr).expect("bind");
        let at = listener.local_addr().expect("addr").to_string();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
                    let mut writer = stream;
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let end = line == "\r\n";
                            head.push_str(&line);
                            if end {
                                break;
                            }
                        }
                        log.lock().unwrap_or_else(|p| p.into_inner()).push(head.to_ascii_lowercase());
                        match answer(&head) {
                            Some(bytes) => {
                                if writer.write_all(&bytes).is_err() {
                                    return;
                                }
                            }
                            // Stalls: the connection stays open, silent.
                            None => std::thread::sleep(Duration::from_secs(30)),
                        }
                    }
                });
            }
        });
        (at, seen)
    }

    fn challenge(realm_port: u16, realm_host: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm_host}:{realm_port}/token\",service=\"test\"\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn token(_: &str) -> Option<Vec<u8>> {
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"token\":\"abc\"}".to_vec())
    }

    fn creds() -> Credentials {
        Credentials { username: "me".into(), password: "hunter2".into() }
    }

    /// A registry names a plain-http token server on another host: the password does
    /// not go there. On the registry's own host (any port) it does.
    #[tokio::test]
    async fn credentials_never_go_in_clear_text_to_another_host() {
        let (token_at, token_seen) = hostile("127.0.0.2:0", token);
        let port: u16 = token_at.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port");
        static PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        PORT.store(port, std::sync::atomic::Ordering::SeqCst);
        let (registry_at, _) = hostile("127.0.0.1:0", |_| Some(challenge(PORT.load(std::sync::atomic::Ordering::SeqCst), "127.0.0.2")));
        let client = RegistryClient::new(RegistryConfig::default());
        let reference: Reference = format!("{registry_at}/app:1").parse().expect("reference");
        let _ = client.manifest(&reference, Some(&creds())).await;
        let heads = token_seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(!heads.is_empty(), "the token server was not asked");
        assert!(heads.iter().all(|h| !h.contains("authorization:")), "credentials went to another host in clear text: {heads:?}");

        // The registry's own host (loopback registries speak plain http) gets them.
        let (same_at, same_seen) = hostile("127.0.0.1:0", token);
        let same_port: u16 = same_at.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port");
        static SAME: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        SAME.store(same_port, std::sync::atomic::Ordering::SeqCst);
        let (registry_at, _) = hostile("127.0.0.1:0", |_| Some(challenge(SAME.load(std::sync::atomic::Ordering::SeqCst), "127.0.0.1")));
        let reference: Reference = format!("127.0.0.1:{}/app:1", registry_at.rsplit_once(':').expect("port").1).parse().expect("reference");
        let _ = client.manifest(&reference, Some(&creds())).await;
        let heads = same_seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(heads.iter().any(|h| h.contains("authorization: basic")), "{heads:?}");
    }

    /// A token server that answers without end is cut off at 1 MiB.
    #[tokio::test]
    async fn a_huge_token_answer_is_refused() {
        fn flood(_: &str) -> Option<Vec<u8>> {
            let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..40 {
                answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                answer.extend_from_slice(&chunk);
                answer.extend_from_slice(b"\r\n");
            }
            answer.extend_from_slice(b"0\r\n\r\n");
            Some(answer)
        }
        let (token_at, _) = hostile("127.0.0.1:0", flood);
        static PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        PORT.store(token_at.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port"), std::sync::atomic::Ordering::SeqCst);
        let (registry_at, _) = hostile("127.0.0.1:0", |_| Some(challenge(PORT.load(std::sync::atomic::Ordering::SeqCst), "127.0.0.1")));
        let client = RegistryClient::new(RegistryConfig::default());
        let reference: Reference = format!("{registry_at}/app:1").parse().expect("reference");
        let err = client.manifest(&reference, None).await.expect_err("refused");
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");
    }

    /// A registry that stops answering fails the request at the read timeout.
    #[tokio::test]
    async fn a_silent_registry_times_out() {
        let (registry_at, _) = hostile("127.0.0.1:0", |_| None);
        let client = RegistryClient::with_read_timeout(RegistryConfig::default(), Duration::from_millis(300));
        let reference: Reference = format!("{registry_at}/app:1").parse().expect("reference");
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(20), client.manifest(&reference, None)).await;
        assert!(matches!(outcome, Ok(Err(_))), "no error from a silent registry after {:?}", started.elapsed());
    }

    #[test]
    fn hosts_compare_without_ports() {
        assert_eq!(host_only("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_only("[::1]:5000"), "[::1]");
        assert_eq!(host_only("reg.lan"), "reg.lan");
        assert_eq!(realm_host("http://u:p@auth.lan:5001/token?x=1"), Some("auth.lan:5001"));
    }

    #[test]
    fn loopback_and_listed_registries_are_plain_http() {
        let config = RegistryConfig { insecure: vec!["reg.lan:5000".into()], ..RegistryConfig::default() };
        assert_eq!(config.scheme("127.0.0.1:5000"), "http");
        assert_eq!(config.scheme("localhost:5000"), "http");
        assert_eq!(config.scheme("reg.lan:5000"), "http");
        assert_eq!(config.scheme("registry-1.docker.io"), "https");
        assert_eq!(config.connect_host("127.0.0.1:5000"), "127.0.0.1:5000");
        let vm = RegistryConfig { loopback_host: Some("10.0.2.2".into()), ..RegistryConfig::default() };
        assert_eq!(vm.connect_host("127.0.0.1:5000"), "10.0.2.2:5000");
        assert_eq!(vm.connect_host("localhost"), "10.0.2.2");
        assert_eq!(vm.connect_host("reg.example:443"), "reg.example:443");
    }

    #[test]
    fn insecure_registries_from_the_config_file() {
        let dir = std::env::temp_dir().join(format!("berth-daemon-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("daemon.json");
        assert!(RegistryConfig::load(&file).expect("no file is fine").insecure.iter().all(|h| h != "reg.lan:5000"));
        std::fs::write(&file, r#"{"insecure-registries": ["reg.lan:5000"]}"#).expect("write");
        let config = RegistryConfig::load(&file).expect("load");
        assert_eq!(config.scheme("reg.lan:5000"), "http");
        std::fs::write(&file, r#"{"insecure-registries": "reg.lan"}"#).expect("write");
        let err = RegistryConfig::load(&file).expect_err("bad type");
        assert!(err.to_string().contains("must be a list"), "{err}");
        std::fs::write(&file, b"{not json").expect("write");
        assert!(RegistryConfig::load(&file).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
