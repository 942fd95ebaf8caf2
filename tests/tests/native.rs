//! The engine in its native placement: `berth serve --native`, the real agent binary on
//! a unix socket, driven over gRPC and through the `berth` CLI.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_tests::native::{berth, NativeEngine};
use futures::StreamExt;

#[tokio::test]
async fn version_and_info_answer_over_the_unix_socket() {
    let engine = NativeEngine::start("nat-version");
    let client = engine.client().await;
    let version = client.version(Duration::from_secs(5)).await.expect("version");
    assert_eq!(version.engine_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(version.api_version, berth_proto::API_VERSION);
    assert_eq!(version.os, "linux");
    assert_eq!(version.arch, std::env::consts::ARCH);
    let host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(version.kernel_version, host_kernel.trim());

    let info = client.info(Duration::from_secs(5)).await.expect("info");
    assert_eq!(info.placement, "native");
    assert!(info.cpus >= 1);
    assert!(info.memory_bytes > 0);
    assert_eq!(info.root_dir, engine.home.join("engine").display().to_string());
}

#[tokio::test]
async fn socket_is_private_to_the_user() {
    let engine = NativeEngine::start("nat-private");
    let mode = std::fs::metadata(engine.socket()).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the gRPC socket must be the user's alone");
    let dir_mode = std::fs::metadata(engine.home.join("run")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[tokio::test]
async fn events_replay_ready_then_stream_stopping_on_sigterm() {
    let mut engine = NativeEngine::start("nat-events");
    let client = engine.client().await;
    let mut events = client.events(true, vec![]).await.expect("events");
    let ready = events.next().await.expect("an event").expect("ok");
    assert_eq!((ready.r#type.as_str(), ready.action.as_str()), ("engine", "ready"));
    assert_eq!(ready.seq, 1);
    assert_eq!(ready.attributes.get("placement").map(String::as_str), Some("native"));

    let status = engine.terminate();
    let stopping = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("stopping event in time").expect("an event").expect("ok");
    assert_eq!(stopping.action, "stopping");
    assert_eq!(stopping.seq, 2);
    assert!(status.success(), "engine exit: {status}");
    assert!(!engine.socket().exists(), "the socket must be removed on exit");
}

#[tokio::test]
async fn event_type_filter_drops_other_types() {
    let engine = NativeEngine::start("nat-filter");
    let client = engine.client().await;
    let mut events = client.events(true, vec!["container".into()]).await.expect("events");
    // engine.ready is the only event so far, and it is filtered out.
    let next = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(next.is_err(), "no event expected, got {next:?}");
}

#[test]
fn cli_version_reports_client_and_engine() {
    let engine = NativeEngine::start("nat-cli");
    let out = engine.berth(&["version", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["client"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["engine"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["engine"]["os"], "linux");
    let text = engine.berth(&["info"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Placement:        native"));
}

#[test]
fn a_busy_socket_is_a_clear_error() {
    let engine = NativeEngine::start("nat-busy");
    let out = engine.berth(&["serve", "--native"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // Refused by the engine's lock on its state, before it could touch a thing (a
    // socket still answering is refused too: berth-proto's socket tests).
    assert!(err.contains(&format!("another Berth engine (pid {}) is using", engine.child.id())), "{err}");
    // The first engine still answers.
    assert!(engine.berth(&["version"]).status.success());
}

#[test]
fn no_engine_is_a_clear_error() {
    let home = berth_tests::temp_home("nat-none");
    let out = berth(&home, &["version"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no engine is running"), "{err}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn bad_host_address_is_a_clear_error() {
    let home = berth_tests::temp_home("nat-badhost");
    let out = berth(&home, &["--host", "tcp://1.2.3.4:5", "version"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid engine address"));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_bad_engine_config_file_is_a_clear_error() {
    let home = berth_tests::temp_home("nat-badconfig");
    std::fs::create_dir_all(home.join("engine")).expect("dir");
    std::fs::write(home.join("engine/daemon.json"), br#"{"insecure-registries": "not-a-list"}"#).expect("write");
    let out = berth(&home, &["serve", "--native"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid engine config") && err.contains("must be a list"), "{err}");
    assert!(!home.join("run/berth.sock").exists(), "no socket may be left behind");
    let _ = std::fs::remove_dir_all(&home);
}

/// Out of file descriptors, the Docker API waits for some to close instead of retrying
/// its accept at once (which spun a core for as long as the clients stayed), and answers
/// again when they go.
#[test]
fn out_of_descriptors_the_api_waits_instead_of_spinning() {
    let engine = NativeEngine::start("nat-emfile");
    let pid = engine.child.id();
    let docker_socket = engine.home.join("run/docker.sock");
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds").count();
    // The soft limit only: raising a hard limit back needs CAP_SYS_RESOURCE.
    let soft = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), "--nofile", "--output=SOFT", "--noheadings"]).output().expect("prlimit");
    let soft = String::from_utf8_lossy(&soft.stdout).trim().to_owned();
    let limit = format!("--nofile={}:", open_fds + 4);
    let status = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), &limit]).status().expect("prlimit");
    assert!(status.success());
    // More clients than descriptors left: the rest wait in the listen queue.
    let clients: Vec<_> = (0..16).map(|_| std::os::unix::net::UnixStream::connect(&docker_socket).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<&str> = stat.rsplit_once(") ").expect("stat fields").1.split(' ').collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    };
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks() - before;
    // A spinning accept loop burns a whole core: about 200 ticks in 2 s.
    assert!(used < 40, "the engine used {used} clock ticks of CPU in 2 s while out of descriptors");
    drop(clients);
    let out = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")]).output().expect("prlimit");
    let log = std::fs::read_to_string(engine.home.join("engine.err")).unwrap_or_default();
    assert!(out.status.success(), "prlimit: {}; the engine said: {log}", String::from_utf8_lossy(&out.stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = std::process::Command::new("docker")
            .args(["-H", &format!("unix://{}", docker_socket.display()), "version", "--format", "{{.Server.Version}}"])
            .output()
            .expect("docker");
        if out.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the API did not answer again: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}
