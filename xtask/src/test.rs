//! `cargo xtask test [tier...]`: every test tier, in order, each building what it needs.
//!
//! - unit:   each crate's own tests, the UI type drift check, the UI's type check, the
//!   Windows and macOS cross-checks
//! - native: the real agent on a unix socket (`berth serve --native`), over gRPC and the CLI;
//!   the image fixtures against a real registry (docker-registry) and skopeo
//! - vm:     builds the VM image, boots real VMs under TCG over vsock, stops them over QMP
//! - gui:    the real app window under Xvfb, driven through tauri-driver + WebKitWebDriver

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::shell;

const TIERS: &[&str] = &["unit", "native", "vm", "gui"];

pub fn run(args: &[String]) -> Result<()> {
    let tiers: Vec<&str> = if args.is_empty() { TIERS.to_vec() } else { args.iter().map(String::as_str).collect() };
    for tier in &tiers {
        if !TIERS.contains(tier) {
            bail!("unknown test tier {tier:?}; tiers: {}", TIERS.join(", "));
        }
    }
    crate::setup::run(&[])?;
    // With the VM tier in the run, the unit tier's cross-checks run beside the VM tests
    // (they take a core the VM tests leave idle; CI's time).
    let cross_beside_vm = tiers.contains(&"vm");
    let mut timings = Vec::new();
    for tier in tiers {
        let started = Instant::now();
        println!("\n=== test tier: {tier} ===");
        match tier {
            "unit" => unit(!cross_beside_vm)?,
            "native" => native()?,
            "vm" => vm(cross_beside_vm)?,
            "gui" => gui()?,
            _ => unreachable!("checked above"),
        }
        timings.push(format!("{tier} {:.0}s", started.elapsed().as_secs_f64()));
    }
    println!("\nxtask test: all tiers passed ({})", timings.join(", "));
    Ok(())
}

fn cargo_test(args: &[&str]) -> Result<()> {
    shell::run(shell::cargo().arg("test").args(args).current_dir(crate::root()))
}

fn build(packages: &[&str]) -> Result<()> {
    let mut cmd = shell::cargo();
    cmd.arg("build").current_dir(crate::root());
    for p in packages {
        cmd.args(["--package", p]);
    }
    shell::run(&mut cmd)
}

fn unit(cross_checks: bool) -> Result<()> {
    // Formatting and lints first: a failure there is quick to say. The desktop crate
    // embeds the built UI, so the UI is built before clippy reads it.
    shell::run(shell::cargo().args(["fmt", "--all", "--check"]).current_dir(crate::root())).context("rustfmt (run `cargo fmt --all`)")?;
    shell::run(Command::new("npm").args(["run", "--silent", "build"]).current_dir(crate::root().join("ui"))).context("build the UI")?;
    shell::run(shell::cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]).current_dir(crate::root())).context("clippy")?;
    // With them, the tidy test (xtask's own: every path ARCHITECTURE.md names exists).
    cargo_test(&["--workspace", "--exclude", "berth-tests", "--exclude", "berth-desktop"])?;
    crate::codegen::run(&["--check".to_owned()])?;
    // The host crates and the app for Windows and macOS.
    if cross_checks {
        crate::cross::run(&[])?;
    } else {
        println!("cross-check: run beside the VM tests, in the vm tier");
    }
    shell::run(Command::new("npm").args(["run", "--silent", "typecheck"]).current_dir(crate::root().join("ui"))).context("type-check the UI")?;
    // The UI's component tests (Vitest, jsdom).
    shell::run(Command::new("npm").args(["run", "--silent", "test"]).current_dir(crate::root().join("ui"))).context("the UI's component tests")
}

fn native() -> Result<()> {
    build(&["berth-cli", "berth-agent", "berth-monitor"])?;
    // A static berth-monitor too: `--init` puts it at PID 1 inside test images; and the
    // static UDP helper the network tests put into theirs.
    shell::run(
        shell::cargo()
            .args(["build", "--package", "berth-monitor", "--package", "berth-netprobe", "--target", crate::vm_image::MUSL_TARGET])
            .current_dir(crate::root()),
    )?;
    cargo_test(&[
        "--package",
        "berth-tests",
        "--lib",
        "--test",
        "native",
        "--test",
        "fixtures",
        "--test",
        "images",
        "--test",
        "trust",
        "--test",
        "swarm",
        "--test",
        "containers",
        "--test",
        "volumes",
        "--test",
        "networks",
        "--test",
        "compose",
        "--test",
        "build",
        "--test",
        "docker_api",
        "--test",
        "load",
    ])
}

fn vm(cross_checks: bool) -> Result<()> {
    // Beside the x86_64 VM tests, niced: the arm64 image (its agent's release build is
    // minutes), and the cross-checks when the unit tier left them here. A TCG guest keeps
    // one core busy and the tests wait on it, which leaves the other mostly idle.
    // The arm64 image is wanted first (its tests follow the x86_64 ones), so the
    // cross-checks yield to it (nice 19 against 10: about a tenth of the spare core).
    let arm64_image = Beside::start("arm64-image", 10, &["vm-image", "--arch", "arm64"])?;
    let cross = if cross_checks { Some(Beside::start("cross-check", 19, &["cross-check"])?) } else { None };
    crate::vm_image::build()?;
    // The generic kernel's image too: it has 9p, which the shares' 9p test needs.
    crate::vm_image::build_with(crate::vm_image::Kernel::Generic)?;
    build(&["berth-cli", "berth-agent"])?;
    // The static UDP helper, for the image the VM test publishes a UDP port from.
    shell::run(shell::cargo().args(["build", "--package", "berth-netprobe", "--target", crate::vm_image::MUSL_TARGET]).current_dir(crate::root()))?;
    // The VM tests on each transport: vsock (vhost-device-vsock here) and the serial
    // mux (what macOS and Windows hosts use). Over serial, not those whose subject no
    // transport touches (`SERIAL_SKIPS`; CI's time; they pass over serial too).
    println!("\n--- the VM tests over vsock ---");
    cargo_test_with(&[("BERTH_TRANSPORT", "vsock")], &["--package", "berth-tests", "--test", "vm", "--", "--ignored", "--test-threads=1"])?;
    println!("\n--- the VM tests over serial ---");
    let mut serial = vec!["--package", "berth-tests", "--test", "vm", "--", "--ignored", "--test-threads=1"];
    for name in SERIAL_SKIPS {
        serial.extend(["--skip", name]);
    }
    cargo_test_with(&[("BERTH_TRANSPORT", "serial")], &serial)?;
    // The compatibility scenarios that reach containers through the API alone, against
    // the engine in its VM through the session's docker.sock: all of them over vsock;
    // over serial the ones that stream both ways (attach, exec, logs, half-close), so
    // the tier stays inside CI's time (all of them pass over serial too:
    // `BERTH_TRANSPORT=serial cargo test -p berth-tests --test docker_api -- --ignored in_vm`).
    cargo_test_with(&[("BERTH_TRANSPORT", "vsock")], &["--package", "berth-tests", "--test", "docker_api", "--", "--ignored", "--test-threads=1", "in_vm"])?;
    let mut serial = vec!["--package", "berth-tests", "--test", "docker_api", "--", "--ignored", "--test-threads=1"];
    serial.extend(SERIAL_SCENARIOS);
    cargo_test_with(&[("BERTH_TRANSPORT", "serial")], &serial)?;
    // The arm64 guest (Apple Silicon's), under TCG: its image, the netprobe for it, and
    // the VM tests that cover boot, pull, run, ports and shares.
    println!("\n--- the core VM tests on the arm64 guest ---");
    let arm64 = crate::vm_image::Arch::Arm64;
    arm64_image.wait()?;
    shell::run(
        shell::cargo()
            .args(["build", "--package", "berth-netprobe", "--target", arm64.musl_target()])
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "aarch64-linux-gnu-gcc")
            .current_dir(crate::root()),
    )?;
    let mut core = vec!["--package", "berth-tests", "--test", "vm", "--", "--ignored", "--test-threads=1"];
    core.extend(ARM64_CORE);
    cargo_test_with(&[("BERTH_VM_ARCH", "arm64")], &core)?;
    match cross {
        Some(cross) => cross.wait(),
        None => Ok(()),
    }
}

/// A `cargo xtask` verb run beside the tests: niced, with a target folder of its own
/// (cargo's lock on the tree's would hold up the tests' own builds), its output in
/// `build/logs/<name>.log` and printed when it is waited for. Dropped unwaited (a test
/// failed first), it is killed with everything it started.
struct Beside {
    name: &'static str,
    child: Child,
    log: PathBuf,
    started: Instant,
}

impl Beside {
    fn start(name: &'static str, niceness: u8, args: &[&str]) -> Result<Beside> {
        let logs = crate::build_dir().join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut cmd = Command::new("nice");
        cmd.arg("-n").arg(niceness.to_string()).arg(std::env::current_exe()?).args(args);
        cmd.env("CARGO_TARGET_DIR", crate::root().join("target/beside").join(name))
            // The arm64 test image's agent: less optimised (see Cargo.toml's guest-test).
            .env("BERTH_AGENT_PROFILE", "guest-test")
            .current_dir(crate::root())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().context("run nice (coreutils)")?;
        println!("beside the tests: cargo xtask {} (log in {})", args.join(" "), log.display());
        Ok(Beside { name, child, log, started: Instant::now() })
    }

    fn wait(mut self) -> Result<()> {
        let status = self.child.wait()?;
        let output = std::fs::read_to_string(&self.log).unwrap_or_default();
        println!("\n--- beside the tests: {} ({}, {:.0} s) ---\n{output}", self.name, status, self.started.elapsed().as_secs_f64());
        if !status.success() {
            bail!("{} failed ({status}); its output is above and in {}", self.name, self.log.display());
        }
        Ok(())
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // The process group this child leads: nice's program, its cargo and rustc.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
            let _ = self.child.wait();
        }
    }
}

/// The VM tests the arm64 guest runs: boot and power off, pull, run, published TCP and
/// UDP ports, a shared folder over 9p (what macOS hosts use). Not the session's long
/// test (it writes a gibibyte through the disk, minutes under arm64's TCG).
const ARM64_CORE: &[&str] = &[
    "boots_answers_over_vsock_streams_events_and_powers_off",
    "the_engine_in_the_vm_pulls_from_a_registry_on_the_hosts_loopback",
    "containers_run_in_the_vm_with_cgroup_v2_limits",
    "berth_serve_proxies_the_grpc_socket_to_the_vm_and_stops_it_on_sigterm",
    "shares_work_over_9p_too",
];

/// The VM tests the serial pass leaves to the vsock pass: their subjects (the disk, the
/// 9p share, the engine's defences, the trust policy) are the same on every transport.
const SERIAL_SKIPS: &[&str] = &[
    "bad_shares_and_damaged_or_busy_disks_are_clear_errors_and_lose_nothing",
    "shares_work_over_9p_too",
    "image_cp_and_seccomp_defences_hold_in_the_vm",
    "the_trust_policy_holds_in_the_vm_and_comes_from_the_settings",
];

/// The compatibility scenarios the VM tier also runs over the serial transport.
const SERIAL_SCENARIOS: &[&str] = &["streams_and_filters::in_vm", "attach_logs_replay::in_vm", "detach_keys::in_vm", "user_data_is_kept::in_vm"];

fn cargo_test_with(env: &[(&str, &str)], args: &[&str]) -> Result<()> {
    let mut cmd = shell::cargo();
    cmd.arg("test").args(args).current_dir(crate::root());
    for (name, value) in env {
        cmd.env(name, value);
    }
    shell::run(&mut cmd)
}

fn gui() -> Result<()> {
    crate::vm_image::build()?;
    build_desktop()?;
    // The native engine the window talks to runs its containers through the agent's
    // engine and the monitor.
    build(&["berth-cli", "berth-agent", "berth-monitor"])?;
    let xvfb = Xvfb::start()?;
    let mut cmd = shell::cargo();
    // One window at a time: two apps under one Xvfb (and a TCG VM beside them) lost
    // their WebDriver connections.
    cmd.args(["test", "--package", "berth-tests", "--test", "gui", "--", "--ignored", "--test-threads=1"])
        .env("DISPLAY", &xvfb.display)
        .current_dir(crate::root());
    let result = shell::run(&mut cmd);
    drop(xvfb);
    result
}

/// The UI bundle, then the app that embeds it.
pub fn build_desktop() -> Result<()> {
    let ui = crate::root().join("ui");
    shell::run(Command::new("npm").args(["run", "--silent", "build"]).current_dir(&ui)).context("build the UI")?;
    build(&["berth-desktop"])
}

/// A private X server for the GUI tests, stopped on drop.
pub struct Xvfb {
    pub display: String,
    child: Child,
}

impl Xvfb {
    pub fn start() -> Result<Xvfb> {
        let number = (90..200)
            .find(|n| !PathBuf::from(format!("/tmp/.X{n}-lock")).exists() && !PathBuf::from(format!("/tmp/.X11-unix/X{n}")).exists())
            .context("no free X display number")?;
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start Xvfb (Debian package xvfb)")?;
        let mut xvfb = Xvfb { display, child };
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Ok(Some(status)) = xvfb.child.try_wait() {
                bail!("Xvfb exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("Xvfb did not create {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(xvfb)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
