//! The Docker Engine API on `$BERTH_HOME/run/docker.sock`, driven by the real docker
//! CLI (the one on PATH) and by raw HTTP for what the CLI hides (headers, version
//! refusals, error bodies). So far the API serves negotiation, info and the lists; the
//! rest of issue 6 extends this suite.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;

use berth_tests::fixtures;
use berth_tests::native::NativeEngine;

const IMAGE: &str = "berth.test/busybox:docker";

fn docker(engine: &NativeEngine, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", engine.home.join("run/docker.sock").display()))
        .env("DOCKER_CONFIG", engine.home.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("the docker CLI (cargo xtask setup installs one if missing)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (done, out, err) = docker(engine, args);
    assert!(done, "docker {args:?}: {err}");
    out
}

/// One raw HTTP/1.1 request; returns the status line, the headers (lowercased names)
/// and the body.
fn http(engine: &NativeEngine, method: &str, path: &str) -> (String, Vec<(String, String)>, String) {
    let mut stream = UnixStream::connect(engine.home.join("run/docker.sock")).expect("connect");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_owned();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_docker_cli_negotiates_and_lists_against_berth() {
    let engine = NativeEngine::start_isolated("docker-api");
    let socket = engine.home.join("run/docker.sock");
    let mode = std::fs::metadata(&socket).expect("docker.sock").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is the user's alone");

    // `berth serve` wrote the berth docker context.
    let out = Command::new("docker")
        .args(["--context", "berth", "version", "--format", "{{.Server.Platform.Name}}"])
        .env("DOCKER_CONFIG", engine.home.join("docker-config"))
        .env_remove("DOCKER_HOST")
        .output()
        .expect("docker --context berth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Berth");
    // Negotiation: the 28.x CLI downgrades to what the engine serves.
    let version = ok(&engine, &["version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}"]);
    assert_eq!(version.trim(), "1.43 1.24 1.43", "{version}");
    let (status, headers, body) = http(&engine, "HEAD", "/_ping");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(header(&headers, "api-version"), Some("1.43"));
    assert_eq!(header(&headers, "ostype"), Some("linux"));
    assert!(body.is_empty());
    let (status, _, body) = http(&engine, "GET", "/_ping");
    assert!(status.starts_with("HTTP/1.1 200"));
    assert_eq!(body, "OK");
    let (status, _, body) = http(&engine, "GET", "/v1.99/version");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("json error body");
    assert_eq!(error["message"], "client version 1.99 is too new. Maximum supported API version is 1.43");
    let (status, _, body) = http(&engine, "GET", "/v1.12/info");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(body.contains("client version 1.12 is too old"), "{body}");
    let (status, _, body) = http(&engine, "GET", "/v1.43/no/such/thing");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).expect("json")["message"], "page not found");
    let (status, _, _) = http(&engine, "GET", "/v1.24/info");
    assert!(status.starts_with("HTTP/1.1 200"), "the oldest version is served: {status}");

    // What berth made, docker lists.
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("archive");
    assert!(engine.berth(&["load", "-i", &archive.display().to_string()]).status.success());
    assert!(engine.berth(&["network", "create", "--label", "team=a", "shop"]).status.success());
    assert!(engine.berth(&["volume", "create", "--label", "team=a", "data"]).status.success());
    assert!(engine.berth(&["run", "-d", "--name", "kept", "--label", "team=a", "--network", "shop", "-v", "data:/data", IMAGE, "sleep", "300"]).status.success());
    assert!(engine.berth(&["create", "--name", "idle", IMAGE, "true"]).status.success());

    let info = ok(&engine, &["info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.Driver}} {{.OSType}}"]);
    assert_eq!(info.trim(), "2 1 1 1 overlay2 linux");
    assert_eq!(ok(&engine, &["ps", "--format", "{{.Names}} {{.Image}} {{.State}}"]), format!("kept {IMAGE} running\n"));
    let all = ok(&engine, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.lines().collect::<std::collections::BTreeSet<_>>(), ["idle", "kept"].into_iter().collect());
    assert_eq!(ok(&engine, &["ps", "-a", "--filter", "label=team=a", "--format", "{{.Names}}"]), "kept\n");
    assert_eq!(ok(&engine, &["ps", "-a", "--filter", "status=created", "--format", "{{.Names}}"]), "idle\n");
    assert_eq!(ok(&engine, &["ps", "--format", "{{.Networks}} {{.Mounts}}"]), "shop data\n");
    assert_eq!(ok(&engine, &["images", "--format", "{{.Repository}}:{{.Tag}}"]), format!("{IMAGE}\n"));
    assert_eq!(ok(&engine, &["network", "ls", "--filter", "type=custom", "--format", "{{.Name}} {{.Driver}}"]), "shop bridge\n");
    assert_eq!(ok(&engine, &["network", "ls", "--filter", "label=team=a", "-q"]).trim().len(), 12);
    assert_eq!(ok(&engine, &["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]), "data local\n");
    assert_eq!(ok(&engine, &["volume", "ls", "--filter", "dangling=true", "-q"]), "");
    // A bad filter is the client's error, in docker's shape.
    let (status, _, body) = http(&engine, "GET", "/containers/json?filters=%7Bnot%20json");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(body.contains("invalid filter"), "{body}");
}

#[test]
fn the_docker_cli_runs_and_manages_containers_on_berth() {
    let engine = NativeEngine::start_isolated("docker-run");
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("archive");
    assert!(engine.berth(&["load", "-i", &archive.display().to_string()]).status.success());

    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs().to_string();
    // run: attach (hijacked), start, wait; the output streams and the exit code.
    let (done, out, err) = docker(&engine, &["run", "--name", "first", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert!(!done);
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let state = ok(&engine, &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", "first"]);
    assert_eq!(state.trim(), "exited 3 /first");
    assert_eq!(ok(&engine, &["wait", "first"]).trim(), "3");
    let (done, out, err) = docker(&engine, &["logs", "first"]);
    assert!(done, "{err}");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"), "logs keep the streams apart");
    // -i: the client's stdin reaches the container.
    let mut child = Command::new("docker")
        .args(["run", "-i", "--rm", IMAGE, "cat"])
        .env("DOCKER_HOST", format!("unix://{}", engine.home.join("run/docker.sock").display()))
        .env("DOCKER_CONFIG", engine.home.join("docker-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker run -i");
    child.stdin.take().expect("stdin").write_all(b"hi from stdin\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from stdin\n");
    // --rm removes; -t gives a terminal.
    assert_eq!(ok(&engine, &["run", "--rm", IMAGE, "echo", "gone"]), "gone\n");
    let tty = ok(&engine, &["run", "--rm", "-t", IMAGE, "sh", "-c", "tty >/dev/null && echo has-tty"]);
    assert_eq!(tty.trim(), "has-tty");

    // Detached life: create/start, ps, stop, restart, pause, kill, rm.
    let id = ok(&engine, &["run", "-d", "--name", "svc", "-p", "8080:80", "--label", "k=v", IMAGE, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(ok(&engine, &["ps", "--filter", "label=k=v", "--format", "{{.Names}} {{.Ports}}"]), "svc 0.0.0.0:8080->80/tcp\n");
    let (got, page) = engine.in_netns(&["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"]);
    assert!(got, "{page}");
    assert_eq!(page.trim(), &id.trim()[..12]);
    // exec: output, exit code, stdin, detached.
    assert_eq!(ok(&engine, &["exec", "svc", "echo", "from-exec"]), "from-exec\n");
    let (done, _, err) = docker(&engine, &["exec", "svc", "sh", "-c", "echo to-stderr >&2; exit 4"]);
    assert!(!done);
    assert_eq!(err, "to-stderr\n");
    let mut child = Command::new("docker")
        .args(["exec", "-i", "svc", "cat"])
        .env("DOCKER_HOST", format!("unix://{}", engine.home.join("run/docker.sock").display()))
        .env("DOCKER_CONFIG", engine.home.join("docker-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker exec -i");
    child.stdin.take().expect("stdin").write_all(b"piped in\n").expect("write");
    assert_eq!(String::from_utf8_lossy(&child.wait_with_output().expect("wait").stdout), "piped in\n");
    ok(&engine, &["exec", "-d", "svc", "touch", "/tmp/detached"]);
    let mut touched = false;
    for _ in 0..50 {
        if docker(&engine, &["exec", "svc", "test", "-e", "/tmp/detached"]).0 {
            touched = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(touched, "the detached exec did not run");
    ok(&engine, &["pause", "svc"]);
    assert_eq!(ok(&engine, &["inspect", "-f", "{{.State.Status}}", "svc"]).trim(), "paused");
    ok(&engine, &["unpause", "svc"]);
    ok(&engine, &["restart", "-t", "1", "svc"]);
    assert_eq!(ok(&engine, &["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "svc"]).trim().split(' ').next(), Some("running"));
    ok(&engine, &["kill", "svc"]);
    assert_eq!(ok(&engine, &["inspect", "-f", "{{.State.ExitCode}}", "svc"]).trim(), "137");
    ok(&engine, &["create", "--name", "later", IMAGE, "true"]);
    ok(&engine, &["start", "later"]);
    assert_eq!(ok(&engine, &["wait", "later"]).trim(), "0");
    ok(&engine, &["rm", "svc", "later", "first"]);
    // events: since/until replay what happened, filtered.
    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 1).to_string();
    let events = ok(&engine, &["events", "--since", &since, "--until", &until, "--filter", "container=first", "--format", "{{.Type}} {{.Action}}"]);
    let actions: Vec<&str> = events.lines().collect();
    assert_eq!(actions, ["container create", "container start", "container die", "container destroy"], "{events}");
    assert!(ok(&engine, &["ps", "-aq"]).is_empty());

    // Errors in docker's shapes and codes.
    let (done, _, err) = docker(&engine, &["stop", "nothing-here"]);
    assert!(!done);
    assert!(err.contains("No such container") || err.contains("no such container"), "{err}");
    let (done, _, err) = docker(&engine, &["run", "--rm", "-p", "80/sctp", IMAGE, "true"]);
    assert!(!done, "{err}");
}

#[test]
fn the_docker_cli_manages_images_networks_and_volumes_on_berth() {
    let engine = NativeEngine::start_isolated("docker-objects");
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({})), IMAGE)).expect("archive");
    assert!(engine.berth(&["load", "-i", &archive.display().to_string()]).status.success());

    // Images: inspect, tag, rmi.
    ok(&engine, &["tag", IMAGE, "mine:1"]);
    assert_eq!(ok(&engine, &["image", "inspect", "-f", "{{.Os}} {{len .RootFS.Layers}}", "mine:1"]).trim(), "linux 1");
    let tags = ok(&engine, &["image", "inspect", "-f", "{{json .RepoTags}}", "mine:1"]);
    assert!(tags.contains("\"mine:1\"") && tags.contains(IMAGE), "{tags}");
    assert!(ok(&engine, &["rmi", "mine:1"]).contains("Untagged: mine:1"));
    let (done, _, err) = docker(&engine, &["image", "inspect", "mine:1"]);
    assert!(!done && err.contains("No such image"), "{err}");

    // Networks: create with a subnet, names resolve, connect/disconnect, rm, prune.
    ok(&engine, &["network", "create", "--subnet", "10.66.0.0/24", "--label", "a=b", "dnet"]);
    assert_eq!(ok(&engine, &["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels}}", "dnet"]).trim(), "10.66.0.0/24 map[a:b]");
    ok(&engine, &["run", "-d", "--name", "n1", "--network", "dnet", "--network-alias", "api", IMAGE, "sleep", "300"]);
    let found = ok(&engine, &["run", "--rm", "--network", "dnet", IMAGE, "busybox", "nslookup", "api"]);
    assert!(found.contains("10.66.0.2"), "{found}");
    ok(&engine, &["network", "connect", "bridge", "n1"]);
    assert_eq!(ok(&engine, &["inspect", "-f", "{{len .NetworkSettings.Networks}}", "n1"]).trim(), "2");
    ok(&engine, &["network", "disconnect", "bridge", "n1"]);
    let (done, _, err) = docker(&engine, &["network", "rm", "dnet"]);
    assert!(!done && err.contains("active endpoints"), "{err}");
    ok(&engine, &["rm", "-f", "n1"]);
    ok(&engine, &["network", "create", "spare"]);
    let pruned = ok(&engine, &["network", "prune", "-f"]);
    assert!(pruned.contains("spare") && pruned.contains("dnet"), "{pruned}");
    assert_eq!(ok(&engine, &["network", "ls", "--format", "{{.Name}}"]), "bridge\nhost\nnone\n");

    // Volumes: create, inspect, in use, prune.
    ok(&engine, &["volume", "create", "--label", "x=y", "dv"]);
    assert_eq!(ok(&engine, &["volume", "inspect", "-f", "{{.Driver}} {{.Labels}}", "dv"]).trim(), "local map[x:y]");
    ok(&engine, &["run", "--rm", "-v", "dv:/data", IMAGE, "sh", "-c", "echo kept > /data/f"]);
    assert_eq!(ok(&engine, &["run", "--rm", "-v", "dv:/data:ro", IMAGE, "cat", "/data/f"]), "kept\n");
    ok(&engine, &["create", "--name", "holder", "-v", "dv:/data", IMAGE, "true"]);
    let (done, _, err) = docker(&engine, &["volume", "rm", "dv"]);
    assert!(!done && err.contains("in use"), "{err}");
    ok(&engine, &["rm", "holder"]);
    ok(&engine, &["volume", "rm", "dv"]);
    let (done, _, err) = docker(&engine, &["volume", "inspect", "dv"]);
    assert!(!done && err.to_lowercase().contains("no such volume"), "{err}");
}
