//! Containers on the real crun, run by a native engine inside a network namespace the
//! test made. Images come from OCI archives built offline (no registry needed). After
//! every test: no mount, cgroup, process, runtime state or file of its containers.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::fixtures;
use berth_tests::native::NativeEngine;
use serde_json::{json, Value};

const IMAGE: &str = "berth.test/busybox:1";

/// An isolated engine with the test image loaded.
fn engine(test: &str) -> NativeEngine {
    engine_with(test, json!({}))
}

fn engine_with(test: &str, config: Value) -> NativeEngine {
    load_image(NativeEngine::start_isolated(test), config)
}

fn load_image(engine: NativeEngine, config: Value) -> NativeEngine {
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&fixtures::container_image(config), IMAGE)).expect("write archive");
    let out = engine.berth(&["load", "-i", &archive.display().to_string()]);
    assert!(out.status.success(), "load: {}", String::from_utf8_lossy(&out.stderr));
    engine
}

/// Runs berth; returns (exit code, stdout, stderr).
fn berth(engine: &NativeEngine, args: &[&str]) -> (i32, String, String) {
    let out = engine.berth(args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (code, stdout, stderr) = berth(engine, args);
    assert_eq!(code, 0, "berth {args:?} failed: {stderr}");
    stdout
}

fn inspect(engine: &NativeEngine, name: &str) -> Value {
    let text = ok(engine, &["inspect", "--type", "container", name]);
    let list: Value = serde_json::from_str(&text).expect("inspect json");
    list[0].clone()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a container can leave behind, by id.
fn leftovers(engine: &NativeEngine, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let dir = engine.home.join("engine/containers").join(id);
    if dir.exists() {
        found.push(format!("directory {}", dir.display()));
    }
    if engine.home.join("engine/runtime").join(id).exists() {
        found.push("runtime state".to_owned());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines().filter(|l| l.contains(id)) {
        found.push(format!("mount {line}"));
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let cgroup = hierarchy.path().join("berth").join(id);
        if cgroup.exists() {
            found.push(format!("cgroup {}", cgroup.display()));
        }
    }
    for (pid, cmd) in berth_tests::processes_matching(id) {
        found.push(format!("process {pid}: {cmd}"));
    }
    found
}

/// Every container the engine ever made in this test: gone without a trace.
fn assert_clean(engine: &NativeEngine, ids: &BTreeSet<String>) {
    for id in ids {
        wait_until(&format!("container {id} to leave nothing behind"), Duration::from_secs(10), || leftovers(engine, id).is_empty());
    }
}

fn remove_all(engine: &NativeEngine) -> BTreeSet<String> {
    let ids: BTreeSet<String> = ok(engine, &["ps", "-aq", "--no-trunc"]).lines().map(str::to_owned).collect();
    for id in &ids {
        ok(engine, &["rm", "-f", id]);
    }
    ids
}

#[test]
fn exit_codes_output_streams_and_signals_propagate() {
    let engine = engine("ctr-exit");
    let mut ids = BTreeSet::new();

    let (code, stdout, stderr) = berth(&engine, &["run", "--name", "three", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(stdout, "out\n");
    assert_eq!(stderr, "err\n");
    let three = inspect(&engine, "three");
    assert_eq!(three["State"]["ExitCode"], 3);
    assert_eq!(three["State"]["Status"], "exited");
    ids.insert(three["Id"].as_str().expect("id").to_owned());
    assert_eq!(ok(&engine, &["wait", "three"]).trim(), "3");
    // The log keeps both streams apart.
    let (_, out, err) = berth(&engine, &["logs", "three"]);
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));

    // -t: a terminal from the monitor; -i: our stdin reaches the container.
    let (code, out, _) = berth(&engine, &["run", "--rm", "-t", IMAGE, "sh", "-c", "tty; exit 2"]);
    assert_eq!(code, 2);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    let out = std::process::Command::new(berth_tests::bin("berth"))
        .args(["run", "--rm", "-i", IMAGE, "sh"])
        .env("BERTH_HOME", &engine.home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"echo from stdin; exit 5\n")?;
            child.wait_with_output()
        })
        .expect("run -i");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");

    // attach to a running container: its output until it exits, and its exit code.
    ok(&engine, &["run", "-d", "--name", "later", IMAGE, "sh", "-c", "sleep 1; echo late; exit 6"]);
    let (code, out, _) = berth(&engine, &["attach", "later"]);
    assert_eq!((code, out.as_str()), (6, "late\n"));
    let (code, _, stderr) = berth(&engine, &["attach", "later"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot attach to a stopped container"), "{stderr}");

    // --rm: gone once it exits; the exit code still comes back.
    let (code, _, _) = berth(&engine, &["run", "--rm", "--name", "gone", IMAGE, "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let (code, _, stderr) = berth(&engine, &["inspect", "--type", "container", "gone"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no such object"), "{stderr}");

    // A signal the process handles: its own exit code.
    let id = ok(&engine, &["run", "-d", "--name", "trapper", IMAGE, "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done"]);
    ids.insert(id.trim().to_owned());
    ok(&engine, &["kill", "-s", "USR1", "trapper"]);
    assert_eq!(ok(&engine, &["wait", "trapper"]).trim(), "42");

    // SIGKILL: 128 + 9.
    let id = ok(&engine, &["run", "-d", "--name", "sleeper", IMAGE, "sleep", "300"]);
    ids.insert(id.trim().to_owned());
    ok(&engine, &["kill", "sleeper"]);
    assert_eq!(ok(&engine, &["wait", "sleeper"]).trim(), "137");
    let (code, _, stderr) = berth(&engine, &["kill", "sleeper"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("is not running"), "{stderr}");

    ids.extend(remove_all(&engine));
    assert_clean(&engine, &ids);
}

#[test]
fn stop_sends_the_stop_signal_then_kills_after_the_timeout() {
    let engine = engine("ctr-stop");
    // Handles TERM: stops at once with its own code.
    ok(&engine, &["run", "-d", "--name", "polite", IMAGE, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]);
    let started = Instant::now();
    ok(&engine, &["stop", "polite"]);
    assert!(started.elapsed() < Duration::from_secs(5), "a TERM-handling container took {:?}", started.elapsed());
    assert_eq!(inspect(&engine, "polite")["State"]["ExitCode"], 0);

    // Ignores TERM, with a child that ignores it too: SIGKILL after the timeout.
    ok(&engine, &["run", "-d", "--name", "stubborn", IMAGE, "sh", "-c", "trap '' TERM; sh -c \"trap '' TERM; sleep 300\" & while true; do sleep 0.1; done"]);
    let started = Instant::now();
    ok(&engine, &["stop", "-t", "2", "stubborn"]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "stop -t 2 took {took:?}");
    let state = &inspect(&engine, "stubborn")["State"];
    assert_eq!(state["ExitCode"], 137);
    assert_eq!(state["Running"], false);

    // --stop-signal and restart.
    ok(&engine, &["run", "-d", "--name", "usr1", "--stop-signal", "USR1", IMAGE, "sh", "-c", "trap 'exit 11' USR1; while true; do sleep 0.1; done"]);
    ok(&engine, &["stop", "usr1"]);
    assert_eq!(inspect(&engine, "usr1")["State"]["ExitCode"], 11);
    ok(&engine, &["restart", "usr1"]);
    assert_eq!(inspect(&engine, "usr1")["State"]["Running"], true);
    // pause / unpause
    ok(&engine, &["pause", "usr1"]);
    assert_eq!(inspect(&engine, "usr1")["State"]["Status"], "paused");
    ok(&engine, &["unpause", "usr1"]);
    assert_eq!(inspect(&engine, "usr1")["State"]["Status"], "running");
    // rm without -f refuses a running container.
    let (code, _, stderr) = berth(&engine, &["rm", "usr1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("container is running: stop the container before removing or force remove"), "{stderr}");
    let ids = remove_all(&engine);
    assert_eq!(ids.len(), 3);
    assert_clean(&engine, &ids);
}

#[test]
fn an_oom_kill_is_reported() {
    let engine = engine("ctr-oom");
    let (code, _, _) = berth(&engine, &["run", "--name", "hog", "-m", "8m", IMAGE, "sh", "-c", "tail /dev/zero"]);
    assert_eq!(code, 137);
    let state = &inspect(&engine, "hog")["State"];
    assert_eq!(state["OOMKilled"], true, "{state}");
    assert_eq!(state["ExitCode"], 137);
    let host = &inspect(&engine, "hog")["HostConfig"];
    assert_eq!(host["Memory"], 8 << 20);
    // Without a limit the same container is not OOM-killed (it is stopped by us).
    ok(&engine, &["run", "-d", "--name", "free", IMAGE, "sleep", "300"]);
    ok(&engine, &["kill", "free"]);
    ok(&engine, &["wait", "free"]);
    assert_eq!(inspect(&engine, "free")["State"]["OOMKilled"], false);
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

fn ticks(engine: &NativeEngine) -> Vec<u64> {
    let out = ok(engine, &["logs", "ticker"]);
    out.lines().filter_map(|l| l.strip_prefix("tick ").and_then(|n| n.parse().ok())).collect()
}

#[test]
fn running_containers_and_their_logs_survive_an_engine_restart() {
    let mut engine = engine("ctr-restart");
    let id =
        ok(&engine, &["run", "-d", "--name", "ticker", IMAGE, "sh", "-c", "i=0; while true; do echo tick $i; echo warn $i >&2; i=$((i+1)); sleep 0.1; done"]);
    let id = id.trim().to_owned();
    wait_until("some ticks", Duration::from_secs(10), || ticks(&engine).len() >= 3);
    let pid = inspect(&engine, "ticker")["State"]["Pid"].as_i64().expect("pid");

    engine.kill_and_restart();
    // Still running, same process, still logging.
    let state = inspect(&engine, "ticker")["State"].clone();
    assert_eq!(state["Running"], true, "{state}");
    assert_eq!(state["Pid"].as_i64(), Some(pid));
    let before = ticks(&engine).len();
    wait_until("ticks after the restart", Duration::from_secs(10), || ticks(&engine).len() > before + 3);
    let all = ticks(&engine);
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "lost or repeated lines: {all:?}");

    // --tail, --timestamps, stderr apart, --since in the future shows nothing.
    // The tail counts lines of both streams, as docker's does.
    let (_, out, err) = berth(&engine, &["logs", "--tail", "2", "ticker"]);
    assert_eq!(out.lines().count() + err.lines().count(), 2, "{out}{err}");
    let (_, out, err) = berth(&engine, &["logs", "-t", "--tail", "1", "ticker"]);
    let stamped = out + &err;
    assert!(stamped.starts_with("20") && (stamped.contains("Z tick ") || stamped.contains("Z warn ")), "{stamped}");
    let (_, _, stderr) = berth(&engine, &["logs", "--tail", "1", "ticker"]);
    assert!(stderr.starts_with("warn "), "{stderr}");
    let future = (std::time::SystemTime::now() + Duration::from_secs(3600)).duration_since(std::time::UNIX_EPOCH).expect("time").as_secs().to_string();
    assert_eq!(ok(&engine, &["logs", "--since", &future, "ticker"]), "");
    assert_eq!(ok(&engine, &["logs", "--until", "1", "ticker"]), "");
    assert!(!ok(&engine, &["logs", "--until", &future, "ticker"]).is_empty());

    // The adopted container stops normally, and its exit is recorded.
    ok(&engine, &["stop", "-t", "1", "ticker"]);
    assert_eq!(inspect(&engine, "ticker")["State"]["Running"], false);
    // logs -f of a stopped container ends.
    let followed = ok(&engine, &["logs", "-f", "ticker"]);
    assert!(followed.lines().count() >= all.len());
    let ids = remove_all(&engine);
    assert!(ids.contains(&id));
    assert_clean(&engine, &ids);
}

#[test]
fn restart_policies_count_and_a_stop_is_final() {
    let engine = engine("ctr-policy");
    ok(&engine, &["run", "-d", "--name", "flaky", "--restart", "on-failure:2", IMAGE, "sh", "-c", "exit 1"]);
    wait_until("two restarts, then stopped", Duration::from_secs(20), || {
        let state = inspect(&engine, "flaky");
        state["RestartCount"] == 2 && state["State"]["Status"] == "exited"
    });
    assert_eq!(inspect(&engine, "flaky")["State"]["ExitCode"], 1);

    // on-failure does not restart a success.
    ok(&engine, &["run", "-d", "--name", "fine", "--restart", "on-failure", IMAGE, "true"]);
    ok(&engine, &["wait", "fine"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&engine, "fine")["RestartCount"], 0);

    // always restarts even a success, until stopped.
    ok(&engine, &["run", "-d", "--name", "phoenix", "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2"]);
    wait_until("phoenix to restart", Duration::from_secs(20), || inspect(&engine, "phoenix")["RestartCount"].as_u64() >= Some(2));
    ok(&engine, &["stop", "-t", "1", "phoenix"]);
    let count = inspect(&engine, "phoenix")["RestartCount"].clone();
    std::thread::sleep(Duration::from_secs(1));
    let after = inspect(&engine, "phoenix");
    assert_eq!(after["RestartCount"], count, "restarted after a stop");
    assert_eq!(after["State"]["Running"], false);

    let (code, _, stderr) = berth(&engine, &["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot specify both --restart and --rm"), "{stderr}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[test]
fn security_defaults_follow_docker() {
    let engine = engine("ctr-security");
    let run = |args: &[&str]| -> (i32, String, String) {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        berth(&engine, &full)
    };
    // Docker's default capability set, exactly.
    let (_, out, _) = run(&[IMAGE, "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(out.split_whitespace().nth(1), Some("00000000a80425fb"), "{out}");
    let (_, out, _) = run(&["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", IMAGE, "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(out.split_whitespace().nth(1), Some("0000000000000400"), "{out}");
    // The seccomp profile blocks namespace creation...
    let (code, _, err) = run(&[IMAGE, "unshare", "-n", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    let (_, out, _) = run(&[IMAGE, "grep", "Seccomp:", "/proc/self/status"]);
    assert!(out.contains('2'), "no seccomp filter: {out}");
    // ...and stands aside when asked.
    let (code, _, err) = run(&["--security-opt", "seccomp=unconfined", "--cap-add", "SYS_ADMIN", IMAGE, "unshare", "-n", "true"]);
    assert_eq!(code, 0, "{err}");
    // no-new-privileges when asked.
    let (_, out, _) = run(&["--security-opt", "no-new-privileges", IMAGE, "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(out.contains('1'), "{out}");
    // A non-root user gets no effective capabilities and its groups.
    let (_, out, _) = run(&["-u", "app", IMAGE, "sh", "-c", "id; grep CapEff /proc/self/status"]);
    assert!(out.contains("uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"), "{out}");
    assert!(out.contains("0000000000000000"), "{out}");
    // Masked and read-only /proc paths.
    // /proc/timer_list is masked (kernels differ in which masked paths exist; this one
    // exists on the test machines and is non-empty on the host).
    assert!(!std::fs::read_to_string("/proc/timer_list").unwrap_or_default().is_empty(), "the host's /proc/timer_list is empty");
    let (_, out, _) = run(&[IMAGE, "sh", "-c", "wc -c < /proc/timer_list; echo x > /proc/sys/kernel/domainname && echo wrote"]);
    assert!(out.starts_with('0'), "/proc/timer_list is readable: {out}");
    assert!(!out.contains("wrote"), "/proc/sys is writable: {out}");
    // The container sees only its own processes, and cannot signal the engine.
    let engine_pid = engine.child.id().to_string();
    let (_, out, _) = run(&[IMAGE, "sh", "-c", &format!("ls /proc | grep -c '^[0-9]'; kill -0 {engine_pid} && echo reached")]);
    let count: u32 = out.lines().next().and_then(|l| l.trim().parse().ok()).expect("a count");
    assert!(count <= 4, "the container sees {count} processes");
    assert!(!out.contains("reached"), "{out}");
    // --privileged: every capability the engine holds, no seccomp filter.
    let (code, out, err) = run(&["--privileged", IMAGE, "grep", "-E", "CapEff|Seccomp:", "/proc/self/status"]);
    assert!(out.contains("Seccomp:\t0"), "exit {code}: {out}{err}");
    let held = std::fs::read_to_string(format!("/proc/{engine_pid}/status"))
        .expect("engine status")
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_owned()))
        .expect("CapBnd");
    assert!(out.contains(&held), "privileged caps are not the engine's {held}: {out}");
    // Read-only root, with a writable tmpfs.
    let (code, out, _) =
        run(&["--read-only", "--tmpfs", "/scratch", IMAGE, "sh", "-c", "touch /x 2>/dev/null && echo root-writable; touch /scratch/y && echo tmpfs-ok"]);
    assert_eq!(code, 0);
    assert_eq!(out, "tmpfs-ok\n");
    let ids = remove_all(&engine);
    assert!(ids.is_empty(), "--rm left {ids:?}");
}

#[test]
fn the_image_config_and_create_options_are_honoured() {
    let engine = engine_with(
        "ctr-config",
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo \"$GREETING from $(pwd) as $(id -un)\""],
            "Env": ["PATH=/bin:/sbin", "GREETING=hello"],
            "WorkingDir": "/srv",
            "User": "app",
            "StopSignal": "SIGUSR1",
            "Labels": {"from": "image"},
        }),
    );
    assert_eq!(ok(&engine, &["run", "--rm", IMAGE]), "hello from /srv as app\n");
    let env_file = engine.home.join("env");
    std::fs::write(&env_file, "# comment\nFROMFILE=yes\n").expect("env file");
    let out = ok(
        &engine,
        &[
            "run",
            "--rm",
            "-e",
            "GREETING=hi",
            "--env-file",
            &env_file.display().to_string(),
            "-w",
            "/tmp",
            "-u",
            "root",
            "--hostname",
            "box",
            IMAGE,
            "echo \"$GREETING $FROMFILE $(pwd) $(id -u) $(hostname) $HOSTNAME\"",
        ],
    );
    assert_eq!(out, "hi yes /tmp 0 box box\n");
    assert_eq!(ok(&engine, &["run", "--rm", "--entrypoint", "cat", IMAGE, "/srv/data.txt"]), "from the image\n");

    let id = ok(&engine, &["create", "--name", "made", "-l", "tier=front", IMAGE]).trim().to_owned();
    let made = inspect(&engine, "made");
    assert_eq!(made["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(made["Config"]["Labels"], json!({"from": "image", "tier": "front"}));
    assert_eq!(made["State"]["Status"], "created");
    assert_eq!(made["Path"], "/bin/sh");
    // Filters and formats.
    assert_eq!(ok(&engine, &["ps", "-a", "--filter", "label=tier=front", "--format", "{{.Names}}"]), "made\n");
    assert_eq!(ok(&engine, &["ps", "--filter", "status=created", "-q"]).trim(), &id[..12]);
    assert_eq!(ok(&engine, &["ps", "-q"]), "");
    ok(&engine, &["rename", "made", "renamed"]);
    let (code, _, stderr) = berth(&engine, &["create", "--name", "renamed", IMAGE]);
    assert_ne!(code, 0);
    assert!(stderr.contains("is already in use"), "{stderr}");

    // exec with -e, -u, -w, stdin; top.
    ok(&engine, &["run", "-d", "--name", "svc", "--entrypoint", "sleep", IMAGE, "300"]);
    let out = ok(&engine, &["exec", "-e", "X=1", "-u", "root", "-w", "/", "svc", "sh", "-c", "echo $X $(id -u) $(pwd)"]);
    assert_eq!(out, "1 0 /\n");
    let out = std::process::Command::new(berth_tests::bin("berth"))
        .args(["exec", "-i", "svc", "cat"])
        .env("BERTH_HOME", &engine.home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"piped\n")?;
            child.wait_with_output()
        })
        .expect("exec -i");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
    let (code, _, _) = berth(&engine, &["exec", "svc", "sh", "-c", "exit 9"]);
    assert_eq!(code, 9);
    // With a terminal: the process sees a pty; the exit code still comes back.
    let (code, out, _) = berth(&engine, &["exec", "-t", "svc", "sh", "-c", "tty; exit 4"]);
    assert_eq!(code, 4);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    // exec -d: runs on in the background.
    ok(&engine, &["exec", "-d", "-u", "root", "svc", "sh", "-c", "sleep 0.2; touch /tmp/detached"]);
    std::thread::sleep(Duration::from_secs(1));
    let listing = berth(&engine, &["exec", "-u", "root", "svc", "ls", "-la", "/tmp"]);
    assert!(listing.1.contains("detached"), "{listing:?}");
    let top = ok(&engine, &["top", "svc"]);
    assert!(top.contains("sleep 300"), "{top}");
    // The image is in use: rmi refuses.
    let (code, _, stderr) = berth(&engine, &["rmi", IMAGE]);
    assert_ne!(code, 0);
    assert!(stderr.contains("(must force) - container") && stderr.contains("is using its referenced image"), "{stderr}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
    ok(&engine, &["rmi", IMAGE]);
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let engine = engine("ctr-bad");
    let cases: [(&[&str], &str); 7] = [
        (&["run", "--rm", "-u", "ghost", IMAGE, "true"], "unable to find user ghost: no matching entries in passwd file"),
        (&["run", "--rm", IMAGE, "/no/such/command"], "/no/such/command"),
        (&["run", "--rm", "-m", "1k", IMAGE, "true"], "Minimum memory limit allowed is 6MB"),
        (&["run", "--rm", "--cpus", "64", IMAGE, "true"], "range of CPUs is from 0.01 to"),
        (&["run", "--rm", "--cap-add", "FLYING", IMAGE, "true"], "unknown capability"),
        (&["run", "--rm", "--stop-signal", "SIGNOPE", IMAGE, "true"], "invalid signal"),
        (&["run", "--rm", "--name", "bad name", IMAGE, "true"], "invalid container name"),
    ];
    for (args, message) in cases {
        let (code, _, stderr) = berth(&engine, args);
        assert_ne!(code, 0, "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: expected {message:?} in {stderr:?}");
    }
    let (code, _, _) = berth(&engine, &["run", "--rm", IMAGE, "/no/such/command"]);
    assert_eq!(code, 127);
    // Not an executable file: 126, as the container's files show.
    let (code, _, stderr) = berth(&engine, &["run", "--rm", IMAGE, "/etc"]);
    assert_eq!(code, 126, "{stderr}");
    // An image that is not there (and no registry to pull it from in this namespace).
    let (code, _, stderr) = berth(&engine, &["create", "127.0.0.1:9/absent:1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("absent"), "{stderr}");
    // A name in use.
    ok(&engine, &["create", "--name", "taken", IMAGE, "true"]);
    let (code, _, stderr) = berth(&engine, &["create", "--name", "taken", IMAGE, "true"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("The container name \"/taken\" is already in use") || stderr.contains("the container name \"/taken\" is already in use"),
        "{stderr}"
    );
    let (code, _, stderr) = berth(&engine, &["start", "nosuch"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("No such container: nosuch"), "{stderr}");
    // Only `taken` exists; everything the failures touched is gone.
    let all = ok(&engine, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all, "taken\n");
    let containers: Vec<_> = std::fs::read_dir(engine.home.join("engine/containers")).expect("dir").flatten().collect();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
    assert!(!Path::new(&engine.home.join("engine/containers")).read_dir().expect("dir").any(|_| true));
}

#[test]
fn runc_runs_the_same_containers() {
    let engine = load_image(NativeEngine::start_isolated_with("ctr-runc", &[("BERTH_RUNTIME", "runc")]), json!({}));
    let (code, out, err) = berth(&engine, &["run", "--name", "via-runc", IMAGE, "sh", "-c", "echo out; echo err >&2; grep CapEff /proc/self/status; exit 4"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(out, "out\nCapEff:\t00000000a80425fb\n");
    assert_eq!(err, "err\n");
    ok(&engine, &["run", "-d", "--name", "runc-sleeper", IMAGE, "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done"]);
    ok(&engine, &["stop", "runc-sleeper"]);
    assert_eq!(inspect(&engine, "runc-sleeper")["State"]["ExitCode"], 3);
    let (code, _, err) = berth(&engine, &["run", "--rm", IMAGE, "unshare", "-n", "true"]);
    assert_ne!(code, 0, "seccomp did not apply under runc");
    assert!(err.contains("Operation not permitted"), "{err}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[test]
fn a_health_check_flips_to_unhealthy() {
    let engine = engine_with(
        "ctr-health",
        json!({
            "Healthcheck": {"Test": ["CMD-SHELL", "test -f /tmp/healthy"], "Interval": 200_000_000u64, "Timeout": 2_000_000_000u64, "Retries": 2},
        }),
    );
    ok(&engine, &["run", "-d", "--name", "doc", IMAGE, "sh", "-c", "touch /tmp/healthy; exec sleep 300"]);
    assert_eq!(inspect(&engine, "doc")["Config"]["Healthcheck"]["Retries"], 2);
    wait_until("healthy", Duration::from_secs(15), || inspect(&engine, "doc")["State"]["Health"]["Status"] == "healthy");
    assert!(ok(&engine, &["ps", "--format", "{{.Status}}"]).contains("(healthy)"));
    assert_eq!(ok(&engine, &["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]), "doc\n");

    ok(&engine, &["exec", "doc", "rm", "/tmp/healthy"]);
    wait_until("unhealthy", Duration::from_secs(15), || inspect(&engine, "doc")["State"]["Health"]["Status"] == "unhealthy");
    let health = inspect(&engine, "doc")["State"]["Health"].clone();
    assert!(health["FailingStreak"].as_u64() >= Some(2), "{health}");
    let last = health["Log"].as_array().and_then(|l| l.last()).cloned().expect("a probe in the log");
    assert_eq!(last["ExitCode"], 1, "{last}");
    assert!(ok(&engine, &["ps", "--format", "{{.Status}}"]).contains("(unhealthy)"));

    // --health-cmd replaces the image's check; --no-healthcheck removes it.
    ok(&engine, &["run", "-d", "--name", "custom", "--health-cmd", "exit 0", "--health-interval", "200ms", IMAGE, "sleep", "300"]);
    wait_until("custom healthy", Duration::from_secs(15), || inspect(&engine, "custom")["State"]["Health"]["Status"] == "healthy");
    ok(&engine, &["run", "-d", "--name", "none", "--no-healthcheck", IMAGE, "sleep", "300"]);
    assert_eq!(inspect(&engine, "none")["State"]["Health"], Value::Null);
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[test]
fn stats_update_diff_export_and_cp() {
    let engine = engine("ctr-inspect-fs");
    ok(
        &engine,
        &[
            "run",
            "-d",
            "--name",
            "busy",
            "-m",
            "64m",
            "--pids-limit",
            "50",
            IMAGE,
            "sh",
            "-c",
            "echo new > /added.txt; echo changed >> /srv/data.txt; rm /etc/group; while true; do :; done",
        ],
    );
    wait_until("the changes", Duration::from_secs(10), || ok(&engine, &["diff", "busy"]).contains("D /etc/group"));
    let diff = ok(&engine, &["diff", "busy"]);
    for line in ["A /added.txt", "C /srv", "C /srv/data.txt", "D /etc/group"] {
        assert!(diff.lines().any(|l| l == line), "{line:?} missing from:\n{diff}");
    }

    // One reading: a busy loop uses CPU; the limits show.
    let stats = ok(&engine, &["stats", "--no-stream", "--format", "json", "busy"]);
    let reading: Value = serde_json::from_str(stats.trim()).expect("stats json");
    let cpu: f64 = reading["CPUPerc"].as_str().expect("cpu").trim_end_matches('%').parse().expect("a number");
    assert!(cpu > 10.0, "a busy loop at {cpu}% CPU");
    assert!(reading["MemUsage"].as_str().expect("mem").ends_with("/ 64MiB"), "{reading}");
    assert_eq!(reading["PIDs"], "1");

    // update applies to the running container's cgroup.
    ok(&engine, &["update", "--memory", "96m", "--pids-limit", "20", "--restart", "on-failure:3", "busy"]);
    let stats = ok(&engine, &["stats", "--no-stream", "--format", "json", "busy"]);
    assert!(stats.contains("/ 96MiB"), "{stats}");
    let updated = inspect(&engine, "busy");
    assert_eq!(updated["HostConfig"]["Memory"], 96 << 20);
    assert_eq!(updated["HostConfig"]["PidsLimit"], 20);
    assert_eq!(updated["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    let (code, _, stderr) = berth(&engine, &["update", "--memory", "1k", "busy"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("Minimum memory limit"), "{stderr}");

    // cp out: a file and a directory; symlinks stay links.
    let out = engine.home.join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    ok(&engine, &["cp", "busy:/srv/data.txt", &out.join("copy.txt").display().to_string()]);
    assert_eq!(std::fs::read_to_string(out.join("copy.txt")).expect("copied"), "from the image\nchanged\n");
    ok(&engine, &["cp", "busy:/srv", &out.display().to_string()]);
    assert!(out.join("srv/data.txt").is_file());
    let (code, _, stderr) = berth(&engine, &["cp", "busy:/nonexistent", &out.display().to_string()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("could not find the file /nonexistent in container busy"), "{stderr}");

    // export of a stopped container: its whole filesystem with the changes.
    ok(&engine, &["kill", "busy"]);
    ok(&engine, &["wait", "busy"]);
    let tar = engine.home.join("export.tar");
    ok(&engine, &["export", "-o", &tar.display().to_string(), "busy"]);
    let listing = std::process::Command::new("tar").args(["-tf"]).arg(&tar).output().expect("tar -t");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l.trim_start_matches("./") == "added.txt"), "{listing}");
    assert!(listing.lines().any(|l| l.trim_start_matches("./") == "bin/busybox"), "{listing}");
    assert!(!listing.lines().any(|l| l.trim_start_matches("./") == "etc/group"), "a deleted file was exported");

    // commit: the changes (an added file, a changed one, a deleted one) as a new image
    // with a changed config; the scratch layer file does not stay behind.
    let id = ok(&engine, &["commit", "-a", "me", "-m", "snapshot", "-c", "CMD [\"cat\", \"/added.txt\"]", "busy", "berth.test/committed:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/committed:1"]), "new\n");
    assert_eq!(ok(&engine, &["run", "--rm", "berth.test/committed:1", "cat", "/srv/data.txt"]), "from the image\nchanged\n");
    let (code, _, _) = berth(&engine, &["run", "--rm", "berth.test/committed:1", "test", "-e", "/etc/group"]);
    assert_ne!(code, 0, "/etc/group came back in the committed image");
    let history = ok(&engine, &["history", "berth.test/committed:1"]);
    assert!(history.lines().nth(1).is_some_and(|l| l.ends_with("snapshot")), "{history}");
    let tmp = engine.home.join("engine/tmp");
    assert_eq!(std::fs::read_dir(&tmp).expect("the engine's tmp/ (commit's scratch space)").count(), 0, "scratch files left in {}", tmp.display());
    let (code, _, stderr) = berth(&engine, &["commit", "no-such-container", "x:1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("No such container: no-such-container"), "{stderr}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_go_out_on_the_event_stream() {
    let engine = engine("ctr-events");
    let client = engine.client().await;
    let mut events = client.events(false, vec!["container".into()]).await.expect("subscribe");
    let e = engine.home.clone();
    let id = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| berth_tests::native::berth(&e, args);
        let out = run(&["run", "-d", "--name", "evented", "-m", "8m", IMAGE, "sh", "-c", "trap '' TERM; sleep 1; tail /dev/zero"]);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        run(&["wait", "evented"]);
        run(&["rm", "evented"]);
        id
    })
    .await
    .expect("cli");
    let mut seen: Vec<String> = Vec::new();
    let wanted = ["create", "start", "oom", "die", "destroy"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
        let event = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut events))
            .await
            .unwrap_or_else(|_| panic!("only saw {seen:?}"))
            .expect("stream open")
            .expect("event");
        if event.attributes.get("id") == Some(&id) {
            if event.action == "die" {
                assert_eq!(event.attributes.get("exitCode").map(String::as_str), Some("137"));
            }
            assert_eq!(event.attributes.get("name").map(String::as_str), Some("evented"));
            seen.push(event.action);
        }
    }
    let order: Vec<&str> = seen.iter().map(String::as_str).filter(|a| wanted.contains(a)).collect();
    assert_eq!(order, wanted, "events out of order");
    assert_clean(&engine, &BTreeSet::from([id]));
}

#[test]
fn cp_into_a_container_stays_inside_it() {
    let engine = engine("ctr-cp-in");
    ok(&engine, &["run", "-d", "--name", "box", IMAGE, "sleep", "300"]);
    let local = engine.home.join("local");
    std::fs::create_dir_all(local.join("dir/sub")).expect("dirs");
    std::fs::write(local.join("dir/sub/file.txt"), "inside\n").expect("file");
    std::fs::write(local.join("single.txt"), "one\n").expect("file");
    ok(&engine, &["cp", &local.join("dir").display().to_string(), "box:/srv"]);
    ok(&engine, &["cp", &local.join("single.txt").display().to_string(), "box:/tmp/renamed.txt"]);
    assert_eq!(ok(&engine, &["exec", "box", "cat", "/srv/dir/sub/file.txt", "/tmp/renamed.txt"]), "inside\none\n");
    // A symlink in the container that points at the host's / stays inside the container.
    let marker = engine.home.join("host-marker");
    ok(&engine, &["exec", "box", "ln", "-s", &engine.home.display().to_string(), "/escape"]);
    std::fs::write(local.join("host-marker"), "x").expect("file");
    let (code, _, stderr) = berth(&engine, &["cp", &local.join("host-marker").display().to_string(), "box:/escape/"]);
    assert!(!marker.exists(), "cp followed a container symlink onto the host");
    assert_ne!(code, 0, "the link's target does not exist in the container");
    assert!(stderr.contains("could not find the file /escape/ in container box"), "{stderr}");
    // A hostile archive from stdin is refused.
    let evil = fixtures::layer::tar(&[fixtures::Entry::File { path: "../../evil".into(), mode: 0o644, data: b"x".to_vec() }]);
    let mut child = std::process::Command::new(berth_tests::bin("berth"))
        .args(["cp", "-", "box:/tmp"])
        .env("BERTH_HOME", &engine.home)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cp -");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &evil).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing archive entry"), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, _, stderr) = berth(&engine, &["cp", &local.join("single.txt").display().to_string(), "box:/no/such/dir/x"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("could not find the file"), "{stderr}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[test]
fn init_forwards_signals_and_reaps() {
    let init = berth_tests::root().join("target/x86_64-unknown-linux-musl/debug/berth-monitor");
    assert!(init.is_file(), "{} is not built (cargo xtask test native builds it)", init.display());
    init_checks(load_image(NativeEngine::start_isolated_with("ctr-init", &[("BERTH_INIT", &init.display().to_string())]), json!({})));
}

/// The ordinary build's monitor is not static, so it cannot be an image's init: with no
/// BERTH_INIT, the engine takes the host's static tini (Debian's `tini`), as a user's
/// engine built with `cargo build` does.
#[test]
fn init_without_a_static_monitor_is_the_hosts_tini() {
    assert!(std::path::Path::new("/usr/bin/tini-static").is_file(), "tini-static (cargo xtask setup installs Debian's tini)");
    init_checks(engine("ctr-init-tini"));
}

fn init_checks(engine: NativeEngine) {
    // PID 1 is the init; the command is its child.
    let out = ok(&engine, &["run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"]);
    let mut lines = out.lines();
    assert!(lines.next().expect("pid 1").starts_with("/sbin/docker-init -- sh -c"), "{out}");
    assert_ne!(lines.next(), Some("1"), "{out}");
    // A shell that is not PID 1 dies of SIGTERM: stop is quick.
    ok(&engine, &["run", "-d", "--init", "--name", "quick", IMAGE, "sh", "-c", "sleep 300 & wait"]);
    let started = Instant::now();
    ok(&engine, &["stop", "-t", "20", "quick"]);
    assert!(started.elapsed() < Duration::from_secs(10), "stop took {:?}", started.elapsed());
    assert_eq!(inspect(&engine, "quick")["State"]["ExitCode"], 143);
    assert_eq!(inspect(&engine, "quick")["HostConfig"]["Init"], true);
    // Orphans are reaped: no zombie lingers.
    ok(&engine, &["run", "-d", "--init", "--name", "reaper", IMAGE, "sh", "-c", "sh -c 'sleep 0.2 &' ; sleep 300"]);
    std::thread::sleep(Duration::from_secs(1));
    let states = ok(&engine, &["exec", "reaper", "sh", "-c", "cat /proc/[0-9]*/stat | cut -d' ' -f3"]);
    assert!(!states.lines().any(|s| s == "Z"), "a zombie: {states}");
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[test]
fn restart_policies_apply_to_exits_while_the_engine_was_down() {
    let mut engine = engine("ctr-policy-restart");
    ok(&engine, &["run", "-d", "--name", "always", "--restart", "always", IMAGE, "sleep", "300"]);
    ok(&engine, &["run", "-d", "--name", "never", IMAGE, "sleep", "300"]);
    let first_pid = inspect(&engine, "always")["State"]["Pid"].as_i64().expect("pid");
    let id_always = inspect(&engine, "always")["Id"].as_str().expect("id").to_owned();
    let id_never = inspect(&engine, "never")["Id"].as_str().expect("id").to_owned();
    // The engine dies; both containers die while it is away.
    let runtime_root = engine.home.join("engine/runtime");
    engine.kill_and_restart_with(|| {
        for id in [&id_always, &id_never] {
            let status = std::process::Command::new("crun").arg("--root").arg(&runtime_root).args(["kill", id, "KILL"]).status().expect("crun kill");
            assert!(status.success());
        }
        std::thread::sleep(Duration::from_millis(500));
    });
    // Back up: the exits are recorded, and `always` came back with a new process.
    wait_until("always to run again", Duration::from_secs(15), || {
        let state = inspect(&engine, "always");
        state["State"]["Running"] == true && state["State"]["Pid"].as_i64() != Some(first_pid)
    });
    assert_eq!(inspect(&engine, "always")["RestartCount"], 1);
    let never = inspect(&engine, "never");
    assert_eq!(never["State"]["Status"], "exited");
    assert_eq!(never["State"]["ExitCode"], 137);
    let ids = remove_all(&engine);
    assert_clean(&engine, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_follows_resizes() {
    use berth_proto::v1::{AttachInput, ContainerRef, CreateContainerRequest};
    let engine = engine("ctr-resize");
    let client = engine.client().await;
    let mut containers = client.containers();
    let id = containers
        .create(CreateContainerRequest {
            image: IMAGE.into(),
            cmd: vec!["sh".into(), "-c".into(), "while true; do stty size; sleep 0.1; done".into()],
            tty: true,
            stop_timeout: -1,
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .id;
    let (sender, receiver) = tokio::sync::mpsc::channel::<AttachInput>(4);
    sender.send(AttachInput { id: id.clone(), rows: 30, cols: 100, ..Default::default() }).await.expect("send");
    let mut output = containers.attach(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.expect("attach").into_inner();
    containers.start(ContainerRef { id: id.clone() }).await.expect("start");
    let mut seen = String::new();
    let mut wait_for = async |wanted: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(wanted) {
            let chunk = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut output))
                .await
                .unwrap_or_else(|_| panic!("no {wanted:?} in {seen:?}"))
                .expect("open")
                .expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk.data));
        }
    };
    wait_for("30 100", &mut seen).await;
    sender.send(AttachInput { rows: 40, cols: 120, ..Default::default() }).await.expect("resize");
    wait_for("40 120", &mut seen).await;
    drop(sender);
    let e = engine.home.clone();
    tokio::task::spawn_blocking(move || berth_tests::native::berth(&e, &["rm", "-f", &id])).await.expect("rm");
}

/// SIGTERM stops the engine while an exec with an open input is attached (as Berth
/// Desktop's terminal keeps one); the container and its exec outlive the engine, as
/// containers do. The engine used to wait for the exec's shell to end.
#[test]
fn sigterm_stops_the_engine_while_an_exec_is_attached() {
    use std::io::{BufRead, Write};
    let mut engine = engine("ctr-sigterm-exec");
    ok(&engine, &["run", "-d", "--name", "box", IMAGE, "sleep", "300"]);
    let mut exec = std::process::Command::new(berth_tests::bin("berth"))
        .args(["exec", "-i", "-t", "box", "sh"])
        .env("BERTH_HOME", &engine.home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("berth exec");
    let mut input = exec.stdin.take().expect("stdin");
    input.write_all(b"echo attached\n").expect("write");
    // With a tty the shell echoes the typed line first; wait for its output line.
    let mut reader = std::io::BufReader::new(exec.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 {
            panic!("the exec ended before it answered: {seen:?}");
        }
        seen.push_str(&line);
        if line.trim_end() == "attached" {
            break;
        }
    }
    let pid = engine.child.id().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = engine.child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the engine did not stop on SIGTERM while an exec was attached");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "engine exit: {status}");
    drop(input);
    let _ = exec.kill();
    let _ = exec.wait();
    // The container outlived the engine.
    engine.kill_and_restart();
    assert_eq!(inspect(&engine, "box")["State"]["Status"], "running");
}

/// A second engine on a state directory in use refuses before it touches anything:
/// no sweep of `tmp/` and `ingest/` (a running pull's files), no recovery of the
/// first engine's containers, no socket. It used to do all of that, then fail to bind.
#[test]
fn a_second_engine_on_the_same_state_is_refused_and_changes_nothing() {
    let engine = engine("ctr-second-engine");
    ok(&engine, &["run", "-d", "--name", "box", IMAGE, "sleep", "300"]);
    let state = engine.home.join("engine");
    let in_flight = [state.join("tmp/in-flight"), state.join("content/ingest/in-flight")];
    for file in &in_flight {
        std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
        std::fs::write(file, b"a pull's partial layer").expect("write");
    }
    let other_socket = engine.home.join("run/second.sock");
    let out = std::process::Command::new(berth_tests::bin("berth-agent"))
        .arg("--unix")
        .arg(&other_socket)
        .arg("--root")
        .arg(&state)
        .output()
        .expect("run a second berth-agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second engine on one state directory started: {stderr}");
    let pid = engine.child.id();
    assert!(
        stderr.contains(&format!("another Berth engine (pid {pid}) is using {}", state.display())),
        "the refusal should name the engine that holds the directory: {stderr}"
    );
    for file in &in_flight {
        assert!(file.exists(), "{} was swept by the refused engine", file.display());
    }
    assert!(!other_socket.exists(), "the refused engine made its socket");
    assert_eq!(inspect(&engine, "box")["State"]["Status"], "running");
    // The first engine still answers, and a kill -9 frees the directory for the next.
    let mut engine = engine;
    engine.kill_and_restart();
    assert_eq!(inspect(&engine, "box")["State"]["Status"], "running");
}

/// Docker's default seccomp profile, as Berth applies it: `socket(AF_VSOCK)` and io_uring
/// fail with EPERM (in the VM a container could otherwise reach the agent's vsock ports),
/// ptrace and process_vm_readv are open on kernels 4.8 and later without SYS_PTRACE,
/// and `--security-opt apparmor=…|label=…` are accepted as docker accepts them where
/// neither system runs. Each of these differed before.
#[test]
fn the_default_seccomp_profile_is_dockers() {
    let probe = std::fs::read(berth_tests::root().join("target/x86_64-unknown-linux-musl/debug/berth-netprobe"))
        .expect("berth-netprobe (built by `cargo xtask test native`)");
    let image = fixtures::container_image_with(json!({}), vec![fixtures::Entry::File { path: "bin/netprobe".into(), mode: 0o755, data: probe }]);
    let engine = NativeEngine::start_isolated("ctr-seccomp");
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&image, IMAGE)).expect("write archive");
    ok(&engine, &["load", "-i", &archive.display().to_string()]);
    let probe = |extra: &[&str], call: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "netprobe", "syscall", call]);
        ok(&engine, &args).trim().to_owned()
    };
    assert_eq!(probe(&[], "socket-vsock"), "errno 1", "AF_VSOCK must be refused by the filter");
    assert_eq!(probe(&[], "io-uring"), "errno 1", "io_uring must be refused by the filter");
    assert_ne!(probe(&[], "ptrace"), "errno 1", "ptrace is open on this kernel, as in docker's profile");
    assert_eq!(probe(&[], "process-vm-readv"), "ok");
    // The refusals are the filter's: without it the kernel answers otherwise.
    assert_ne!(probe(&["--security-opt", "seccomp=unconfined"], "socket-vsock"), "errno 1");
    assert_eq!(probe(&["--security-opt", "apparmor=unconfined", "--security-opt", "label=disable"], "process-vm-readv"), "ok");
    let (code, _, err) = berth(&engine, &["run", "--rm", "--security-opt", "label=bogus", IMAGE, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid --security-opt"), "{err}");
}

/// A kill between a create's first steps (its anonymous volumes, its folder) and its
/// record used to leave orphans nothing swept: now the next start removes them.
#[test]
fn a_create_killed_before_its_record_leaves_nothing_behind() {
    let engine = NativeEngine::start_isolated_with("ctr-create-crash", &[("BERTH_FAILPOINT", "container-create-before-record")]);
    let mut engine = load_image(engine, json!({"Volumes": {"/from-image": {}}}));
    let (code, _, _) = berth(&engine, &["create", "--name", "doomed", "-v", "/data", IMAGE, "true"]);
    assert_ne!(code, 0, "the engine should have stopped at the failpoint");
    let containers = engine.home.join("engine/containers");
    let volumes_dir = engine.home.join("engine/volumes");
    let left =
        |dir: &Path| std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>()).unwrap_or_default();
    assert!(!left(&containers).is_empty(), "the failpoint came too early: nothing was made");
    engine.env.clear();
    engine.kill_and_restart();
    assert_eq!(ok(&engine, &["ps", "-aq"]), "");
    assert_eq!(ok(&engine, &["volume", "ls", "-q"]), "", "anonymous volumes of the unfinished create are left");
    assert_eq!(left(&containers), Vec::<String>::new(), "files of the unfinished create are left");
    let volume_files = left(&volumes_dir);
    assert!(volume_files.iter().all(|f| !f.chars().all(|c| c.is_ascii_hexdigit())), "volume folders left: {volume_files:?}");
    // Creates work as before.
    ok(&engine, &["create", "--name", "fine", "-v", "/data", IMAGE, "true"]);
    assert_eq!(ok(&engine, &["volume", "ls", "-q"]).lines().count(), 2);
}
