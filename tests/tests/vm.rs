//! The real VM: QEMU under TCG with the image `cargo xtask vm-image` built, the agent
//! answering over vsock (vhost-device-vsock's hybrid socket here), stopped over QMP.
//!
//! These compile everywhere and run on purpose: `cargo xtask test vm` (they are
//! `#[ignore]`d in a plain `cargo test`, since each boots a VM).

use std::time::Duration;

use berth_host::agent::AgentClient;
use berth_host::vm::{self, StartError, StopOutcome, VmState};
use berth_tests::native::berth;
use berth_tests::processes_matching;
use berth_tests::vm::{with_timeout, SessionHome, TestVm};
use futures::StreamExt;

const LIMIT: Duration = Duration::from_secs(180);

fn manifest_kernel_release() -> String {
    let manifest = berth_tests::vm::image_dir().join("manifest.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).expect("build/vm-image/manifest.json (cargo xtask vm-image)")).expect("manifest json");
    json["kernel_release"].as_str().expect("kernel_release").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn boots_answers_over_vsock_streams_events_and_powers_off() {
    with_timeout(LIMIT, async {
        let mut vm = TestVm::builder("vm-lifecycle").mem_mib(512).start().await;
        let client = vm.client();

        // The answer comes from inside the VM: the guest kernel, not the host's.
        let version = client.version(Duration::from_secs(10)).await.expect("version");
        assert_eq!(version.kernel_version, manifest_kernel_release());
        assert_eq!(version.engine_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(version.api_version, berth_proto::API_VERSION);
        let arch = match berth_tests::vm::arch() {
            berth_host::vm::Arch::X86_64 => "x86_64",
            berth_host::vm::Arch::Arm64 => "aarch64",
        };
        assert_eq!((version.os.as_str(), version.arch.as_str()), ("linux", arch));
        let info = client.info(Duration::from_secs(10)).await.expect("info");
        assert_eq!(info.placement, "vm");
        assert_eq!(info.hostname, "berth");
        assert!(info.memory_bytes > 256 << 20 && info.memory_bytes <= 512 << 20, "{}", info.memory_bytes);

        let status = vm.qmp_status().await;
        assert!(status.running);
        assert_eq!(status.status, "running");
        assert!(matches!(vm::status(&vm.home.home).await, VmState::Ready { .. }));
        // QEMU's QMP, vhost-user and vsock sockets live there: the folder keeps them the user's.
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(vm.home.home.vm_dir()).expect("vm dir").permissions()) & 0o777;
        assert_eq!(mode, 0o700, "the VM folder must be private");

        // Events: the replayed "ready", then "stopping" live when the power button is pressed.
        let mut events = client.events(true, vec![]).await.expect("events");
        let ready = events.next().await.expect("event").expect("ok");
        assert_eq!((ready.r#type.as_str(), ready.action.as_str()), ("engine", "ready"));
        assert_eq!(ready.attributes.get("placement").map(String::as_str), Some("vm"));
        let watcher = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(Ok(event)) = events.next().await {
                seen.push(format!("{}.{}", event.r#type, event.action));
            }
            seen
        });

        let outcome = vm.stop().await;
        assert_eq!(outcome, StopOutcome::PoweredOff, "the guest must power off by itself on the ACPI button");
        let seen = tokio::time::timeout(Duration::from_secs(10), watcher).await.expect("stream ends").expect("task");
        assert!(seen.contains(&"engine.stopping".to_owned()), "events after powerdown: {seen:?}");

        // Nothing left: no record, no sockets, no processes of this VM.
        let paths = &vm.home.paths;
        for file in [&paths.state, &paths.qmp, &paths.vhost_socket, &paths.vsock_uds, &paths.mux_socket] {
            assert!(!file.exists(), "{} left behind", file.display());
        }
        let home = vm.home.home.root().display().to_string();
        assert!(processes_matching(&home).is_empty(), "processes left: {:?}", processes_matching(&home));
        assert_eq!(vm::status(&vm.home.home).await, VmState::Stopped);
        let console = std::fs::read_to_string(&paths.console_log).expect("console log");
        assert!(console.contains("reboot: Power down"), "console: {console}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn a_dead_vm_is_detected_and_a_second_start_is_refused() {
    with_timeout(LIMIT, async {
        let vm = TestVm::builder("vm-dead").start().await;
        let builder = TestVm::builder("vm-dead");
        // A second start on the same home while the first runs is a conflict.
        let config = builder.config().expect("config");
        let err = vm::start(&vm.home.home, &config, |_| {}).await.expect_err("second start");
        assert!(matches!(err, StartError::AlreadyRunning { .. }), "{err}");
        assert_eq!(err.kind(), berth_proto::ErrorKind::Conflict);

        let pid = vm.running().record.qemu_pid;
        std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match vm::status(&vm.home.home).await {
                VmState::Error { reason } => {
                    assert!(reason.contains("stopped without Berth asking"), "{reason}");
                    break;
                }
                other => assert!(std::time::Instant::now() < deadline, "still {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A client call to the dead VM fails with Unavailable, not a hang.
        let err = AgentClient::connect(&vm.endpoint(), Duration::from_secs(2)).await.expect_err("dead");
        assert_eq!(err.kind(), berth_proto::ErrorKind::Unavailable);
        // Stop cleans up what the dead VM left.
        assert_eq!(vm::stop(&vm.home.home, Duration::from_secs(2)).await.expect("stop"), StopOutcome::NotRunning);
        assert!(!vm.home.paths.state.exists());
        let home = vm.home.home.root().display().to_string();
        assert!(processes_matching(&home).is_empty(), "processes left: {:?}", processes_matching(&home));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn an_agent_that_never_answers_fails_at_the_deadline_with_the_console() {
    with_timeout(LIMIT, async {
        // One second is far too short for a TCG boot: the deadline must fire.
        let (home, result) = TestVm::builder("vm-deadline").boot_timeout(Duration::from_secs(1)).try_start().await;
        let err = result.expect_err("must time out");
        let text = err.to_string();
        assert!(matches!(err, StartError::NoAnswer { .. }), "{text}");
        assert!(text.contains("did not answer within 1s under tcg"), "{text}");
        assert!(text.contains("--- console tail ---"), "{text}");
        assert_eq!(err.kind(), berth_proto::ErrorKind::Unavailable);
        // Nothing is left running or recorded.
        assert!(!home.paths.state.exists());
        let root = home.home.root().display().to_string();
        assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
    })
    .await;
}

#[tokio::test]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn missing_qemu_and_missing_image_are_clear_errors() {
    let (_home, result) = TestVm::builder("vm-noqemu").qemu("/nonexistent/qemu-system-x86_64".into()).try_start().await;
    let err = result.expect_err("no qemu");
    assert!(err.to_string().contains("cannot run /nonexistent/qemu-system-x86_64"), "{err}");

    let empty = berth_tests::temp_home("vm-noimage-dir");
    let (_home, result) = TestVm::builder("vm-noimage").image_dir(empty.clone()).try_start().await;
    let err = result.expect_err("no image");
    assert!(err.to_string().contains("cargo xtask vm-image"), "{err}");
    assert_eq!(err.kind(), berth_proto::ErrorKind::NotFound);
    let _ = std::fs::remove_dir_all(&empty);

    // From the CLI: QEMU not on PATH.
    let home = berth_tests::temp_home("vm-cli-noqemu");
    let out = std::process::Command::new(berth_tests::bin("berth"))
        .args(["vm", "start"])
        .env("BERTH_HOME", &home)
        .env("BERTH_VM_IMAGE", berth_tests::vm::image_dir())
        .env("PATH", "/nonexistent")
        .env("HOME", "/nonexistent")
        .output()
        .expect("berth");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("QEMU is not installed"), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn cli_vm_start_status_version_stop() {
    let home = berth_tests::temp_home("vm-cli");
    let artifacts = berth_tests::artifact_dir("vm-cli");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(berth_tests::bin("berth"))
            .args(args)
            .env("BERTH_HOME", &home)
            .env("BERTH_ACCEL", "tcg")
            .env("BERTH_VM_MEMORY_MIB", "512")
            .env("BERTH_VM_IMAGE", berth_tests::vm::image_dir())
            .output()
            .expect("berth");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let keep = |why: &str| {
        let _ = std::fs::copy(home.join("vm/console.log"), artifacts.join("console.log"));
        let _ = std::fs::copy(home.join("vm/qemu.log"), artifacts.join("qemu.log"));
        let _ = std::fs::copy(home.join("vm/vhost-device-vsock.log"), artifacts.join("vhost-device-vsock.log"));
        let _ = run(&["vm", "stop", "--time", "2"]);
        panic!("{why} (logs in {})", artifacts.display());
    };

    let (ok, _, _) = run(&["vm", "status"]);
    assert!(!ok, "status of a stopped VM exits non-zero");
    let (ok, out, err) = run(&["vm", "start"]);
    if !ok {
        keep(&format!("vm start failed: {err}"));
    }
    assert!(out.contains("VM ready in"), "{out}");
    let (ok, out, err) = run(&["vm", "status", "--format", "json"]);
    if !ok {
        keep(&format!("vm status failed: {err}"));
    }
    let state: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(state["state"], "ready");
    assert_eq!(state["accel"], "tcg");
    assert_eq!(state["engine"]["kernel_version"], manifest_kernel_release());

    let (ok, out, err) = run(&["version", "--format", "json"]);
    if !ok {
        keep(&format!("version failed: {err}"));
    }
    let version: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(version["engine"]["kernel_version"], manifest_kernel_release());
    // Through the session's socket, which `vm start` left serving.
    assert_eq!(version["engine"]["endpoint"], format!("unix:{}", home.join("run/berth.sock").display()), "{version}");

    // A second start attaches to the running session: no second VM.
    let (ok, out, err) = run(&["vm", "start"]);
    assert!(ok && out.starts_with("VM already running"), "{out} {err}");
    let qemus = processes_matching(&home.display().to_string()).into_iter().filter(|(_, cmd)| cmd.contains("qemu-system")).count();
    assert_eq!(qemus, 1, "one QEMU");

    let (ok, out, err) = run(&["vm", "stop"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "the VM powered off");
    let (ok, out, _) = run(&["vm", "status"]);
    assert!(!ok);
    assert_eq!(out.trim(), "stopped");
    let root = home.display().to_string();
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
    let _ = berth(&home, &["vm", "stop"]);
    let _ = std::fs::remove_dir_all(&home);
}

/// `berth serve`, stopped as a user would (SIGTERM, which powers the VM off) if the
/// test fails before it does so itself: a failed check leaves no VM running.
struct Serving(std::process::Child);

impl std::ops::Deref for Serving {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Serving {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn berth_serve_proxies_the_grpc_socket_to_the_vm_and_stops_it_on_sigterm() {
    let home = berth_tests::temp_home("vm-serve");
    let artifacts = berth_tests::artifact_dir("vm-serve");
    // The Docker API on TCP too, with mutual TLS, ended on the host.
    let tls = berth_tests::fixtures::tls::make(&home.join("tls"));
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr");
    let mut serve = Serving(
        std::process::Command::new(berth_tests::bin("berth"))
            .arg("serve")
            .args(tls.daemon_args())
            .args(["--docker-tcp", &tcp.to_string()])
            .env("BERTH_HOME", &home)
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .env("BERTH_ACCEL", "tcg")
            .env("BERTH_VM_MEMORY_MIB", "512")
            .env("BERTH_VM_IMAGE", berth_tests::vm::image_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(artifacts.join("serve.log")).expect("log"))
            .spawn()
            .expect("berth serve"),
    );
    let socket = home.join("run/berth.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    // The socket is bound before the VM boots; the engine answers once the VM is up.
    let answered = loop {
        let out = berth(&home, &["version", "--format", "json"]);
        if out.status.success() {
            break Some(out);
        }
        if std::time::Instant::now() > deadline || serve.try_wait().ok().flatten().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let Some(out) = answered else {
        let _ = serve.kill();
        let _ = std::fs::copy(home.join("vm/console.log"), artifacts.join("console.log"));
        panic!("berth serve never answered (logs in {})", artifacts.display());
    };
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["engine"]["kernel_version"], manifest_kernel_release());
    assert_eq!(json["engine"]["endpoint"], format!("unix:{}", socket.display()));
    let info = berth(&home, &["info", "--format", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    assert_eq!(info["placement"], "vm");
    // The Docker Engine API of the engine in the VM, through the host's socket.
    let docker = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}} {{.OSType}} {{.KernelVersion}}"])
        .env("DOCKER_HOST", format!("unix://{}", home.join("run/docker.sock").display()))
        .env("DOCKER_CONFIG", home.join("docker-config"))
        .output()
        .expect("docker CLI");
    assert!(docker.status.success(), "{}", String::from_utf8_lossy(&docker.stderr));
    let line = String::from_utf8_lossy(&docker.stdout).into_owned();
    assert!(line.ends_with(&format!("linux {}\n", manifest_kernel_release())), "{line}");
    // An image archive up through the proxy (docker load), then a hijacked `run -i`
    // both ways through it.
    let docker_with = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", home.join("run/docker.sock").display()))
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("docker CLI");
        child.stdin.take().expect("stdin").write_all(stdin).expect("write");
        child.wait_with_output().expect("wait")
    };
    let archive = home.join("image.tar");
    let probe = berth_tests::vm::netprobe();
    let image = berth_tests::fixtures::container_image_with(
        serde_json::json!({}),
        vec![berth_tests::fixtures::Entry::File { path: "bin/netprobe".into(), mode: 0o755, data: probe }],
    );
    std::fs::write(&archive, berth_tests::fixtures::oci_archive(&image, "berth.test/busybox:vm")).expect("archive");
    let loaded = docker_with(&["load", "-i", &archive.display().to_string()], b"");
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    let ran = docker_with(&["run", "--rm", "-i", "berth.test/busybox:vm", "sh", "-c", "cat; echo done; uname -r"], b"through the proxy\n");
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), format!("through the proxy\ndone\n{}\n", manifest_kernel_release()));
    // A container that mounts /var/run/docker.sock reaches the engine (as on Docker
    // Desktop, the VM's path): it lists itself.
    let listed = docker_with(
        &[
            "run",
            "--rm",
            "--name",
            "sock-user",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "berth.test/busybox:vm",
            "netprobe",
            "unix-get",
            "/var/run/docker.sock",
            "/containers/json",
        ],
        b"",
    );
    let answer = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && answer.starts_with("HTTP/1.") && answer.lines().next().unwrap_or("").contains(" 200 ") && answer.contains("\"/sock-user\""),
        "{answer}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    // The same through TCP with TLS; and a client without a certificate is refused.
    let over_tcp = |cert_dir: &std::path::Path, args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("tcp://{tcp}"))
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_dir)
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .output()
            .expect("docker CLI")
    };
    let ran = over_tcp(&tls.client_dir, &["run", "--rm", "berth.test/busybox:vm", "uname", "-r"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), format!("{}\n", manifest_kernel_release()));
    let refused = over_tcp(&tls.anonymous_dir, &["version"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("tls: "), "{}", String::from_utf8_lossy(&refused.stderr));
    // A published port of a container in the VM answers on the host's loopback, and
    // closes when the container goes.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let published = format!("127.0.0.1:{port}:80");
    // And on the host's IPv6 loopback, through the VM's.
    let port6 = std::net::TcpListener::bind("[::1]:0").expect("a free IPv6 port").local_addr().expect("addr").port();
    let published6 = format!("[::1]:{port6}:80");
    let web = docker_with(
        &["run", "-d", "--name", "web", "-p", &published, "-p", &published6, "berth.test/busybox:vm", "httpd", "-f", "-p", "80", "-h", "/srv"],
        b"",
    );
    assert!(web.status.success(), "{}", String::from_utf8_lossy(&web.stderr));
    let fetch_from = |addr: std::net::SocketAddr| -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        stream.write_all(b"GET /data.txt HTTP/1.0\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    for addr in [std::net::SocketAddr::from(([127, 0, 0, 1], port)), std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port6))] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let answer = loop {
            match fetch_from(addr) {
                Some(answer) if !answer.is_empty() => break answer,
                _ if std::time::Instant::now() > deadline => panic!("the published port never answered on the host at {addr}"),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        assert!(answer.starts_with("HTTP/1.") && answer.ends_with("from the image\n"), "{addr}: {answer}");
    }
    // A published UDP port too: a datagram from the host's loopback and its echo.
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let echo = docker_with(
        &["run", "-d", "--name", "echo", "-p", &format!("127.0.0.1:{udp_port}:53/udp"), "berth.test/busybox:vm", "netprobe", "udp-echo", "53"],
        b"",
    );
    assert!(echo.status.success(), "{}", String::from_utf8_lossy(&echo.stderr));
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp client");
    client.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let echoed = loop {
        let _ = client.send_to(b"ping", ("127.0.0.1", udp_port));
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(std::time::Instant::now() < deadline, "the published UDP port never answered on the host");
    };
    assert_eq!(echoed, "echo:ping");
    assert!(docker_with(&["rm", "-f", "echo"], b"").status.success());
    let removed = docker_with(&["rm", "-f", "web"], b"");
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the host still listens on {port} after the container went");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A second `berth serve` on the same home attaches to the running session (no
    // second VM), and leaving it leaves the session running.
    let second_log = home.join("second-serve.log");
    let mut second = Serving(
        std::process::Command::new(berth_tests::bin("berth"))
            .arg("serve")
            .env("BERTH_HOME", &home)
            .env("BERTH_VM_IMAGE", berth_tests::vm::image_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&second_log).expect("log"))
            .spawn()
            .expect("second berth serve"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&second_log).unwrap_or_default().contains("attached to the Berth session already running") {
        assert!(std::time::Instant::now() < deadline, "the second serve did not attach: {}", std::fs::read_to_string(&second_log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::Command::new("kill").args(["-TERM", &second.id().to_string()]).status().expect("kill");
    assert!(second.wait().expect("wait").success());
    assert!(berth(&home, &["version"]).status.success(), "the session outlives a detached second serve");

    std::process::Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().expect("kill");
    let status = serve.wait().expect("wait");
    assert!(status.success(), "berth serve exit: {status}");
    assert!(!socket.exists(), "the socket must be removed");
    assert!(!home.join("run/docker.sock").exists(), "the Docker API socket must be removed");
    assert!(!home.join("vm/state.json").exists(), "the VM must be stopped");
    let root = home.display().to_string();
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn the_engine_in_the_vm_pulls_from_a_registry_on_the_hosts_loopback() {
    use berth_proto::v1::{pull_event::Event, PullRequest};
    use berth_tests::fixtures::{self, registry::Registry};
    with_timeout(LIMIT, async {
        let registry = Registry::start("vm-pull");
        let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
        registry.push(&fixture);
        let mut vm = TestVm::builder("vm-pull").start().await;
        let client = vm.client();
        // "127.0.0.1" is the user's machine: the engine in the VM reaches it through QEMU.
        let request = PullRequest { reference: registry.reference(&fixture), platform: String::new(), auth: None, require_signature: false };
        let mut stream = client.images().pull(request).await.expect("pull").into_inner();
        let mut image = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(e) => {
                    if let Some(Event::Done(done)) = e.event {
                        image = Some(done);
                    }
                }
                Err(status) => panic!("pull in the VM failed: {}", status.message()),
            }
        }
        let image = image.expect("a pulled image");
        let manifest: serde_json::Value = serde_json::from_slice(&fixture.top.data).expect("json");
        assert_eq!(image.id, manifest["config"]["digest"]);
        assert_eq!(vm.stop().await, StopOutcome::PoweredOff);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a VM: cargo xtask test vm"]
async fn containers_run_in_the_vm_with_cgroup_v2_limits() {
    use berth_proto::v1::{ContainerRef, CreateContainerRequest, PullRequest, RemoveContainerRequest, Resources, WaitContainerRequest};
    use berth_tests::fixtures::{self, registry::Registry};
    with_timeout(LIMIT, async {
        let registry = Registry::start("vm-ctr");
        let fixture = fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
        registry.push(&fixture);
        let mut vm = TestVm::builder("vm-ctr").start().await;
        let client = vm.client();
        let reference = registry.reference(&fixture);
        let mut stream = client
            .images()
            .pull(PullRequest { reference: reference.clone(), platform: String::new(), auth: None, require_signature: false })
            .await
            .expect("pull")
            .into_inner();
        while let Some(event) = stream.next().await {
            if let Err(status) = event {
                panic!("pull in the VM failed: {}", status.message());
            }
        }
        let mut containers = client.containers();
        let run = |cmd: &str, memory: i64| CreateContainerRequest {
            image: reference.clone(),
            cmd: vec!["sh".into(), "-c".into(), cmd.into()],
            resources: Some(Resources { memory, ..Default::default() }),
            stop_timeout: -1,
            ..Default::default()
        };
        // The limits are in the container's own cgroup (v2, with a cgroup namespace).
        let mut limited = run("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; echo hi from the vm", 32 << 20);
        limited.resources = Some(Resources { memory: 32 << 20, pids_limit: 20, nano_cpus: 500_000_000, ..Default::default() });
        let id = containers.create(limited).await.expect("create").into_inner().id;
        containers.start(ContainerRef { id: id.clone() }).await.expect("start");
        let (code, text) = exit_and_output(&mut containers, &id).await;
        assert_eq!(code, 0);
        assert_eq!(text, format!("{}\n20\n50000 100000\nhi from the vm\n", 32 << 20));
        // stats reads cgroup v2: the limit, and a live reading while it runs.
        let sleeper = containers.create(run("sleep 30", 48 << 20)).await.expect("create").into_inner().id;
        containers.start(ContainerRef { id: sleeper.clone() }).await.expect("start");
        let mut stats = containers
            .stats(berth_proto::v1::StatsRequest { id: sleeper.clone(), stream: false })
            .await
            .expect("stats")
            .into_inner();
        let reading = stats.next().await.expect("a reading").expect("ok");
        assert_eq!(reading.memory_limit, 48 << 20);
        assert_eq!(reading.pids, 1);
        assert!(reading.memory_usage > 0);
        // An OOM kill under cgroup v2.
        let hog = containers.create(run("tail /dev/zero", 8 << 20)).await.expect("create").into_inner().id;
        containers.start(ContainerRef { id: hog.clone() }).await.expect("start");
        let code = containers
            .wait(WaitContainerRequest { id: hog.clone(), condition: "not-running".into() })
            .await
            .expect("wait")
            .into_inner()
            .exit_code;
        assert_eq!(code, 137);
        let details = containers.inspect(ContainerRef { id: hog.clone() }).await.expect("inspect").into_inner();
        let json: serde_json::Value = serde_json::from_str(&details.inspect_json).expect("json");
        assert_eq!(json["State"]["OOMKilled"], true, "{}", json["State"]);
        // Networks in the VM: a user network with DNS, and NAT out of the VM through
        // QEMU's user networking (the host's registry, at 10.0.2.2).
        let mut networks = client.networks();
        networks
            .create(berth_proto::v1::CreateNetworkRequest { name: "vmnet".into(), ..Default::default() })
            .await
            .expect("network create");
        let on_net = |cmd: &str| CreateContainerRequest { network_mode: "vmnet".into(), ..run(cmd, 0) };
        let mut server = on_net("exec busybox httpd -f -p 80 -h /etc");
        server.network_aliases = vec!["db".into()];
        let server = containers.create(server).await.expect("create").into_inner().id;
        containers.start(ContainerRef { id: server.clone() }).await.expect("start");
        let registry_port = reference.split_once(':').and_then(|(_, rest)| rest.split_once('/')).map(|(p, _)| p.to_owned()).expect("port");
        let fetch = format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://db/hostname && break; sleep 0.2; done; busybox wget -qO- http://10.0.2.2:{registry_port}/v2/"
        );
        let client_id = containers.create(on_net(&fetch)).await.expect("create").into_inner().id;
        containers.start(ContainerRef { id: client_id.clone() }).await.expect("start");
        let (code, text) = exit_and_output(&mut containers, &client_id).await;
        assert_eq!(code, 0, "{text}");
        assert_eq!(text.trim_end(), format!("{}\n{{}}", &server[..12]), "by name on a user network, then out through NAT");
        for id in [id, hog, sleeper, server, client_id] {
            containers.remove(RemoveContainerRequest { id, force: true, volumes: false }).await.expect("rm");
        }
        networks.remove(berth_proto::v1::NetworkRef { id: "vmnet".into() }).await.expect("network rm");
        assert!(containers.list(berth_proto::v1::ListContainersRequest { all: true, filters: vec![] }).await.expect("ps").into_inner().containers.is_empty());
        assert_eq!(vm.stop().await, StopOutcome::PoweredOff);
    })
    .await;
}

/// Waits for a container to end; returns its exit code and its whole log.
async fn exit_and_output(containers: &mut berth_proto::v1::containers_client::ContainersClient<tonic::transport::Channel>, id: &str) -> (i32, String) {
    use berth_proto::v1::{LogsRequest, WaitContainerRequest};
    let code = containers.wait(WaitContainerRequest { id: id.to_owned(), condition: "not-running".into() }).await.expect("wait").into_inner().exit_code;
    let mut logs =
        containers.logs(LogsRequest { id: id.to_owned(), stdout: true, stderr: true, tail: -1, ..Default::default() }).await.expect("logs").into_inner();
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    (code, text)
}

/// The session as a user lives in it (issue: the VM as the product): `berth vm start`
/// returns and leaves the session running, so the docker CLI reaches the engine with no
/// other berth process; the user's files are shared at their own paths (virtiofs); the
/// engine's state survives `vm stop`/`vm start` and a killed QEMU; a dead VM is reported
/// by the socket at once; containers reach the host's loopback as
/// `host.docker.internal`; space freed in the VM is freed on the host.
#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn a_session_shares_files_keeps_state_and_reports_a_crash() {
    // The session sends the host's time every 2 s (30 s by default).
    let session = SessionHome::new("vm-session", berth_tests::vm::image_dir(), 1024).env("BERTH_CLOCK_SYNC_SECS", "2");
    let home = session.home.clone();
    let berth_cmd = |args: &[&str]| session.berth(args);
    let docker = |args: &[&str]| session.docker(args);
    // Engine settings reach the engine in the VM.
    assert!(berth_cmd(&["settings", "set", "insecure-registries", "registry.lan:5000"]).0);
    assert!(berth_cmd(&["settings", "set", "registry-mirrors", "https://mirror.lan"]).0);
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    assert!(ok && out.starts_with("VM ready in"), "{out}{err}");
    let (ok, out, err) = docker(&["info", "--format", "{{json .RegistryConfig}}"]);
    assert!(ok && out.contains("\"registry.lan:5000\"") && out.contains("https://mirror.lan"), "{out}{err}");
    // No berth process of ours is left but the session itself.
    let serving: Vec<_> = processes_matching("berth").into_iter().filter(|(_, c)| c.contains(" serve")).collect();
    assert!(!serving.is_empty(), "the session runs in the background");
    let (ok, out, err) = docker(&["version", "--format", "{{.Server.Platform.Name}}"]);
    assert!(ok && out.trim() == "Berth", "{out}{err}");
    session.load_busybox("berth.test/busybox:vm");

    // The user's files at their own path, both ways; what a container writes is the
    // host user's.
    let project = home.join("project");
    std::fs::create_dir_all(project.join("src")).expect("project");
    std::fs::write(project.join("src/hello.txt"), "from the host\n").expect("write");
    let bind = format!("{}:/app", project.join("src").display());
    let (ok, out, err) = docker(&["run", "--rm", "-v", &bind, "berth.test/busybox:vm", "cat", "/app/hello.txt"]);
    assert!(ok && out == "from the host\n", "{out}{err}");
    let (ok, _, err) = docker(&["run", "--rm", "-v", &bind, "berth.test/busybox:vm", "sh", "-c", "echo from the container > /app/out.txt"]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(project.join("src/out.txt")).expect("written through the share"), "from the container\n");
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    assert_eq!(std::fs::metadata(project.join("src/out.txt")).expect("stat").uid(), me);
    // A host edit is seen at once by a running container.
    let (ok, _, err) = docker(&["run", "-d", "--name", "watcher", "-v", &bind, "berth.test/busybox:vm", "sleep", "300"]);
    assert!(ok, "{err}");
    std::fs::write(project.join("src/hello.txt"), "edited on the host\n").expect("edit");
    let (_, out, _) = docker(&["exec", "watcher", "cat", "/app/hello.txt"]);
    assert_eq!(out, "edited on the host\n");
    assert!(docker(&["rm", "-f", "watcher"]).0);
    // A compose project's relative bind.
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  web:\n    image: berth.test/busybox:vm\n    volumes:\n      - ./src:/app\n    command: cat /app/hello.txt\n",
    )
    .expect("compose file");
    let composed = std::process::Command::new(berth_tests::bin("berth"))
        .args(["compose", "run", "--rm", "web"])
        .current_dir(&project)
        .env("BERTH_HOME", &home)
        .output()
        .expect("berth compose");
    assert!(composed.status.success(), "{}", String::from_utf8_lossy(&composed.stderr));
    assert_eq!(String::from_utf8_lossy(&composed.stdout), "edited on the host\n");
    // A bind outside every share is refused, naming the shares; nothing is made.
    let (ok, _, err) = docker(&["run", "--rm", "-v", "/etc/berth-not-shared:/x", "berth.test/busybox:vm", "true"]);
    assert!(!ok && err.contains("is not shared from the host") && err.contains("/tmp"), "{err}");
    assert!(!std::path::Path::new("/etc/berth-not-shared").exists());

    // host.docker.internal is the host's loopback.
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("a host server");
    let host_port = server.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in server.incoming().flatten().take(1) {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nhello, host!\n");
        }
    });
    let url = format!("http://host.docker.internal:{host_port}/");
    let (ok, out, err) = docker(&["run", "--rm", "berth.test/busybox:vm", "wget", "-q", "-O", "-", &url]);
    assert!(ok && out == "hello, host!\n", "{out}{err}");

    // The guest clock follows the host's: moved back a year, it comes back.
    let (ok, _, err) = docker(&["run", "--rm", "--privileged", "berth.test/busybox:vm", "date", "-s", "2025-01-01 00:00:00"]);
    assert!(ok, "{err}");
    let host_now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = docker(&["run", "--rm", "berth.test/busybox:vm", "date", "+%s"]);
        let guest: i64 = out.trim().parse().unwrap_or(0);
        if (guest - host_now()).abs() <= 5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the guest clock stayed at {guest} (host {})", host_now());
        std::thread::sleep(Duration::from_millis(500));
    }

    // State survives a stop and a start; a larger disk limit grows the disk. An image
    // pulled from a registry on the host's loopback is among it.
    let registry = berth_tests::fixtures::registry::Registry::start("vm-session");
    let pulled_fixture = berth_tests::fixtures::catalog().into_iter().find(|f| f.tag == "oci").expect("oci");
    registry.push(&pulled_fixture);
    let pulled = registry.reference(&pulled_fixture);
    let (ok, _, err) = docker(&["pull", "-q", &pulled]);
    assert!(ok, "{err}");
    assert!(docker(&["volume", "create", "keep"]).0);
    let (ok, _, err) = docker(&["run", "--rm", "-v", "keep:/data", "berth.test/busybox:vm", "sh", "-c", "echo kept > /data/f"]);
    assert!(ok, "{err}");
    let (ok, out, err) = berth_cmd(&["vm", "stop"]);
    assert!(ok && out.trim() == "the VM powered off", "{out}{err}");
    assert!(!home.join("run/docker.sock").exists());
    let (ok, _, err) = berth_cmd(&["settings", "set", "disk-gib", "80"]);
    assert!(ok, "{err}");
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = docker(&["run", "--rm", "-v", "keep:/data", "berth.test/busybox:vm", "cat", "/data/f"]);
    assert!(ok && out == "kept\n", "{out}{err}");
    let (ok, out, err) = docker(&["image", "inspect", "-f", "{{.Id}}", &pulled]);
    assert!(ok && out.starts_with("sha256:"), "the pulled image is still there: {out}{err}");
    let (ok, out, err) = docker(&["run", "--rm", "-v", "keep:/data", "berth.test/busybox:vm", "df", "-k", "/data"]);
    let size_kib: u64 = out.lines().nth(1).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(ok && size_kib > 70 << 20, "the file system grew to the new limit: {out}{err}");

    // Space freed in the VM is freed on the host (discard), within a minute. The data
    // is not zeros: QEMU turns written zeros into discards.
    let allocated = || std::fs::metadata(home.join("vm/data.img")).expect("data disk").blocks() * 512;
    let before = allocated();
    let (ok, _, err) = docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "berth.test/busybox:vm",
        "sh",
        "-c",
        "head -c 1048576 /dev/urandom > /tmp/r && i=0 && while [ $i -lt 1024 ]; do cat /tmp/r; i=$((i+1)); done > /data/big && sync",
    ]);
    assert!(ok, "{err}");
    let grown = allocated();
    assert!(grown >= before + (900 << 20), "1 GiB written: {before} -> {grown}");
    let (ok, _, err) = docker(&["run", "--rm", "-v", "keep:/data", "berth.test/busybox:vm", "sh", "-c", "rm /data/big && sync"]);
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while allocated() > before + (100 << 20) {
        assert!(std::time::Instant::now() < deadline, "the disk image still holds {} bytes (was {before})", allocated());
        std::thread::sleep(Duration::from_millis(500));
    }

    // A killed QEMU: the socket says so at once, the state says why, and the next start
    // finds everything.
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(home.join("vm/state.json")).expect("vm record")).expect("json");
    let qemu = record["qemu_pid"].as_u64().expect("qemu pid").to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &qemu]).status().expect("kill").success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        let started = std::time::Instant::now();
        let (ok, _, err) = docker(&["ps"]);
        assert!(started.elapsed() < Duration::from_secs(5), "docker ps hung");
        if !ok && err.contains("stopped unexpectedly") {
            break err;
        }
        assert!(std::time::Instant::now() < deadline, "the dead VM was not reported: {err}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(err.contains("berth vm start"), "{err}");
    let (_, out, _) = berth_cmd(&["vm", "status"]);
    assert!(out.starts_with("error: the Berth VM stopped unexpectedly"), "{out}");
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = docker(&["run", "--rm", "-v", "keep:/data", "berth.test/busybox:vm", "cat", "/data/f"]);
    assert!(ok && out == "kept\n", "{out}{err}");
    let (ok, out, _) = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(ok && out.contains("berth.test/busybox:vm") && out.contains(&pulled), "{out}");

    // berth diagnose: one archive with the logs and the engine's state, no secrets.
    let (ok, _, err) = berth_cmd(&["settings", "set", "engine", r#"{"x-registry-token": "s3cret-value"}"#]);
    assert!(ok, "{err}");
    let archive = home.join("diag.tar.gz");
    let (ok, out, err) = berth_cmd(&["diagnose", "-o", &archive.display().to_string()]);
    assert!(ok, "{out}{err}");
    let listing = std::process::Command::new("tar").arg("-tzf").arg(&archive).output().expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in ["settings.json", "versions.json", "engine.json", "vm/console.log", "vm/qemu.log", "vm/session.log"] {
        assert!(listing.lines().any(|l| l == name), "{name} missing: {listing}");
    }
    let contents = std::process::Command::new("tar").arg("-xzOf").arg(&archive).output().expect("tar");
    let contents = String::from_utf8_lossy(&contents.stdout);
    assert!(!contents.contains("s3cret-value"), "a secret reached the archive");
    assert!(contents.contains("\"placement\": \"vm\""), "the engine's state is summarised");

    let (ok, out, err) = berth_cmd(&["vm", "stop"]);
    assert!(ok, "{out}{err}");
    let root = home.display().to_string();
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
}

/// What a user can get wrong, or a second program can do to the VM's files: clear
/// errors, and the data disk untouched.
#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn bad_shares_and_damaged_or_busy_disks_are_clear_errors_and_lose_nothing() {
    let session = SessionHome::new("vm-bad-disk", berth_tests::vm::image_dir(), 512);
    let home = session.home.clone();
    let berth_cmd = |args: &[&str]| session.berth(args);
    // The logs are kept by `session` when this panics.
    let keep = |why: String| -> ! { panic!("{why} (logs in {})", session.artifacts.display()) };
    // A shared folder that does not exist: refused before anything starts.
    let (ok, _, _) = berth_cmd(&["settings", "set", "shares", "/tmp", "/no/such/folder"]);
    assert!(ok);
    let (ok, _, err) = berth_cmd(&["vm", "start"]);
    if ok || !err.contains("/no/such/folder") {
        keep(format!("a missing share must be refused: {err}"));
    }
    assert!(!home.join("vm/data.img").exists(), "nothing was made");
    let (ok, _, _) = berth_cmd(&["settings", "set", "shares", "/tmp"]);
    assert!(ok);

    // A data disk that is not a file system: refused, left as it was.
    std::fs::create_dir_all(home.join("vm")).expect("vm dir");
    let junk: Vec<u8> = (0..(4u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let disk = home.join("vm/data.img");
    std::fs::write(&disk, &junk).expect("write junk");
    let (ok, _, err) = berth_cmd(&["vm", "start"]);
    if ok || !err.contains("the data disk is damaged") {
        keep(format!("a damaged disk must be refused: {err}"));
    }
    let mut after = vec![0u8; junk.len()];
    std::io::Read::read_exact(&mut std::fs::File::open(&disk).expect("open"), &mut after).expect("read");
    assert!(after == junk, "the damaged disk's contents must not be changed");
    let root = home.display().to_string();
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
    std::fs::remove_file(&disk).expect("remove junk");

    // A disk another QEMU holds: QEMU's own lock refuses it, in words.
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    if !ok {
        keep(format!("vm start: {out}{err}"));
    }
    let (ok, _, _) = berth_cmd(&["vm", "stop"]);
    assert!(ok);
    let mut holder = std::process::Command::new(vm::find_program("qemu-system-x86_64").expect("qemu"))
        .args(["-nodefaults", "-display", "none", "-machine", "q35,accel=tcg", "-S", "-device", "virtio-blk-pci,drive=d"])
        .arg("-drive")
        .arg(format!("file={},if=none,id=d,format=raw", disk.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("a second QEMU");
    std::thread::sleep(Duration::from_secs(1));
    let (ok, _, err) = berth_cmd(&["vm", "start"]);
    let _ = holder.kill();
    let _ = holder.wait();
    if ok || !err.contains("lock") {
        keep(format!("a disk held by another QEMU must be refused: {err}"));
    }
    // And it still starts once the other QEMU is gone; reset refuses while it runs.
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    if !ok {
        keep(format!("vm start after the lock went: {out}{err}"));
    }
    let (ok, _, err) = berth_cmd(&["vm", "reset", "--force"]);
    assert!(!ok && err.contains("vm stop"), "{err}");
    let (ok, _, _) = berth_cmd(&["vm", "stop"]);
    assert!(ok);
    // Without a terminal to confirm on, reset wants --force; then the disk is gone.
    let (ok, _, err) = berth_cmd(&["vm", "reset"]);
    assert!(!ok && err.contains("--force") && disk.exists(), "{err}");
    let (ok, out, err) = berth_cmd(&["vm", "reset", "--force"]);
    assert!(ok && !disk.exists(), "{out}{err}");
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
    let _ = std::fs::remove_dir_all(&home);
}

/// Shares over virtio-9p, QEMU's own (what QEMU offers on macOS, and where there is no
/// virtiofsd), on the image with Debian's generic kernel (the cloud kernel has no 9p).
#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn shares_work_over_9p_too() {
    // The arm64 guest's image has the generic kernel already (9p is how macOS shares).
    let image = match berth_tests::vm::arch() {
        berth_host::vm::Arch::Arm64 => berth_tests::vm::image_dir(),
        berth_host::vm::Arch::X86_64 => berth_tests::root().join("build/vm-image-generic"),
    };
    assert!(image.join("vmlinuz").is_file(), "build/vm-image-generic (cargo xtask vm-image --kernel generic; `cargo xtask test vm` builds it)");
    let session = SessionHome::new("vm-9p", image, 768);
    let home = session.home.clone();
    let berth_cmd = |args: &[&str]| session.berth(args);
    let docker = |args: &[&str]| session.docker(args);
    assert!(berth_cmd(&["settings", "set", "share-transport", "9p"]).0);
    assert!(berth_cmd(&["settings", "set", "shares", "/tmp"]).0);
    let (ok, out, err) = berth_cmd(&["vm", "start"]);
    assert!(ok, "{out}{err}");
    assert!(std::fs::read_to_string(home.join("vm/boot.conf")).unwrap_or_default().contains("share-9p share0 /tmp"));
    session.load_busybox("berth.test/busybox:vm");
    let folder = home.join("src");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("hello.txt"), "over 9p\n").expect("write");
    let bind = format!("{}:/app", folder.display());
    let (ok, out, err) = docker(&["run", "--rm", "-v", &bind, "berth.test/busybox:vm", "sh", "-c", "cat /app/hello.txt && echo written > /app/out.txt"]);
    assert!(ok && out == "over 9p\n", "{out}{err}");
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    assert_eq!(std::fs::read_to_string(folder.join("out.txt")).expect("written through 9p"), "written\n");
    assert_eq!(std::fs::metadata(folder.join("out.txt")).expect("stat").uid(), me);
    let (ok, _, err) = docker(&["run", "-d", "--name", "reader", "-v", &bind, "berth.test/busybox:vm", "sleep", "300"]);
    assert!(ok, "{err}");
    assert_eq!(docker(&["exec", "reader", "cat", "/app/hello.txt"]).1, "over 9p\n");
    std::fs::write(folder.join("hello.txt"), "edited on the host, longer than before\n").expect("edit");
    assert_eq!(docker(&["exec", "reader", "cat", "/app/hello.txt"]).1, "edited on the host, longer than before\n", "seen at once");
    let (ok, _, err) = docker(&["run", "--rm", "-v", "/etc:/x", "berth.test/busybox:vm", "true"]);
    assert!(!ok && err.contains("is not shared from the host"), "{err}");
    let (ok, out, err) = berth_cmd(&["vm", "stop"]);
    assert!(ok, "{out}{err}");
    let root = home.display().to_string();
    assert!(processes_matching(&root).is_empty(), "processes left: {:?}", processes_matching(&root));
}

/// Issue 17's image, cp and seccomp defences hold in the VM too, through the session's
/// docker socket: setuid/setgid bits survive unpacking and a volume's copy-up; a layer
/// that climbs out with `..` or writes through a symlink is refused on load and
/// writes nothing; `cp` lands in a volume and a shared bind as the container sees them,
/// and out again; the seccomp filter refuses AF_VSOCK (which in the VM would reach the
/// agent's ports) and io_uring.
#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn image_cp_and_seccomp_defences_hold_in_the_vm() {
    use berth_tests::fixtures::{self, Compression, Entry, Flavor, Layer};
    use std::os::unix::fs::PermissionsExt;
    const IMAGE: &str = "berth.test/hardened:vm";
    let session = SessionHome::new("vm-hardening", berth_tests::vm::image_dir(), 1024);
    let docker = |args: &[&str]| session.docker(args);
    let ok = |args: &[&str]| {
        let (done, out, err) = session.docker(args);
        assert!(done, "docker {args:?}: {err}");
        out
    };
    let (started, out, err) = session.berth(&["vm", "start"]);
    assert!(started, "{out}{err}");
    let probe = berth_tests::vm::netprobe();
    let image = fixtures::container_image_with(
        serde_json::json!({}),
        vec![
            Entry::File { path: "bin/suid-tool".into(), mode: 0o4755, data: b"#!/bin/sh\necho tool\n".to_vec() },
            Entry::Dir { path: "opt/tools/".into(), mode: 0o2775 },
            Entry::File { path: "opt/tools/sgid-tool".into(), mode: 0o2755, data: b"x".to_vec() },
            Entry::File { path: "bin/netprobe".into(), mode: 0o755, data: probe },
        ],
    );
    let archive = session.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&image, IMAGE)).expect("archive");
    ok(&["load", "-i", &archive.display().to_string()]);

    // setuid and setgid bits survive unpacking and a volume's copy-up.
    assert_eq!(ok(&["run", "--rm", IMAGE, "stat", "-c", "%a", "/bin/suid-tool", "/opt/tools", "/opt/tools/sgid-tool"]), "4755\n2775\n2755\n");
    assert_eq!(ok(&["run", "--rm", "-v", "tools:/opt/tools", IMAGE, "stat", "-c", "%a", "/opt/tools", "/opt/tools/sgid-tool"]), "2775\n2755\n");

    // Hostile layers: refused on load with the reason, nothing written outside.
    for (name, entries, reason) in [
        ("dotdot", vec![Entry::File { path: "../../escaped-vm".into(), mode: 0o644, data: b"out\n".to_vec() }], "climbs out with `..`"),
        (
            "symlink-out",
            vec![
                Entry::Symlink { path: "evil".into(), target: "/tmp".into() },
                Entry::File { path: "evil/berth-pwned-vm".into(), mode: 0o644, data: b"out\n".to_vec() },
            ],
            "is written through a symlink",
        ),
    ] {
        let hostile = fixtures::image(Flavor::Oci, &[Layer { entries, compression: Compression::Gzip }], &["sh"], "amd64", None);
        let path = session.home.join(format!("{name}.tar"));
        std::fs::write(&path, fixtures::oci_archive(&hostile, &format!("berth.test/hostile:{name}"))).expect("archive");
        let (done, _, err) = docker(&["load", "-i", &path.display().to_string()]);
        assert!(!done && err.contains(reason), "{name}: {err}");
        let (found, _, _) = docker(&["image", "inspect", &format!("berth.test/hostile:{name}")]);
        assert!(!found, "{name} was kept");
    }
    // Nothing in the VM's own filesystem (seen through its pid 1) nor in the host's /tmp,
    // which the VM shares at the same path.
    let out = ok(&[
        "run",
        "--rm",
        "--privileged",
        "--pid",
        "host",
        IMAGE,
        "find",
        "/proc/1/root/",
        "-maxdepth",
        "6",
        "(",
        "-path",
        "/proc/1/root/proc",
        "-o",
        "-path",
        "/proc/1/root/sys",
        "-o",
        "-path",
        "/proc/1/root/tmp",
        ")",
        "-prune",
        "-o",
        "(",
        "-name",
        "escaped-vm",
        "-o",
        "-name",
        "berth-pwned-vm",
        ")",
        "-print",
    ]);
    assert_eq!(out.trim(), "", "a hostile layer wrote outside its snapshot");
    assert!(!std::path::Path::new("/tmp/berth-pwned-vm").exists(), "a hostile layer wrote through the share");

    // cp into a volume and a shared bind of a running container, and out again.
    let bind = session.home.join("bound");
    std::fs::create_dir_all(&bind).expect("bind folder");
    std::fs::set_permissions(&bind, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let note = session.home.join("note.txt");
    std::fs::write(&note, "kept\n").expect("write");
    ok(&["run", "-d", "--name", "live", "-v", "notes:/data", "-v", &format!("{}:/bound", bind.display()), IMAGE, "sleep", "300"]);
    ok(&["cp", &note.display().to_string(), "live:/data/note.txt"]);
    ok(&["cp", &note.display().to_string(), "live:/bound/"]);
    assert_eq!(ok(&["exec", "live", "cat", "/data/note.txt", "/bound/note.txt"]), "kept\nkept\n");
    assert_eq!(std::fs::read_to_string(bind.join("note.txt")).expect("on the host"), "kept\n");
    ok(&["exec", "live", "sh", "-c", "echo written > /data/w.txt"]);
    let out_path = session.home.join("w.txt");
    ok(&["cp", "live:/data/w.txt", &out_path.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&out_path).expect("copied out"), "written\n");
    ok(&["rm", "-f", "live"]);

    // Docker's default seccomp profile: AF_VSOCK and io_uring refused; without the
    // filter the kernel answers otherwise (the VM has vsock).
    let syscall = |extra: &[&str], call: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "netprobe", "syscall", call]);
        ok(&args).trim().to_owned()
    };
    assert_eq!(syscall(&[], "socket-vsock"), "errno 1", "AF_VSOCK must be refused by the filter");
    assert_eq!(syscall(&[], "io-uring"), "errno 1", "io_uring must be refused by the filter");
    assert_ne!(syscall(&["--security-opt", "seccomp=unconfined"], "socket-vsock"), "errno 1");
}

/// Signed images in the VM: signed through the VM's engine, the policy enforced there on
/// pull and run (the Docker API too), and taken from the settings at each start.
#[test]
#[ignore = "boots a VM: cargo xtask test vm"]
fn the_trust_policy_holds_in_the_vm_and_comes_from_the_settings() {
    use berth_tests::fixtures::{self, registry::Registry};
    let registry = Registry::start("vm-trust");
    let image = |repo: &str, label: &str| fixtures::single(repo, "v1", fixtures::container_image(serde_json::json!({"Labels": {"which": label}})));
    let (signed, unsigned) = (image("secure/app", "signed"), image("secure/tool", "unsigned"));
    registry.push(&signed);
    registry.push(&unsigned);
    let (signed_ref, unsigned_ref) = (registry.reference(&signed), registry.reference(&unsigned));
    let scope = format!("{}/secure", registry.addr);
    let session = SessionHome::new("vm-trust", berth_tests::vm::image_dir(), 1024).env("COSIGN_PASSWORD", "vm pw");
    let ok = |args: &[&str]| {
        let (done, out, err) = session.berth(args);
        assert!(done, "berth {args:?}: {out}{err}");
        out
    };
    let refused = |args: &[&str]| {
        let (done, out, err) = session.berth(args);
        assert!(!done && err.contains("refused by the trust policy"), "berth {args:?} should be refused: {out}{err}");
    };
    ok(&["vm", "start"]);
    let key_base = session.home.join("release").display().to_string();
    ok(&["trust", "key", "generate", &key_base]);
    ok(&["trust", "sign", "--key", &format!("{key_base}.key"), &signed_ref]);
    let out = ok(&["trust", "policy", "set", &scope, "--key", &format!("{key_base}.pub")]);
    assert!(out.contains("enforces it now"), "{out}");

    refused(&["pull", &unsigned_ref]);
    let (done, _, err) = session.docker(&["pull", &unsigned_ref]);
    assert!(!done && err.contains("refused by the trust policy"), "{err}");
    ok(&["pull", &signed_ref]);
    assert_eq!(ok(&["run", "--rm", &signed_ref, "cat", "/srv/data.txt"]), "from the image\n");
    let archive = session.home.join("unsigned.tar");
    let loaded = format!("{scope}/tool:loaded");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(serde_json::json!({"Labels": {"which": "loaded"}})), &loaded)).expect("archive");
    ok(&["load", "-i", &archive.display().to_string()]);
    refused(&["run", "--rm", &loaded, "true"]);

    // With the VM stopped the rule goes from the settings only; the next start's
    // engine takes the settings' policy, and the image pulls.
    ok(&["vm", "stop"]);
    let out = ok(&["trust", "policy", "rm", &scope]);
    assert!(out.contains("when it starts"), "{out}");
    ok(&["vm", "start"]);
    ok(&["pull", &unsigned_ref]);
    ok(&["run", "--rm", &loaded, "true"]);
    ok(&["vm", "stop"]);
}
