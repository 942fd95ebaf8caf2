//! A load run against the native engine's Docker API: many clients at once creating,
//! starting, reading the logs of and removing containers, pulling images that share a
//! layer from a real registry (docker-registry, in the engine's network namespace),
//! removing images under them and listing, with the engine killed (SIGKILL) and
//! restarted in the middle. Afterwards everything is removed through the API and the
//! engine must have left nothing behind. The native tier runs it briefly
//! (tests/tests/load.rs); `cargo xtask bench load` runs it at full size and prints the
//! figures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::docker_target::DockerTarget;
use crate::fixtures::layer::Entry;
use crate::fixtures::{self, Compression, Flavor, Layer};

/// How big a run is.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub clients: usize,
    pub duration: Duration,
    /// The engine is killed this far into the run, and restarted at once.
    pub kill_at: Duration,
    /// Images in the registry; each has the busybox layer and a small one of its own.
    pub images: usize,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// A whole HTTP response with this status; for a pull, a 200 whose stream ended in an
    /// error message counts as a refusal (`Refused`).
    Answered(u16),
    /// A 200 pull stream that ended with `{"error": ...}`.
    Refused,
    /// No whole response: the connection was refused, reset or closed early.
    Cut,
    /// A response that is not HTTP, or an error status without a JSON `message`.
    Malformed,
    /// No answer within the client's timeout.
    Hung,
}

#[derive(Debug)]
struct Record {
    op: &'static str,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
    detail: String,
}

/// The figures of a run.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub requests: usize,
    /// (operation, outcome) -> count.
    pub by_outcome: BTreeMap<String, usize>,
    pub containers_run: usize,
    pub pulls_done: usize,
    /// Requests cut while the engine was down (allowed: the kill cut them).
    pub cut_by_kill: usize,
    /// Everything that was not answered or refused cleanly, with what it said.
    pub unclean: Vec<String>,
    /// 5xx answers, each with its message (a server error is an answer, but a finding).
    pub server_errors: Vec<String>,
    pub downtime: Duration,
    /// Successful answers to requests sent after the restarted engine was back.
    pub succeeded_after_restart: usize,
    pub elapsed: Duration,
    /// What the engine left behind after everything was removed.
    pub leftovers: Vec<String>,
    /// `berth system check` before the images were removed: its output when not clean.
    pub check: Option<String>,
}

impl LoadReport {
    pub fn print(&self) {
        println!(
            "load: {} requests in {:.0} s ({:.1}/s); {} containers created, started, read and removed; {} pulls; engine down {:.2} s",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests as f64 / self.elapsed.as_secs_f64().max(0.001),
            self.containers_run,
            self.pulls_done,
            self.downtime.as_secs_f64()
        );
        for (key, count) in &self.by_outcome {
            println!("  {key:<40} {count}");
        }
        println!("  cut by the kill: {}; succeeded after the restart: {}", self.cut_by_kill, self.succeeded_after_restart);
        println!("  not answered or refused cleanly: {}", self.unclean.len());
        for line in self.unclean.iter().take(20) {
            println!("    {line}");
        }
        println!("  server errors (5xx): {}", self.server_errors.len());
        let mut distinct: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &self.server_errors {
            *distinct.entry(e.as_str()).or_default() += 1;
        }
        for (e, n) in distinct {
            println!("    {n} x {e}");
        }
        println!("  system check: {}", self.check.as_deref().unwrap_or("clean"));
        println!("  left behind: {}", if self.leftovers.is_empty() { "nothing".to_owned() } else { self.leftovers.join("; ") });
    }
}

const USER: &str = "load";
const PASSWORD: &str = "load-secret";

/// Runs the load against a fresh native engine (its own network namespace) named `test`.
pub fn run(test: &str, config: &LoadConfig) -> LoadReport {
    let mut target = DockerTarget::start("berth", test);
    let registry = target.registry(USER, PASSWORD);
    let socket = target.socket();
    let images: Vec<String> = (0..config.images).map(|n| format!("{}/load/img{n}:latest", registry.addr)).collect();
    seed_registry(&target, &registry.addr, &images);
    let auth = base64::engine::general_purpose::URL_SAFE
        .encode(serde_json::json!({ "username": USER, "password": PASSWORD, "serveraddress": registry.addr }).to_string());
    // The default bridge exists once a container has used it: the footprint to return to.
    let (repo, tag) = images[0].rsplit_once(':').expect("a tag");
    let pulled = classify_pull(request(&socket, "POST", &format!("/images/create?fromImage={}&tag={tag}", percent(repo)), &[("X-Registry-Auth", &auth)], ""));
    assert_eq!(pulled.0, Outcome::Answered(200), "warm-up pull: {}", pulled.1);
    let (status, body) = request(&socket, "POST", "/containers/create", &[], &create_body(&images[0], 0)).expect("warm-up create");
    assert_eq!(status, 201, "{body}");
    let id = json_field(&body, "Id");
    let (status, body) = request(&socket, "POST", &format!("/containers/{id}/start"), &[], "").expect("warm-up start");
    assert_eq!(status, 204, "{body}");
    let _ = request(&socket, "POST", &format!("/containers/{id}/wait"), &[], "");
    let _ = request(&socket, "DELETE", &format!("/containers/{id}?force=1"), &[], "");
    let DockerTarget::Berth(engine) = &mut target else { unreachable!("a berth target") };
    let footprint = engine.network_footprint();
    let mounts_before = crate::native::mounts_under(&engine.home);

    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let ids: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + config.duration;
    let clients: Vec<_> = (0..config.clients)
        .map(|n| {
            let socket = socket.clone();
            let images = images.clone();
            let auth = auth.clone();
            let (records, ids) = (records.clone(), ids.clone());
            std::thread::spawn(move || client(n, &socket, &images, &auth, deadline, &records, &ids))
        })
        .collect();

    std::thread::sleep(config.kill_at);
    let killed = Instant::now();
    engine.kill_and_restart();
    let back = Instant::now();
    for client in clients {
        client.join().expect("a client panicked");
    }
    let elapsed = started.elapsed();

    let records = std::mem::take(&mut *records.lock().expect("records"));
    let mut report = LoadReport { requests: records.len(), elapsed, downtime: back - killed, ..LoadReport::default() };
    for r in &records {
        let outcome = match &r.outcome {
            Outcome::Answered(code) => format!("{}xx", code / 100),
            other => format!("{other:?}").to_lowercase(),
        };
        *report.by_outcome.entry(format!("{} {outcome}", r.op)).or_default() += 1;
        match r.outcome {
            Outcome::Answered(code) if code >= 500 => report.server_errors.push(format!("{} {code}: {}", r.op, r.detail)),
            Outcome::Answered(_) | Outcome::Refused => {}
            // In flight at the kill, or sent while the engine was down: the kill cut it.
            Outcome::Cut if r.started <= back && r.ended >= killed => report.cut_by_kill += 1,
            _ => report.unclean.push(format!(
                "{} {:?} from {:.3} s to {:.3} s (killed at {:.3} s, back at {:.3} s): {}",
                r.op,
                r.outcome,
                (r.started - started).as_secs_f64(),
                (r.ended - started).as_secs_f64(),
                (killed - started).as_secs_f64(),
                (back - started).as_secs_f64(),
                r.detail
            )),
        }
        if matches!(r.outcome, Outcome::Answered(200..=299)) && r.started > back {
            report.succeeded_after_restart += 1;
        }
        if r.op == "logs" && r.outcome == Outcome::Answered(200) {
            report.containers_run += 1;
        }
        if r.op == "pull" && r.outcome == Outcome::Answered(200) {
            report.pulls_done += 1;
        }
    }

    // Everything removed through the API; then nothing may be left.
    remove_all_containers(&socket);
    let check = engine.berth(&["system", "check"]);
    if !check.status.success() {
        report.check = Some(format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr)));
    }
    let (_, body) = request(&socket, "GET", "/images/json?all=1", &[], "").expect("list images");
    for image in serde_json::from_str::<serde_json::Value>(&body).expect("images json").as_array().into_iter().flatten() {
        let id = image["Id"].as_str().unwrap_or_default();
        let (status, body) = request(&socket, "DELETE", &format!("/images/{id}?force=1"), &[], "").expect("rmi");
        if status != 200 {
            report.leftovers.push(format!("image {id} would not go: {status} {body}"));
        }
    }
    let ids = std::mem::take(&mut *ids.lock().expect("ids"));
    report.leftovers.extend(leftovers(engine, &ids, &footprint, &mounts_before));
    // The engine's logs outlive a run that found something.
    if !report.unclean.is_empty() || !report.server_errors.is_empty() || !report.leftovers.is_empty() || report.check.is_some() {
        let keep = crate::artifact_dir(test);
        for log in ["engine.log", "engine.err"] {
            let _ = std::fs::copy(engine.home.join(log), keep.join(log));
        }
        println!("load: the engine's logs are in {}", keep.display());
    }
    drop(registry);
    report
}

/// The registry's images: the suite's busybox layer shared by all, and a layer of each
/// image's own; pushed with the docker CLI after a login, then removed from the engine.
fn seed_registry(target: &DockerTarget, addr: &str, images: &[String]) {
    target.ok(&["login", "-u", USER, "-p", PASSWORD, addr]);
    let base = Layer { entries: fixtures::busybox_entries(), compression: Compression::Gzip };
    for (n, name) in images.iter().enumerate() {
        let own = Layer {
            entries: vec![Entry::File { path: format!("img{n}.txt"), mode: 0o644, data: format!("image {n}\n").repeat(100).into_bytes() }],
            compression: Compression::Gzip,
        };
        let image = fixtures::image(Flavor::Oci, &[base.clone(), own], &["sh"], "amd64", None);
        target.load(&fixtures::oci_archive(&image, name));
        target.ok(&["push", "-q", name]);
        target.ok(&["rmi", name]);
    }
}

fn create_body(image: &str, n: usize) -> String {
    serde_json::json!({
        "Image": image,
        "Cmd": ["sh", "-c", format!("echo client {n} says hello; ls /img*.txt")],
        "Labels": { "berth.load": "1" },
    })
    .to_string()
}

/// One client: until the deadline, a mix of whole container lifecycles, pulls, image
/// removals and lists, each request recorded.
fn client(n: usize, socket: &Path, images: &[String], auth: &str, deadline: Instant, records: &Mutex<Vec<Record>>, ids: &Mutex<BTreeSet<String>>) {
    let mut rng = (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let record = |op: &'static str, started: Instant, result: (Outcome, String)| {
        records.lock().expect("records").push(Record { op, started, ended: Instant::now(), outcome: result.0, detail: result.1 });
    };
    while Instant::now() < deadline {
        let image = &images[(next() % images.len() as u64) as usize];
        match next() % 20 {
            0..=3 => {
                let t = Instant::now();
                let (repo, tag) = image.rsplit_once(':').expect("a tag");
                let path = format!("/images/create?fromImage={}&tag={tag}", percent(repo));
                record("pull", t, classify_pull(request(socket, "POST", &path, &[("X-Registry-Auth", auth)], "")));
            }
            4 => {
                let t = Instant::now();
                // Refused while a container uses it (409); gone otherwise, until pulled again.
                record("rmi", t, classify(request(socket, "DELETE", &format!("/images/{}", percent(image)), &[], "")));
            }
            5..=6 => {
                let t = Instant::now();
                record("ps", t, classify(request(socket, "GET", "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22berth.load%22%5D%7D", &[], "")));
            }
            _ => {
                let t = Instant::now();
                let created = request(socket, "POST", "/containers/create", &[], &create_body(image, n));
                let id = match &created {
                    Ok((201, body)) => Some(json_field(body, "Id")),
                    _ => None,
                };
                record("create", t, classify(created));
                let Some(id) = id else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                ids.lock().expect("ids").insert(id.clone());
                let t = Instant::now();
                record("start", t, classify(request(socket, "POST", &format!("/containers/{id}/start"), &[], "")));
                let t = Instant::now();
                record("wait", t, classify(request(socket, "POST", &format!("/containers/{id}/wait"), &[], "")));
                let t = Instant::now();
                record("logs", t, classify(request(socket, "GET", &format!("/containers/{id}/logs?stdout=1&stderr=1"), &[], "")));
                let t = Instant::now();
                record("rm", t, classify(request(socket, "DELETE", &format!("/containers/{id}?force=1&v=1"), &[], "")));
            }
        }
    }
}

fn percent(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn json_field(body: &str, field: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| v[field].as_str().map(str::to_owned)).unwrap_or_default()
}

fn classify(result: std::io::Result<(u16, String)>) -> (Outcome, String) {
    match result {
        Ok((status, body)) if status >= 400 => {
            let message = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["message"].as_str().map(str::to_owned));
            match message {
                Some(message) => (Outcome::Answered(status), message),
                None => (Outcome::Malformed, format!("{status} without a JSON message: {body:.200}")),
            }
        }
        Ok((status, _)) if status < 100 => (Outcome::Malformed, format!("status {status}")),
        Ok((status, _)) => (Outcome::Answered(status), String::new()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => (Outcome::Hung, e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => (Outcome::Malformed, e.to_string()),
        Err(e) => (Outcome::Cut, e.to_string()),
    }
}

/// A pull answers 200 and streams progress; an error at its end is a refusal.
fn classify_pull(result: std::io::Result<(u16, String)>) -> (Outcome, String) {
    match result {
        Ok((200, body)) => {
            let last = body.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_owned();
            match serde_json::from_str::<serde_json::Value>(&last) {
                Ok(v) if v.get("error").is_some() => (Outcome::Refused, v["error"].as_str().unwrap_or_default().to_owned()),
                Ok(_) => (Outcome::Answered(200), String::new()),
                // The stream stopped mid-message: the engine went away under it.
                Err(_) => (Outcome::Cut, format!("pull stream ended mid-message: {last:.200}")),
            }
        }
        other => classify(other),
    }
}

/// One HTTP/1.1 request with `Connection: close`: the status and the (de-chunked) body.
/// Connection failures and a response cut short are errors of kind other than
/// `InvalidData`; a response that is not HTTP is `InvalidData`; no answer within two
/// minutes is `TimedOut`/`WouldBlock`.
fn request(socket: &Path, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let cut = |what: &str| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned());
    if raw.is_empty() {
        return Err(cut("closed without a response"));
    }
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(cut("closed inside the response head"));
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("not an HTTP status line: {status_line:.100}")))?;
    let mut rest = &raw[split + 4..];
    let chunked = lines.clone().any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let length = lines.find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
    let body = if chunked {
        let mut out = Vec::new();
        loop {
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else { return Err(cut("closed inside a chunk's size")) };
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).map_err(|_| invalid("a bad chunk size".into()))?;
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size + 2 {
                return Err(cut("closed inside a chunk"));
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        out
    } else {
        if let Some(length) = length {
            if rest.len() < length {
                return Err(cut("closed before the whole body"));
            }
        }
        rest.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn remove_all_containers(socket: &Path) {
    if let Ok((_, body)) = request(socket, "GET", "/containers/json?all=1", &[], "") {
        for c in serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default().as_array().into_iter().flatten() {
            let id = c["Id"].as_str().unwrap_or_default();
            let _ = request(socket, "DELETE", &format!("/containers/{id}?force=1&v=1"), &[], "");
        }
    }
}

/// What the engine left after every container and image went: mounts, cgroups,
/// processes, interfaces and rules, and files in its state folder.
fn leftovers(engine: &crate::native::NativeEngine, ids: &BTreeSet<String>, footprint: &str, mounts_before: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    // Removal finishes in the background for a moment (the monitor exits, the cgroup goes).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        found.clear();
        let mounts: Vec<String> = crate::native::mounts_under(&engine.home).into_iter().filter(|m| !mounts_before.contains(m)).collect();
        found.extend(mounts.into_iter().map(|m| format!("mount {m}")));
        let state = engine.home.join("engine");
        for dir in ["containers", "runtime", "runtime-runc", "tmp", "content/ingest", "snapshots", "volumes", "netns"] {
            for entry in std::fs::read_dir(state.join(dir)).into_iter().flatten().flatten() {
                found.push(format!("file {}", entry.path().display()));
            }
        }
        for entry in std::fs::read_dir(state.join("content/blobs/sha256")).into_iter().flatten().flatten() {
            found.push(format!("blob {}", entry.path().display()));
        }
        // Monitors and runtimes name the state folder; the containers' own processes, their command.
        let engine_pid = engine.child.id();
        let ours =
            crate::processes_matching(&engine.home.join("engine").display().to_string()).into_iter().chain(crate::processes_matching("says hello; ls /img"));
        for (pid, cmd) in ours {
            if pid != engine_pid && pid != std::process::id() {
                found.push(format!("process {pid}: {cmd}"));
            }
        }
        // A container is started only by the client that created it, so every cgroup
        // this run made is named by an id some create answered.
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            for id in ids {
                let cgroup = hierarchy.path().join("berth").join(id);
                if cgroup.exists() {
                    found.push(format!("cgroup {}", cgroup.display()));
                }
            }
        }
        let now = engine.network_footprint();
        if now != footprint {
            found.push(format!("network footprint changed:\n--- before\n{footprint}--- after\n{now}"));
        }
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
