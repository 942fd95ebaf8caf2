//! `cargo xtask bench <name>`: benchmarks, not timed tests. Each prints its medians and
//! ratios; the code lives in tests/benches/ and uses the same builders as the tests.

use anyhow::{bail, Result};

use crate::shell;

const BENCHES: &[&str] = &["vm-boot", "pull", "run", "net", "compose", "api"];

pub fn run(args: &[String]) -> Result<()> {
    let Some(name) = args.first() else {
        bail!("which benchmark? one of: {}", BENCHES.join(", "));
    };
    match name.as_str() {
        "vm-boot" => {
            crate::vm_image::build()?;
            shell::run(
                shell::cargo()
                    .args(["bench", "--package", "berth-tests", "--bench", "vm_boot"])
                    .current_dir(crate::root()),
            )
        }
        "pull" => pull(args.get(1..).unwrap_or_default()),
        "run" => run_latency(),
        "net" => net_throughput(),
        "compose" => compose_up_down(),
        "api" => docker_api(),
        other => bail!("unknown benchmark {other:?}; one of: {}", BENCHES.join(", ")),
    }
}

/// Pull of the peers' 100 MiB image from their local registry: Berth (release build,
/// native engine) against dockerd and podman from Debian's packages, interleaved in one
/// run by the peers' bench.py, the busybox base layer present for all, as in
/// shared/peers/measure.sh. `BENCH_RUNS` (default 7).
fn pull(_args: &[String]) -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the pull benchmark uses the shared peers (dockerd, podman, their registry)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    shell::run(shell::cargo().args(["build", "--release", "--package", "berth-cli", "--package", "berth-agent"]).current_dir(crate::root()))?;
    let berth = crate::root().join("target/release/berth");
    let home = std::env::temp_dir().join("berth-bench-pull");
    let _ = std::fs::remove_dir_all(&home);
    let mut engine = Command::new(&berth)
        .args(["serve", "--native"])
        .env("BERTH_HOME", &home)
        .env("DOCKER_CONFIG", home.join("docker-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let socket = home.join("run/berth.sock");
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "7".into());
    let b = format!("BERTH_HOME={} {}", home.display(), berth.display());
    let img = "127.0.0.1:5000/big:latest";
    let script = format!(
        ". {common} && {b} pull -q 127.0.0.1:5000/busybox:latest >/dev/null && \
         docker pull -q 127.0.0.1:5000/busybox:latest >/dev/null && podman pull -q 127.0.0.1:5000/busybox:latest >/dev/null && \
         python3 {bench} --runs {runs} --warmup 1 --title 'Pull of {img} (busybox base layer present)' \
           --case 'docker pull|docker pull -q {img}' --prep 'docker pull|docker rmi -f {img} >/dev/null 2>&1; true' \
           --case 'podman pull|podman pull -q {img}' --prep 'podman pull|podman rmi -f {img} >/dev/null 2>&1; true' \
           --case 'berth pull|{b} pull -q {img}' --prep 'berth pull|{b} rmi -f {img} >/dev/null 2>&1; true'",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
    );
    let result = shell::run(Command::new("bash").args(["-c", &script]));
    let _ = engine.kill();
    let _ = engine.wait();
    let _ = std::fs::remove_dir_all(&home);
    result
}

/// A release `berth serve --native` in a scratch BERTH_HOME, for benchmarks. It runs in
/// a network namespace of its own (loopback only), so its bridges and nftables rules
/// never touch the machine's network; images come in with `docker save | berth load`.
struct BenchEngine {
    berth: std::path::PathBuf,
    home: std::path::PathBuf,
    child: std::process::Child,
    /// Holds the engine's network namespace.
    holder: std::process::Child,
}

impl BenchEngine {
    fn start(name: &str) -> Result<BenchEngine> {
        shell::run(
            shell::cargo()
                .args(["build", "--release", "--package", "berth-cli", "--package", "berth-agent", "--package", "berth-monitor"])
                .current_dir(crate::root()),
        )?;
        // A static monitor too: `--init` (compose's `init: true`) runs it as PID 1.
        shell::run(
            shell::cargo()
                .args(["build", "--release", "--package", "berth-monitor", "--target", crate::vm_image::MUSL_TARGET])
                .current_dir(crate::root()),
        )?;
        let init = crate::root().join(format!("target/{}/release/berth-monitor", crate::vm_image::MUSL_TARGET));
        let berth = crate::root().join("target/release/berth");
        let home = std::env::temp_dir().join(format!("berth-bench-{name}"));
        let _ = std::fs::remove_dir_all(&home);
        let mut holder = std::process::Command::new("unshare")
            .args(["--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"])
            .stdin(std::process::Stdio::null())
            .spawn()?;
        let comm = format!("/proc/{}/comm", holder.id());
        for _ in 0..400 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let child = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", holder.id()))
            .arg("--")
            .arg(&berth)
            .args(["serve", "--native"])
            .env("BERTH_HOME", &home)
            .env("DOCKER_CONFIG", home.join("docker-config"))
            .env("BERTH_INIT", &init)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = holder.kill();
                let _ = holder.wait();
                return Err(e.into());
            }
        };
        let socket = home.join("run/berth.sock");
        // Until it accepts (the file appears a moment before listen()).
        for _ in 0..400 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        Ok(BenchEngine { berth, home, child, holder })
    }

    /// The command prefix that runs something in the engine's network namespace.
    fn in_netns(&self) -> String {
        format!("nsenter --net=/proc/{}/ns/net --", self.holder.id())
    }

    /// `BERTH_HOME=... berth` for shell scripts.
    fn cli(&self) -> String {
        format!("BERTH_HOME={} {}", self.home.display(), self.berth.display())
    }
}

impl Drop for BenchEngine {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .args(["-c", &format!("for c in $({cli} ps -aq); do {cli} rm -f $c >/dev/null; done", cli = self.cli())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok())))
        .unwrap_or(0)
}

/// `run --rm busybox true`: Berth (release, native) against dockerd, podman (crun) and
/// raw `crun run` on the peers' prepared bundle, interleaved in one run by the peers'
/// bench.py. Then the idle engine's RSS and one monitor's. `BENCH_RUNS` (default 15).
fn run_latency() -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the run benchmark uses the shared peers (dockerd, podman, their registry)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    let engine = BenchEngine::start("run")?;
    let b = engine.cli();
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "15".into());
    let script = format!(
        ". {common} && docker pull -q $IMG_BUSYBOX >/dev/null && docker save $IMG_BUSYBOX | {b} load >/dev/null && \
         python3 {bench} --runs {runs} --warmup 2 --title 'run --rm busybox true, {runs} runs, interleaved' \
           --case \"docker run --rm busybox true|docker run --rm busybox true\" \
           --case \"docker run --rm --network none busybox true|docker run --rm --network none busybox true\" \
           --case \"podman run --rm (crun)|podman --runtime crun run --rm $PODMAN_ULIMITS $IMG_BUSYBOX true\" \
           --case \"crun run (raw bundle)|crun run --bundle $PEER_BUNDLE bench-crun-\\$\\$\" \
           --case \"berth run --rm (crun, default bridge)|{b} run --rm $IMG_BUSYBOX true\" \
           --case \"berth run --rm --network none|{b} run --rm --network none $IMG_BUSYBOX true\"",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
    );
    shell::run(Command::new("bash").args(["-c", &script]))?;

    // Idle: the engine after the runs settle; then one running container's monitor.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let engine_rss = rss_kib(engine.child.id());
    let started = shell::output(Command::new("bash").args([
        "-c",
        &format!(". {} && {b} run -d $IMG_BUSYBOX sleep 60", peers.join("common.sh").display()),
    ]))?;
    let id = started.trim().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let monitor_pid: u32 = std::fs::read_to_string(engine.home.join("engine/containers").join(&id).join("monitor.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let monitor_rss = rss_kib(monitor_pid);
    println!("\n| process | RSS MiB | target |");
    println!("|---|---|---|");
    println!("| berth-agent (engine), idle after the runs | {:.1} | < 30 |", engine_rss as f64 / 1024.0);
    println!("| berth-monitor, one container running | {:.1} | < 3 |", monitor_rss as f64 / 1024.0);
    Ok(())
}

/// TCP throughput, Berth (release, native, in its own network namespace) against
/// dockerd, interleaved in one run: from the host's loopback to a published port, and
/// from one container to another by name on a user network. Both engines run the same
/// image (busybox and the static netprobe, imported from one tar); each case moves
/// `BENCH_MIB` MiB (default 1024), `BENCH_RUNS` times (default 5).
fn net_throughput() -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the net benchmark uses the shared peers (dockerd)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    shell::run(
        shell::cargo()
            .args(["build", "--release", "--package", "berth-netprobe", "--target", crate::vm_image::MUSL_TARGET])
            .current_dir(crate::root()),
    )?;
    let probe = crate::root().join(format!("target/{}/release/berth-netprobe", crate::vm_image::MUSL_TARGET));
    let engine = BenchEngine::start("net")?;
    let b = engine.cli();
    let ns = engine.in_netns();
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "5".into());
    let mib = std::env::var("BENCH_MIB").unwrap_or_else(|_| "1024".into());
    let rootfs = engine.home.join("netimage");
    let script = format!(
        "set -e; . {common}
         mkdir -p {rootfs}/bin && cp \"$(command -v busybox)\" {rootfs}/bin/busybox && ln -sf busybox {rootfs}/bin/sh && ln -sf busybox {rootfs}/bin/sleep
         cp {probe} {rootfs}/bin/netprobe && tar -C {rootfs} -cf {rootfs}.tar .
         docker import {rootfs}.tar berth-bench/net:1 >/dev/null && {b} import {rootfs}.tar berth-bench/net:1 >/dev/null
         cleanup() {{ docker rm -f bnsrv bncli >/dev/null 2>&1 || true; docker network rm bnnet >/dev/null 2>&1 || true; }}
         cleanup; trap cleanup EXIT
         berth() {{ {b} \"$@\"; }}
         for e in docker berth; do
           $e network create bnnet >/dev/null
           $e run -d --name bnsrv --network bnnet -p 15001:5001 berth-bench/net:1 netprobe tcp-sink 5001 >/dev/null
           $e run -d --name bncli --network bnnet berth-bench/net:1 sleep 3600 >/dev/null
         done
         sleep 1
         python3 {bench} --runs {runs} --warmup 1 --title 'TCP, {mib} MiB per run, interleaved (lower is faster)' \
           --case \"docker host->published port|{probe} tcp-send 127.0.0.1:15001 {mib}\" \
           --case \"berth host->published port|{ns} {probe} tcp-send 127.0.0.1:15001 {mib}\" \
           --case \"docker container->container|docker exec bncli netprobe tcp-send bnsrv:5001 {mib}\" \
           --case \"berth container->container|{b} exec bncli netprobe tcp-send bnsrv:5001 {mib}\"",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
        rootfs = rootfs.display(),
        probe = probe.display(),
    );
    shell::run(Command::new("bash").args(["-c", &script]))
}

/// The 3-service stack of the compose tests (web publishing a port, app waiting for a
/// healthy db, a named volume, a user network with an alias), in the compose file
/// format docker-compose v1 reads too.
const BENCH_STACK: &str = r#"version: "2.4"
services:
  web:
    image: ${IMAGE}
    init: true
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:18090:80"]
    volumes: ["./www:/www:ro"]
    networks: [back]
    depends_on: [app]
  app:
    image: ${IMAGE}
    init: true
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    networks:
      back:
        aliases: [api]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: ${IMAGE}
    init: true
    command: ["sh", "-c", "echo ready > /data/state; exec sleep 3600"]
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "cat", "/data/state"]
      interval: 1s
      retries: 30
networks:
  back: {}
volumes:
  dbdata: {}
"#;

/// `compose up -d` then `down -v` of the 3-service stack: Berth's compose (release,
/// native engine in its own network namespace) against docker-compose v1 on dockerd
/// (Debian's packages), interleaved in one run. `BENCH_RUNS` (default 7).
fn compose_up_down() -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the compose benchmark uses the shared peers (dockerd, docker-compose)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    let engine = BenchEngine::start("compose")?;
    let b = engine.cli();
    let dir = engine.home.join("stack");
    std::fs::create_dir_all(dir.join("www"))?;
    std::fs::write(dir.join("www/index.html"), "hello\n")?;
    std::fs::write(dir.join("docker-compose.yml"), BENCH_STACK)?;
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "7".into());
    let script = format!(
        "set -e; . {common}; export IMAGE=$IMG_BUSYBOX; cd {dir}
         docker pull -q $IMG_BUSYBOX >/dev/null && docker save $IMG_BUSYBOX | {b} load >/dev/null
         docker-compose -p benchstack down -v >/dev/null 2>&1 || true
         python3 {bench} --runs {runs} --warmup 1 --title 'compose up -d, then down -v: 3 services, health-gated, {runs} runs, interleaved' \
           --case \"docker-compose v1 on dockerd|docker-compose -p benchstack up -d >/dev/null 2>&1 && docker-compose -p benchstack down -v >/dev/null 2>&1\" \
           --case \"berth compose|{b} compose -p benchstack up -d >/dev/null 2>&1 && {b} compose -p benchstack down -v >/dev/null 2>&1\"",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
        dir = dir.display(),
    );
    shell::run(Command::new("bash").args(["-c", &script]))
}

/// The docker CLI through Berth's Docker Engine API socket (release, native engine in
/// its own network namespace) against the same CLI through dockerd's, interleaved in
/// one run: `run --rm busybox true` and `ps`. `BENCH_RUNS` (default 15).
fn docker_api() -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the api benchmark uses the shared peers (dockerd)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    let engine = BenchEngine::start("api")?;
    let b = engine.cli();
    let socket = engine.home.join("run/docker.sock");
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "15".into());
    let script = format!(
        ". {common} && docker pull -q $IMG_BUSYBOX >/dev/null && docker save $IMG_BUSYBOX | {b} load >/dev/null && \
         for i in 1 2 3; do docker run -d $IMG_BUSYBOX sleep 600 >/dev/null; DOCKER_HOST=unix://{socket} docker run -d $IMG_BUSYBOX sleep 600 >/dev/null; done && \
         python3 {bench} --runs {runs} --warmup 2 --title 'the docker CLI through each engine API socket, {runs} runs, interleaved' \
           --case \"docker run --rm busybox true (dockerd)|docker run --rm $IMG_BUSYBOX true\" \
           --case \"docker run --rm busybox true (berth)|DOCKER_HOST=unix://{socket} docker run --rm $IMG_BUSYBOX true\" \
           --case \"docker ps, 3 running (dockerd)|docker ps >/dev/null\" \
           --case \"docker ps, 3 running (berth)|DOCKER_HOST=unix://{socket} docker ps >/dev/null\"; \
         docker rm -f $(docker ps -q --filter ancestor=$IMG_BUSYBOX) >/dev/null 2>&1; true",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
        socket = socket.display(),
    );
    shell::run(Command::new("bash").args(["-c", &script]))
}
