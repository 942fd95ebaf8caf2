//! `cargo xtask bench <name>`: benchmarks, not timed tests. Each prints its medians and
//! ratios; the code lives in tests/benches/ and uses the same builders as the tests.

use anyhow::{bail, Result};

use crate::shell;

const BENCHES: &[&str] = &["vm-boot", "pull"];

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
