//! The Docker Engine API, served by the engine itself (HTTP/1.1 on a unix socket), so
//! the `docker` CLI, docker-compose and the SDKs work against Berth unchanged.
//!
//! This file: version negotiation (`/_ping` GET and HEAD with docker's headers,
//! `/version`, `/v1.NN/` paths from 1.24 up to [`API_VERSION`], too old or too new
//! versions refused as dockerd refuses them), the router, `/info`, `/system/df`,
//! `/auth` and the lists (`/containers/json`, `/images/json`, `/networks`, `/volumes`)
//! with docker's filters. Errors are docker's `{"message": ...}` bodies with its status
//! codes. The endpoints of each kind of object live in the modules below.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::Engine;

mod build;
mod commit;
mod container_ops;
mod containers;
mod events;
mod exec;
mod files;
mod image_archive;
mod objects;

/// The newest API version served (what `API-Version` says; Docker 24's).
pub const API_VERSION: &str = "1.43";
/// The oldest API version a client may ask for.
pub const MIN_API_VERSION: &str = "1.24";

pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed()
}

/// The API on one engine.
#[derive(Debug, Clone)]
pub struct DockerApi {
    engine: Engine,
    header_timeout: std::time::Duration,
}

/// How long a connection may wait for a request's head (idle time included). dockerd
/// has 5 minutes for the head and none for idle; two minutes is long for a client
/// between requests, and clients reconnect.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl DockerApi {
    pub fn new(engine: Engine) -> Arc<DockerApi> {
        DockerApi::with_header_timeout(engine, HEADER_TIMEOUT)
    }

    /// `new` with another head timeout (the tests use a short one).
    pub fn with_header_timeout(engine: Engine, header_timeout: std::time::Duration) -> Arc<DockerApi> {
        Arc::new(DockerApi { engine, header_timeout })
    }

    /// Serves one client connection (a unix socket natively, vsock in the VM).
    pub fn serve_connection<S>(self: &Arc<Self>, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let api = self.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let handler = api.clone();
            let service = hyper::service::service_fn(move |request| {
                let api = handler.clone();
                async move { Ok::<_, Infallible>(api.handle(request).await) }
            });
            // A client gets HEADER_TIMEOUT to send a request's head, counted from when
            // the connection is idle: a stalled or idle client does not hold its
            // connection (and the engine's descriptor) for ever.
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(api.header_timeout)
                .serve_connection(io, service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!("docker API connection ended: {e}");
            }
        });
    }

    /// Serves one connection proxied from the host over vsock, whose input comes as
    /// `berth_proto::halfclose` frames: the end frame is the client's half-close.
    pub fn serve_framed_connection<S>(self: &Arc<Self>, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (engine_side, pump_side) = tokio::io::duplex(berth_proto::halfclose::MAX_FRAME);
        self.serve_connection(engine_side);
        tokio::spawn(async move {
            if let Err(e) = berth_proto::halfclose::guest_pipe(stream, pump_side).await {
                tracing::debug!("docker API connection over vsock ended: {e}");
            }
        });
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::UnixListener, api: Arc<DockerApi>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => api.serve_connection(stream),
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// After a failed accept: out of descriptors (EMFILE, ENFILE) or memory, the pending
/// connection stays queued and the next accept fails at once, so retrying at once
/// spins a core. Wait a moment for connections to close first.
pub async fn accept_failed(e: &std::io::Error) {
    tracing::warn!("accepting a connection failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// The engine process's thread count, from /proc/self/status.
/// docker's `RegistryConfig` in /info: the insecure registries and mirrors the engine
/// was given (loopback registries are always insecure, as in docker).
fn registry_config(config: &crate::registry::RegistryConfig) -> Value {
    let mut indexes = serde_json::Map::new();
    indexes.insert("docker.io".into(), json!({"Name": "docker.io", "Mirrors": config.mirrors, "Secure": true, "Official": true}));
    for host in &config.insecure {
        indexes.insert(host.clone(), json!({"Name": host, "Mirrors": [], "Secure": false, "Official": false}));
    }
    json!({"IndexConfigs": indexes, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": config.mirrors})
}

fn process_threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").and_then(|n| n.trim().parse().ok())))
        .unwrap_or(0)
}

/// Docker's familiar form of a name: `busybox:latest`, not
/// `docker.io/library/busybox:latest`.
pub fn familiar(name: &str) -> String {
    name.strip_prefix("docker.io/library/").or_else(|| name.strip_prefix("docker.io/")).unwrap_or(name).to_owned()
}

/// Shell-style matching (`*`, `?`) of a whole text, as docker's reference filter.
/// Neither wildcard crosses a `/`. One pass over the pattern, keeping the set of text
/// positions reached so far: time is pattern length times text length, never the
/// exponential backtracking a recursive matcher gives `a*a*a*a*…b`.
fn glob_match(pattern: &str, text: &str) -> bool {
    let text = text.as_bytes();
    let mut reached = vec![false; text.len() + 1];
    reached[0] = true;
    for &p in pattern.as_bytes() {
        let mut next = vec![false; text.len() + 1];
        match p {
            b'*' => {
                for i in 0..=text.len() {
                    // Zero characters, or one more non-slash after a position reached.
                    next[i] = reached[i] || (i > 0 && next[i - 1] && text[i - 1] != b'/');
                }
            }
            _ => {
                for i in 0..text.len() {
                    next[i + 1] = reached[i] && (if p == b'?' { text[i] != b'/' } else { text[i] == p });
                }
            }
        }
        reached = next;
        if !reached.contains(&true) {
            return false;
        }
    }
    reached[text.len()]
}

fn not_found() -> Reply {
    Err(ApiError::new(StatusCode::NOT_FOUND, "page not found"))
}

/// `1.43` -> (1, 43).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A docker error: status and `{"message": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status docker gives an error of this kind.
    fn from_kind(kind: berth_proto::ErrorKind, message: String) -> ApiError {
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, message)
    }
}

type Reply = Result<Response<Body>, ApiError>;

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    Ok(Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(full(format!("{value}\n")))
        .unwrap_or_else(|_| Response::new(full(""))))
}

fn ok_json(value: Value) -> Reply {
    json_reply(StatusCode::OK, &value)
}

/// The query string's parameters.
/// Every value of a query parameter given more than once (`query` keeps one).
fn query_all(request: &Request<Incoming>, key: &str) -> Vec<String> {
    request
        .uri()
        .query()
        .map(|q| q.split('&').filter_map(|p| p.split_once('=')).filter(|(k, _)| percent_decode(k) == key).map(|(_, v)| percent_decode(v)).collect())
        .unwrap_or_default()
}

fn query(request: &Request<Incoming>) -> BTreeMap<String, String> {
    request.uri().query().map(parse_query).unwrap_or_default()
}

/// A query string's parameters, decoded (the last of a repeated key wins).
fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The fuzz target for the API's request path without an engine: the first line is
/// a query string, the rest a JSON body. Query decoding, `filters`, flags, times,
/// the reference glob, and a container create's body must answer without panicking.
#[doc(hidden)]
pub fn fuzz_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query_text, body) = text.split_once('\n').unwrap_or((&text, ""));
    let params = parse_query(query_text);
    let _ = flag(&params, "all");
    if let Ok(pairs) = filters(&params) {
        for (key, value) in &pairs {
            if key == "reference" {
                let _ = glob_match(value, "docker.io/library/busybox:latest");
            }
        }
    }
    for key in ["since", "until"] {
        if let Some(value) = params.get(key) {
            let _ = crate::container::logs::parse_time(value, 1_700_000_000_000_000_000);
            let _ = events::time_param(&params, key);
        }
    }
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        let _ = containers::create_request("fuzz", &value);
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // By bytes: a `%` before a multibyte character must not split it (that panicked).
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// docker's boolean query values: `1`, `true`, `True`.
fn flag(params: &BTreeMap<String, String>, key: &str) -> bool {
    params.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

/// The `filters` parameter (`{"label": ["a=b"], "status": {"running": true}}`, both
/// forms docker accepts) as `key=value` pairs.
fn filters(params: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = params.get("filters").filter(|f| !f.is_empty()) else { return Ok(Vec::new()) };
    let value: Value = serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let mut pairs = Vec::new();
    for (key, values) in value.as_object().into_iter().flatten() {
        match values {
            Value::Array(list) => pairs.extend(list.iter().filter_map(Value::as_str).map(|v| (key.clone(), v.to_owned()))),
            Value::Object(map) => pairs.extend(map.iter().filter(|(_, on)| on.as_bool() == Some(true)).map(|(v, _)| (key.clone(), v.clone()))),
            _ => return Err(ApiError::bad_request(format!("invalid filter {key:?}"))),
        }
    }
    Ok(pairs)
}

impl DockerApi {
    /// One request, with docker's headers on every answer.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let head = request.method() == Method::HEAD;
        let mut response = match self.route(request).await {
            Ok(response) => response,
            Err(e) => {
                let body = json!({ "message": e.message });
                json_reply(e.status, &body).unwrap_or_else(|_| Response::new(full("")))
            }
        };
        let headers = response.headers_mut();
        headers.insert("Api-Version", hyper::header::HeaderValue::from_static(API_VERSION));
        headers.insert("Docker-Experimental", hyper::header::HeaderValue::from_static("false"));
        headers.insert("Ostype", hyper::header::HeaderValue::from_static("linux"));
        if let Ok(server) = hyper::header::HeaderValue::from_str(&format!("Berth/{} (linux)", crate::system::ENGINE_VERSION)) {
            headers.insert("Server", server);
        }
        if head {
            *response.body_mut() = full("");
        }
        response
    }

    async fn route(&self, request: Request<Incoming>) -> Reply {
        let path = request.uri().path().to_owned();
        let (version, rest) = match path.strip_prefix("/v").and_then(|p| p.split_once('/')) {
            Some((v, rest)) if parse_version(v).is_some() => (Some(v.to_owned()), format!("/{rest}")),
            _ => (None, path.clone()),
        };
        if let Some(v) = &version {
            let asked = parse_version(v).unwrap_or((0, 0));
            if asked > parse_version(API_VERSION).unwrap_or((0, 0)) {
                return Err(ApiError::bad_request(format!("client version {v} is too new. Maximum supported API version is {API_VERSION}")));
            }
            if asked < parse_version(MIN_API_VERSION).unwrap_or((0, 0)) {
                return Err(ApiError::bad_request(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                )));
            }
        }
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let params = query(&request);
        let method = request.method().clone();
        match (&method, segments.as_slice()) {
            (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(Response::builder()
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Cache-Control", "no-cache, no-store, must-revalidate")
                .header("Pragma", "no-cache")
                .header("Builder-Version", "1")
                .body(full("OK"))
                .unwrap_or_else(|_| Response::new(full("OK")))),
            (&Method::GET, ["version"]) => ok_json(self.version()),
            (&Method::GET, ["info"]) => ok_json(self.info()),
            (&Method::GET, ["system", "df"]) => self.disk_usage(),
            (&Method::POST, ["build", "prune"]) => build::prune(&self.engine),
            (&Method::POST, ["build"]) => build::build(&self.engine, &params, request).await,
            // BuildKit's session: Berth builds with the classic builder's protocol.
            (&Method::POST, ["session"]) => {
                Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "BuildKit sessions are not supported: build with DOCKER_BUILDKIT=0"))
            }
            // Not in a swarm, in dockerd's words and status (503): clients' teardown code
            // (`docker swarm leave`, SDKs) expects exactly this and moves on.
            (_, ["swarm", "leave"]) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "This node is not part of a swarm")),
            (_, ["swarm", ..] | ["nodes", ..] | ["services", ..] | ["tasks", ..] | ["secrets", ..] | ["configs", ..]) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
            )),
            (&Method::POST, ["auth"]) => self.auth(request).await,
            (&Method::GET, ["distribution", name @ .., "json"]) if !name.is_empty() => objects::distribution(&self.engine, &name.join("/"), &request).await,
            (&Method::GET, ["images", "search"]) => objects::search(&self.engine, &params, &request).await,
            (&Method::GET, ["containers", _, "attach", "ws"]) => {
                Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "attach over a WebSocket is not supported by Berth: use POST /containers/{id}/attach"))
            }
            (&Method::POST, ["commit"]) => commit::commit(&self.engine, &params, request).await,
            (&Method::GET, ["events"]) => events::events(&self.engine, &params),
            (&Method::GET, ["containers", "json"]) => self.containers_list(&params),
            (&Method::POST, ["containers", id, "exec"]) => exec::create(self.engine.containers(), id, request).await,
            (&Method::POST, ["exec", id, "start"]) => exec::start(self.engine.containers(), id, request).await,
            (&Method::POST, ["exec", id, "resize"]) => exec::resize(self.engine.containers(), id, &params),
            (&Method::GET, ["exec", id, "json"]) => exec::inspect(self.engine.containers(), id),
            (&Method::POST, ["containers", "prune"])
            | (_, ["containers", _, "top" | "stats" | "changes" | "export" | "archive" | "rename" | "update" | "resize"]) => {
                container_ops::route(self.engine.containers(), &method, &segments[1..], &params, request).await.unwrap_or_else(not_found)
            }
            (_, ["containers", rest @ ..]) => containers::route(self.engine.containers(), &method, rest, &params, request).await.unwrap_or_else(not_found),
            (&Method::GET, ["images", "json"]) => self.images_list(&params).await,
            (&Method::GET, ["networks"]) => self.networks_list(&params),
            (&Method::GET, ["volumes"]) => self.volumes_list(&params),
            (_, ["images", rest @ ..]) => objects::images(&self.engine, &method, rest, &params, request).await.unwrap_or_else(not_found),
            (_, ["networks", rest @ ..]) => objects::networks(&self.engine, &method, rest, &params, request).await.unwrap_or_else(not_found),
            (_, ["volumes", rest @ ..]) => objects::volumes(&self.engine, &method, rest, &params, request).await.unwrap_or_else(not_found),
            _ => not_found(),
        }
    }

    fn version(&self) -> Value {
        let facts = crate::system::MachineFacts::read();
        // Go's names, as dockerd reports them.
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        json!({
            "Platform": {"Name": "Berth"},
            "Components": [{
                "Name": "Engine",
                "Version": crate::system::ENGINE_VERSION,
                "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch, "KernelVersion": facts.kernel_release},
            }],
            "Version": crate::system::ENGINE_VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": facts.kernel_release,
            "BuildTime": "",
        })
    }

    fn info(&self) -> Value {
        let facts = crate::system::MachineFacts::read();
        let containers = self.engine.containers().list().unwrap_or_default();
        let count = |f: &dyn Fn(&crate::container::Status) -> bool| containers.iter().filter(|c| f(&c.state.status)).count();
        let images = self.engine.images().catalog.list().map(|l| l.len()).unwrap_or(0);
        let config = self.engine.config();
        let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        json!({
            "ID": "",
            "Containers": containers.len(),
            "ContainersRunning": count(&|s| *s == crate::container::Status::Running),
            "ContainersPaused": count(&|s| *s == crate::container::Status::Paused),
            "ContainersStopped": count(&|s| !s.is_running()),
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [],
            "DockerRootDir": config.root_dir,
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": cgroup_v2,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            // The engine's open descriptors and its threads (Go's goroutines have no
            // equivalent here; threads are what this process runs on).
            "NFd": std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            "NGoroutines": process_threads(),
            "SystemTime": crate::container::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
            "NEventsListener": self.engine.events().listeners(),
            "KernelVersion": facts.kernel_release,
            "OperatingSystem": if facts.os_pretty_name.is_empty() { "Linux".to_owned() } else { facts.os_pretty_name.clone() },
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": facts.cpus,
            "MemTotal": facts.memory_bytes,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config(self.engine.images().registry.config()),
            "GenericResources": null,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": facts.hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": crate::system::ENGINE_VERSION,
            "Runtimes": self.engine.containers().runtimes().iter().map(|(name, path)| (name.clone(), json!({"path": path}))).collect::<serde_json::Map<_, _>>(),
            "DefaultRuntime": self.engine.containers().runtimes()[0].0,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "docker-init",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
        })
    }

    /// `POST /auth`: checks the credentials against the registry (nothing is stored;
    /// clients keep them and send them with each pull or push).
    async fn auth(&self, request: Request<Incoming>) -> Reply {
        let body = containers::json_body(request).await?;
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
        let (username, password) = (text("username"), text("password"));
        if username.is_empty() {
            return Err(ApiError::bad_request("a user name is required"));
        }
        let server = text("serveraddress");
        let registry = server.trim_start_matches("https://").trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
        let registry = if registry.is_empty() || registry == "index.docker.io" { "docker.io".to_owned() } else { registry };
        let creds = crate::registry::Credentials { username, password };
        match self.engine.images().registry.login(&registry, &creds).await {
            Ok(()) => ok_json(json!({"Status": "Login Succeeded", "IdentityToken": ""})),
            Err(e) => Err(ApiError::new(StatusCode::UNAUTHORIZED, crate::error_chain(&e))),
        }
    }

    /// `GET /system/df`: images, containers and volumes with their sizes.
    fn disk_usage(&self) -> Reply {
        let images = self.engine.images();
        let records = images.catalog.list().map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?;
        let containers = self.engine.containers().list().unwrap_or_default();
        let volumes = self.engine.volumes();
        let layers: u64 = images.content.list().map(|l| l.iter().filter_map(|d| images.content.size(d).ok()).sum()).unwrap_or(0);
        let image_list: Vec<Value> = records
            .iter()
            .map(|i| {
                let id = i.id.to_string();
                let users = containers.iter().filter(|c| c.image_id == id).count();
                json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": i.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
                    "RepoDigests": i.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
                    "Created": chrono::DateTime::parse_from_rfc3339(&i.created).map(|t| t.timestamp()).unwrap_or(0),
                    "Size": i.size,
                    "SharedSize": 0,
                    "Labels": {},
                    "Containers": users,
                })
            })
            .collect();
        let container_list: Vec<Value> = containers.iter().map(|c| self.engine.containers().with_sizes(c, self.engine.containers().summary_json(c))).collect();
        let volume_list: Vec<Value> = volumes
            .list()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let mut value = objects::volume_json(volumes, v);
                value["UsageData"] = json!({"Size": volumes.size(&v.name), "RefCount": volumes.users(&v.name).len()});
                value
            })
            .collect();
        ok_json(json!({"LayersSize": layers, "Images": image_list, "Containers": container_list, "Volumes": volume_list, "BuildCache": []}))
    }

    fn containers_list(&self, params: &BTreeMap<String, String>) -> Reply {
        let containers = self.engine.containers();
        let all = flag(params, "all");
        let sizes = flag(params, "size");
        let pairs = filters(params)?;
        let limit = params.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).unwrap_or(0);
        let list =
            containers.list_matching(all, &pairs, usize::try_from(limit).unwrap_or(0)).map_err(|e| ApiError::from_kind(e.kind(), crate::error_chain(&e)))?;
        let mut out = Vec::new();
        for record in list {
            let summary = containers.summary_json(&record);
            out.push(if sizes { containers.with_sizes(&record, summary) } else { summary });
        }
        ok_json(Value::Array(out))
    }

    /// `GET /images/json`: filters `dangling`, `label`, `reference`, `before` and
    /// `since`, as dockerd applies them.
    async fn images_list(&self, params: &BTreeMap<String, String>) -> Reply {
        let images = self.engine.images();
        let mut pairs = filters(params)?;
        // The old form: `filter=busybox`.
        if let Some(reference) = params.get("filter").filter(|f| !f.is_empty()) {
            pairs.push(("reference".to_owned(), reference.clone()));
        }
        let mut records = images.catalog.list().map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?;
        // A build's unnamed steps show with `-a` only, as dockerd's intermediate images.
        if !flag(params, "all") {
            let steps = images.catalog.build_steps().map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?;
            records.retain(|r| !r.tags.is_empty() || !steps.contains(&r.id.to_string()));
        }
        records.sort_by(|a, b| b.created.cmp(&a.created));
        let created_of = |name: &str| -> Result<String, ApiError> {
            images.resolve(name).ok().flatten().map(|r| r.created).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("No such image: {name}")))
        };
        let mut bounds = Vec::new();
        for (key, value) in &pairs {
            match key.as_str() {
                "before" | "since" => bounds.push((key.clone(), created_of(value)?)),
                "dangling" | "label" | "reference" => {}
                other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
            }
        }
        let mut list = Vec::new();
        for i in records {
            let config: Value = images.content.read(&i.id).await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            let labels = config["config"]["Labels"].as_object().cloned().unwrap_or_default();
            let mut familiar_tags: Vec<String> = i.tags.iter().map(|t| familiar(t)).collect();
            let tag_matches = |pattern: &str, t: &str| {
                let repo = t.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(t, |(r, _)| r);
                glob_match(pattern, t) || glob_match(pattern, repo)
            };
            let references: Vec<&str> = pairs.iter().filter(|(k, _)| k == "reference").map(|(_, v)| v.as_str()).collect();
            let wanted = crate::container::inspect::filters_match(&pairs, |key, value| match key {
                "dangling" => matches!(value, "true" | "1") == i.tags.is_empty(),
                "label" => crate::container::inspect::label_matches(value, |k| labels.get(k).and_then(Value::as_str)),
                "reference" => familiar_tags.iter().any(|t| tag_matches(value, t)),
                // before and since: the bounds below.
                _ => true,
            }) && bounds.iter().all(|(key, at)| if key == "before" { i.created < *at } else { i.created > *at });
            if !wanted {
                continue;
            }
            // dockerd lists only the names the reference filter matched (the CLI prints
            // a row for each).
            if !references.is_empty() {
                familiar_tags.retain(|t| references.iter().any(|r| tag_matches(r, t)));
            }
            list.push(json!({
                "Id": i.id.to_string(),
                "ParentId": "",
                "RepoTags": familiar_tags,
                "RepoDigests": i.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
                "Created": chrono::DateTime::parse_from_rfc3339(&i.created).map(|t| t.timestamp()).unwrap_or(0),
                "Size": i.size,
                "SharedSize": -1,
                "Labels": labels,
                "Containers": -1,
            }));
        }
        ok_json(Value::Array(list))
    }

    fn networks_list(&self, params: &BTreeMap<String, String>) -> Reply {
        let pairs = filters(params)?;
        let networks = self.engine.networks();
        let list = networks.list().map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?;
        let out: Vec<Value> = list
            .iter()
            .filter(|n| {
                pairs.iter().all(|(k, v)| match k.as_str() {
                    "name" => n.name.contains(v.as_str()),
                    "id" => n.id.starts_with(v.as_str()),
                    "driver" => n.driver == *v,
                    "type" => (v == "builtin") == n.predefined(),
                    "label" => crate::container::inspect::label_matches(v, |k| n.labels.get(k).map(String::as_str)),
                    _ => false,
                })
            })
            .map(|n| crate::network::inspect_json(n, networks))
            .collect();
        ok_json(Value::Array(out))
    }

    fn volumes_list(&self, params: &BTreeMap<String, String>) -> Reply {
        let pairs = filters(params)?;
        let volumes = self.engine.volumes();
        let list = volumes.list().map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))?;
        let out: Vec<Value> = list
            .iter()
            .filter(|v| {
                pairs.iter().all(|(k, val)| match k.as_str() {
                    "name" => v.name.contains(val.as_str()),
                    "driver" => v.driver == *val,
                    "dangling" => (val == "true" || val == "1") == volumes.users(&v.name).is_empty(),
                    "label" => crate::container::inspect::label_matches(val, |k| v.labels.get(k).map(String::as_str)),
                    _ => false,
                })
            })
            .map(|v| objects::volume_json(volumes, v))
            .collect();
        ok_json(json!({"Volumes": out, "Warnings": []}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_by_bytes() {
        assert_eq!(percent_decode("CMD+%5B%22sh%22%5D"), "CMD [\"sh\"]");
        // A `%` before a multibyte character once panicked (a str sliced mid-character).
        assert_eq!(percent_decode("%é"), "%é");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn versions_and_query_strings_read_like_dockerd() {
        assert_eq!(parse_version("1.43"), Some((1, 43)));
        assert!(parse_version("1.9").expect("v") < parse_version("1.24").expect("v"));
        assert_eq!(parse_version("latest"), None);
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("docker.io/me/app:2"), "me/app:2");
        assert_eq!(familiar("127.0.0.1:5000/busybox:latest"), "127.0.0.1:5000/busybox:latest");
        assert!(glob_match("busy*", "busybox") && glob_match("berth.test/*:docker", "berth.test/busybox:docker"));
        assert!(!glob_match("busy*", "me/busybox") && !glob_match("*", "a/b"));
        assert_eq!(percent_decode("%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"), r#"{"label":["a=b"]}"#);
        let mut params = BTreeMap::new();
        params.insert("filters".to_owned(), r#"{"label":["a=b"],"status":{"running":true,"exited":false}}"#.to_owned());
        params.insert("all".to_owned(), "1".to_owned());
        assert!(flag(&params, "all"));
        assert_eq!(filters(&params).expect("filters"), vec![("label".to_owned(), "a=b".to_owned()), ("status".to_owned(), "running".to_owned())]);
    }

    #[test]
    fn globs_match_like_docker_and_never_backtrack() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("*/*:1", "me/app:1", true),
            ("*:1", "me/app:1", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**", "abc", true),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern:?} against {text:?}");
        }
        // Exponential for a backtracking matcher; immediate here.
        let started = std::time::Instant::now();
        assert!(!glob_match(&format!("{}b", "a*".repeat(40)), &"a".repeat(200)));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    /// A client that opens a connection and sends half a request head is cut off at the
    /// head timeout instead of holding the connection for ever.
    #[tokio::test]
    async fn a_stalled_request_head_is_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let root = std::env::temp_dir().join(format!("berth-api-timeout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("root");
        let engine = crate::Engine::open(crate::EngineConfig { placement: crate::Placement::Native, root_dir: root.clone() }).expect("engine");
        let api = DockerApi::with_header_timeout(engine, std::time::Duration::from_millis(300));
        let (mut client, server) = tokio::io::duplex(4096);
        api.serve_connection(server);
        client.write_all(b"GET /_ping HTTP/1.1\r\nHost: dock").await.expect("write");
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), client.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "the connection is still open 10 s after a 300 ms head timeout");
        // A whole request on a fresh connection is answered as usual.
        let (mut client, server) = tokio::io::duplex(4096);
        api.serve_connection(server);
        client.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").await.expect("write");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        let _ = std::fs::remove_dir_all(&root);
    }
}
