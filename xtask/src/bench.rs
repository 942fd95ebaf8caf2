//! `cargo xtask bench <name>`: benchmarks, not timed tests. Each prints its medians and
//! ratios; the code lives in tests/benches/ and uses the same builders as the tests.

use anyhow::{bail, Result};

use crate::shell;

const BENCHES: &[&str] = &["vm-boot", "pull", "run", "net", "compose", "api", "shares", "vm-memory", "gui", "build", "load", "transport"];

pub fn run(args: &[String]) -> Result<()> {
    let Some(name) = args.first() else {
        bail!("which benchmark? one of: {}", BENCHES.join(", "));
    };
    match name.as_str() {
        "vm-boot" => {
            let arch = match args.get(1..).unwrap_or_default() {
                [] => crate::vm_image::Arch::X86_64,
                [flag, arch] if flag == "--arch" => crate::vm_image::Arch::parse(arch)?,
                _ => bail!("usage: cargo xtask bench vm-boot [--arch x86_64|arm64]"),
            };
            crate::vm_image::build_for(arch.default_kernel(), arch)?;
            shell::run(
                shell::cargo().args(["bench", "--package", "berth-tests", "--bench", "vm_boot"]).env("BERTH_VM_ARCH", arch.name()).current_dir(crate::root()),
            )
        }
        "pull" => pull(args.get(1..).unwrap_or_default()),
        "run" => run_latency(),
        "net" => net_throughput(),
        "compose" => compose_up_down(),
        "api" => docker_api(),
        "shares" => shares(),
        "vm-memory" => vm_memory(),
        "gui" => gui(),
        "build" => build(),
        "load" => load(),
        "transport" => {
            crate::vm_image::build()?;
            shell::run(shell::cargo().args(["build", "--package", "berth-cli", "--package", "berth-agent"]).current_dir(crate::root()))?;
            shell::run(shell::cargo().args(["build", "--package", "berth-netprobe", "--target", crate::vm_image::MUSL_TARGET]).current_dir(crate::root()))?;
            shell::run(shell::cargo().args(["bench", "--package", "berth-tests", "--bench", "transport"]).current_dir(crate::root()))
        }
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
    let home = bench_home("pull")?;
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
            shell::cargo().args(["build", "--release", "--package", "berth-monitor", "--target", crate::vm_image::MUSL_TARGET]).current_dir(crate::root()),
        )?;
        let init = crate::root().join(format!("target/{}/release/berth-monitor", crate::vm_image::MUSL_TARGET));
        let berth = crate::root().join("target/release/berth");
        let home = bench_home(name)?;
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
    let started = shell::output(Command::new("bash").args(["-c", &format!(". {} && {b} run -d $IMG_BUSYBOX sleep 60", peers.join("common.sh").display())]))?;
    let id = started.trim().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let monitor_pid: u32 =
        std::fs::read_to_string(engine.home.join("engine/containers").join(&id).join("monitor.pid")).ok().and_then(|p| p.trim().parse().ok()).unwrap_or(0);
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
        shell::cargo().args(["build", "--release", "--package", "berth-netprobe", "--target", crate::vm_image::MUSL_TARGET]).current_dir(crate::root()),
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

/// A fresh home for Berth's engine in a benchmark, beside the peers' data roots
/// (/var/lib/peer-docker), or under `BERTH_BENCH_DIR`: on these machines a file made
/// under /tmp or /root costs ten times one made under /var/lib, and a comparison must
/// not hand one engine the slow disk.
fn bench_home(name: &str) -> Result<std::path::PathBuf> {
    let base = std::env::var_os("BERTH_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| "/var/lib/berth-bench".into());
    let home = base.join(name);
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    Ok(home)
}

/// Image builds: a three-stage Dockerfile (RUN steps that write files, a COPY of a
/// 2,000-file context, a copy between stages) built through the docker CLI with the
/// classic builder against Berth's Docker API socket and against dockerd's, interleaved
/// in one run: cold (`--no-cache`), fully cached, and after one file changed.
/// `BENCH_RUNS` (default 5).
fn build() -> Result<()> {
    use std::process::Command;
    let peers = crate::root().join("../shared/peers");
    if !peers.join("setup.sh").is_file() {
        bail!("{} not found: the build benchmark uses the shared peers (dockerd)", peers.display());
    }
    shell::run(Command::new("bash").arg(peers.join("setup.sh")))?;
    let engine = BenchEngine::start("build")?;
    let b = engine.cli();
    let socket = engine.home.join("run/docker.sock");
    // One context per engine, the same files: each engine's one-file case changes only
    // its own, so the other's cached case stays cached.
    let contexts = [engine.home.join("ctx-dockerd"), engine.home.join("ctx-berth")];
    for ctx in &contexts {
        std::fs::create_dir_all(ctx.join("src"))?;
        for n in 0..2000 {
            std::fs::write(ctx.join("src").join(format!("f{n:04}.txt")), format!("file {n}\n"))?;
        }
        std::fs::write(
            ctx.join("Dockerfile"),
            "ARG BASE\nFROM $BASE AS deps\nRUN mkdir -p /deps && for i in $(seq 1 200); do echo dep $i > /deps/d$i; done\n\
             FROM $BASE AS app\nCOPY src/ /app/src/\nRUN ls /app/src | wc -l > /app/count\n\
             FROM $BASE\nCOPY --from=deps /deps /deps\nCOPY --from=app /app /app\nCMD [\"cat\", \"/app/count\"]\n",
        )?;
    }
    let (cd, cb) = (contexts[0].display().to_string(), contexts[1].display().to_string());
    let runs = std::env::var("BENCH_RUNS").unwrap_or_else(|_| "5".into());
    let script = format!(
        "set -e; . {common}; docker pull -q $IMG_BUSYBOX >/dev/null && docker save $IMG_BUSYBOX | {b} load >/dev/null
         export DOCKER_BUILDKIT=0
         B=\"DOCKER_HOST=unix://{socket} docker build -q --build-arg BASE=$IMG_BUSYBOX\"
         D=\"docker build -q --build-arg BASE=$IMG_BUSYBOX\"
         eval $D -t bench/build {cd} >/dev/null; eval $B -t bench/build {cb} >/dev/null
         python3 {bench} --runs {runs} --warmup 1 --title 'docker build (classic builder), three stages, 2,000-file context, {runs} runs, interleaved'            --case \"cold, --no-cache (dockerd)|$D --no-cache {cd} >/dev/null 2>&1\"            --case \"cold, --no-cache (berth)|$B --no-cache {cb} >/dev/null 2>&1\"            --case \"fully cached (dockerd)|$D {cd} >/dev/null 2>&1\"            --case \"fully cached (berth)|$B {cb} >/dev/null 2>&1\"            --case \"one file changed (dockerd)|date +%s%N > {cd}/src/f0001.txt && $D {cd} >/dev/null 2>&1\"            --case \"one file changed (berth)|date +%s%N > {cb}/src/f0001.txt && $B {cb} >/dev/null 2>&1\"",
        common = peers.join("common.sh").display(),
        bench = peers.join("bench.py").display(),
        socket = socket.display(),
    );
    shell::run(Command::new("bash").args(["-c", &script]))
}

/// A session of the VM (`berth vm start`) in a home of its own, stopped on drop, with a
/// busybox image imported from the host's static busybox.
struct VmBench {
    home: std::path::PathBuf,
    berth: std::path::PathBuf,
    image: std::path::PathBuf,
}

impl VmBench {
    fn start(name: &str, shares: &[&std::path::Path], kernel: crate::vm_image::Kernel, transport: &str) -> Result<VmBench> {
        use std::process::Command;
        let image = crate::vm_image::build_with(kernel)?;
        shell::run(shell::cargo().args(["build", "--package", "berth-cli", "--package", "berth-agent"]).current_dir(crate::root()))?;
        let home = std::env::temp_dir().join(format!("berth-bench-{name}"));
        let berth = crate::root().join("target/debug/berth");
        let bench = VmBench { home, berth, image: image.dir };
        let _ = bench.berth(&["vm", "stop"]);
        let _ = std::fs::remove_dir_all(&bench.home);
        std::fs::create_dir_all(&bench.home)?;
        let list: Vec<String> = shares.iter().map(|p| p.display().to_string()).collect();
        bench.berth(&["settings", "set", "shares", &list.join(",")])?;
        bench.berth(&["settings", "set", "share-transport", transport])?;
        bench.berth(&["vm", "start"])?;
        // A busybox image, from the host's static busybox.
        let root = bench.home.join("bb-root");
        std::fs::create_dir_all(root.join("bin"))?;
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
        for applet in ["sh", "ls", "cat", "find", "xargs", "head", "date", "sync", "rm", "cp", "mkdir", "sleep", "dd", "wc", "echo", "true", "stat", "du"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
        std::fs::create_dir_all(root.join("tmp"))?;
        let tar = bench.home.join("bb.tar");
        shell::run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."))?;
        shell::run(Command::new("docker").args(["import", &tar.display().to_string(), "bench/bb:1"]).env("DOCKER_HOST", bench.docker_host()))?;
        Ok(bench)
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.home.join("run/docker.sock").display())
    }

    fn berth(&self, args: &[&str]) -> Result<String> {
        let mut command = std::process::Command::new(&self.berth);
        command
            .args(args)
            .env("BERTH_HOME", &self.home)
            .env("BERTH_VM_IMAGE", &self.image)
            .env("BERTH_VM_MEMORY_MIB", std::env::var("BERTH_VM_MEMORY_MIB").unwrap_or_else(|_| "1024".into()));
        shell::output(&mut command)
    }

    /// `docker run --rm ARGS`, its stdout.
    fn run(&self, args: &[&str]) -> Result<String> {
        shell::output(std::process::Command::new("docker").args(["run", "--rm"]).args(args).env("DOCKER_HOST", self.docker_host()))
    }

    fn qemu_pid(&self) -> u32 {
        std::fs::read(self.home.join("vm/state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["qemu_pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0)
    }
}

impl Drop for VmBench {
    fn drop(&mut self) {
        let _ = self.berth(&["vm", "stop"]);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// In a container in the VM, on a bind of a host folder of 5,000 small files (virtiofs):
/// walk and stat them all, read them all, write 100 MiB; the same on a named volume in
/// the same VM (the floor in the VM) and on the host itself. `BENCH_RUNS` (default 5).
/// 9p is not measured: Debian's cloud kernel, the VM's, has no 9p.
fn shares() -> Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let src = std::env::temp_dir().join("berth-bench-shares-src");
    let _ = std::fs::remove_dir_all(&src);
    for d in 0..50 {
        let dir = src.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), format!("{d}-{f} {}\n", "x".repeat(1000)))?;
        }
    }
    // Each step timed inside the container, in ms from /proc/uptime (10 ms steps), the
    // folder under test at DIR.
    let script = r#"now() { read up rest < /proc/uptime; echo "${up%.*}${up#*.}"; };
        t() { s=$(now); "$@" > /dev/null 2>&1; e=$(now); echo $(( (e - s) * 10 )); };
        head -c 1048576 /dev/urandom > RAND;
        t ls -lR DIR; t sh -c 'find DIR -type f | xargs cat';
        t sh -c 'i=0; while [ $i -lt 100 ]; do cat RAND; i=$((i+1)); done > DIR/big; sync'; rm -f DIR/big"#;
    let in_vm = script.replace("DIR", "/d").replace("RAND", "/tmp/r");
    let host_script = script.replace("DIR", &src.display().to_string()).replace("RAND", &std::env::temp_dir().join("berth-bench-r").display().to_string());
    let script = in_vm.as_str();
    let shared = std::env::temp_dir();
    let parse = |out: &str| -> Vec<f64> { out.lines().filter_map(|l| l.trim().parse().ok()).collect() };
    let mut results: Vec<(String, Vec<Vec<f64>>)> = vec![("host folder on the host".into(), Vec::new())];
    // virtiofs on the cloud kernel; 9p on the generic kernel (the cloud one has no 9p),
    // each against a named volume in the same VM.
    for (kernel, transport) in [(crate::vm_image::Kernel::Cloud, "virtiofs"), (crate::vm_image::Kernel::Generic, "9p")] {
        let vm = VmBench::start(&format!("shares-{transport}"), &[shared.as_path()], kernel, transport)?;
        let bind = format!("{}:/d", src.display());
        vm.run(&["-v", "bench-vol:/d", "-v", &format!("{}:/src:ro", src.display()), "bench/bb:1", "cp", "-a", "/src/.", "/d/"])?;
        let (mut volume, mut share) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            volume.push(parse(&vm.run(&["-v", "bench-vol:/d", "bench/bb:1", "sh", "-c", script])?));
            share.push(parse(&vm.run(&["-v", &bind, "bench/bb:1", "sh", "-c", script])?));
        }
        results.push((format!("named volume in the VM ({transport}'s kernel)"), volume));
        results.push((format!("host folder shared ({transport})"), share));
    }
    for _ in 0..runs {
        results[0].1.push(parse(&shell::output(std::process::Command::new("sh").args(["-c", &host_script]))?));
    }
    let _ = std::fs::remove_dir_all(&src);
    println!("\n| where (5,000 files of 1 KiB; {runs} runs, medians) | walk + stat ms | read all ms | write 100 MiB ms |");
    println!("|---|---|---|---|");
    let mut medians = Vec::new();
    for (name, rows) in &results {
        let m: Vec<f64> = (0..3).map(|i| median(rows.iter().filter_map(|r| r.get(i).copied()).collect())).collect();
        println!("| {name} | {:.0} | {:.0} | {:.0} |", m[0], m[1], m[2]);
        medians.push(m);
    }
    let ratio = |share: usize, i: usize| medians[share][i] / medians[share - 1][i].max(1.0);
    println!("\nvirtiofs share / named volume: walk {:.2} (target: at most 2), read {:.2}, write {:.2}", ratio(2, 0), ratio(2, 1), ratio(2, 2));
    println!("9p share / named volume: walk {:.2} (target: at most 2), read {:.2}, write {:.2}", ratio(4, 0), ratio(4, 1), ratio(4, 2));
    Ok(())
}

/// QEMU's RSS: idle after boot, while a container holds 512 MiB, and each second for 30 s
/// after it exits (the balloon's free page reporting gives the pages back).
fn vm_memory() -> Result<()> {
    let vm = VmBench::start("vm-memory", &[std::env::temp_dir().as_path()], crate::vm_image::Kernel::Cloud, "virtiofs")?;
    std::thread::sleep(std::time::Duration::from_secs(5));
    let pid = vm.qemu_pid();
    let idle = rss_kib(pid);
    // 512 MiB touched in the container's memory (a tmpfs file), then released.
    vm.run(&["--tmpfs", "/big:size=600m", "bench/bb:1", "sh", "-c", "head -c 536870912 /dev/zero > /big/f && sleep 1"])?;
    let peak = rss_kib(pid);
    let mut after = Vec::new();
    for _ in 0..30 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        after.push(rss_kib(pid));
    }
    let back_at = after.iter().position(|r| *r <= idle + 100 * 1024);
    println!("\n| QEMU RSS | MiB |");
    println!("|---|---|");
    println!("| idle after boot | {:.0} |", idle as f64 / 1024.0);
    println!("| after a container touched 512 MiB | {:.0} |", peak as f64 / 1024.0);
    println!("| 30 s later | {:.0} |", after.last().copied().unwrap_or(0) as f64 / 1024.0);
    match back_at {
        Some(s) => println!("\nback within 100 MiB of idle after {} s (target: within 30 s)", s + 1),
        None => println!("\nnot back within 100 MiB of idle in 30 s (target: within 30 s)"),
    }
    Ok(())
}

/// Berth Desktop's launch to the Containers list with 200 containers, and its memory and
/// CPU idle on that list: the release app and engine (tests/benches/gui.rs), under Xvfb.
fn gui() -> Result<()> {
    use anyhow::Context as _;
    shell::run(std::process::Command::new("npm").args(["run", "--silent", "build"]).current_dir(crate::root().join("ui"))).context("build the UI")?;
    shell::run(
        shell::cargo()
            .args(["build", "--release", "--package", "berth-desktop", "--package", "berth-cli", "--package", "berth-agent", "--package", "berth-monitor"])
            .current_dir(crate::root()),
    )?;
    let xvfb = crate::test::Xvfb::start()?;
    shell::run(shell::cargo().args(["bench", "--package", "berth-tests", "--bench", "gui"]).env("DISPLAY", &xvfb.display).current_dir(crate::root()))
}

/// The load run at full size (tests/benches/load.rs): 50 clients on the native engine's
/// Docker API for 5 minutes (`LOAD_CLIENTS`, `LOAD_SECS`), pulls from a real registry,
/// the engine killed and restarted halfway; its figures, and whether anything leaked.
fn load() -> Result<()> {
    shell::run(
        shell::cargo()
            .args(["build", "--release", "--package", "berth-cli", "--package", "berth-agent", "--package", "berth-monitor"])
            .current_dir(crate::root()),
    )?;
    shell::run(shell::cargo().args(["bench", "--package", "berth-tests", "--bench", "load"]).current_dir(crate::root()))
}
