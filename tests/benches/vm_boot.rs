//! VM boot: from QEMU's start to the agent's first gRPC reply over vsock, against the
//! floor of the same kernel booting a bare busybox initramfs (QEMU start to its marker on
//! the serial console), same QEMU settings, same machine, interleaved in one run.
//!
//! `cargo xtask bench vm-boot [--arch arm64]` (BENCH_RUNS=n, default 7; the arm64 guest
//! through `BERTH_VM_ARCH`). A benchmark, not a test: it prints numbers and asserts
//! nothing about them.

use std::time::{Duration, Instant};

use berth_host::vm::qemu::{QemuArgs, VsockDevice};
use berth_tests::vm::TestVm;

const FLOOR_MARKER: &str = "BERTH-FLOOR-READY";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One bare boot: QEMU start until the floor initramfs prints its marker.
fn floor_boot(config: &berth_host::vm::VmConfig, dir: &std::path::Path) -> Duration {
    let console = dir.join("floor-console.log");
    let _ = std::fs::remove_file(&console);
    let args = QemuArgs {
        accel: berth_host::vm::accel::Accel::Tcg,
        arch: config.arch,
        cpus: config.cpus,
        mem_mib: config.mem_mib,
        kernel: config.image.kernel.clone(),
        initrd: config.image.dir.join("floor.cpio.gz"),
        cmdline: format!("console={} quiet panic=-1 rdinit=/init", config.arch.console()),
        qmp_socket: dir.join("floor-qmp.sock"),
        console_log: console.clone(),
        vsock: VsockDevice::None,
        serial_mux: None,
        host_pipes: cfg!(windows),
        user_network: true,
        data_disk: None,
        shares: Vec::new(),
        fw_cfg: Vec::new(),
        balloon: false,
    };
    let started = Instant::now();
    let mut child = std::process::Command::new(&config.qemu)
        .args(args.to_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn QEMU");
    let elapsed = loop {
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        if text.contains(FLOOR_MARKER) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the floor image did not boot: {text}");
        std::thread::sleep(Duration::from_millis(2));
    };
    // It powers itself off; make sure.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(7);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let builder = TestVm::builder("bench-boot").mem_mib(512);
    let config = builder.config().expect("VM config (cargo xtask vm-image first)");
    let scratch = berth_tests::temp_home("bench-floor");
    // As a user's session boots: the data disk (made once, then checked at each boot)
    // and two shared folders (virtiofsd each), in a home kept across the runs.
    let session_home = berth_host::home::BerthHome::new(berth_tests::temp_home("bench-boot-session"));
    let shared = [session_home.root().join("share-a"), session_home.root().join("share-b")];
    for dir in &shared {
        std::fs::create_dir_all(dir).expect("share folder");
    }
    let mut session_config = config.clone();
    session_config.data_disk = Some(berth_host::vm::guest::DataDisk { path: berth_host::vm::VmPaths::new(&session_home).data_disk, size_bytes: 64 << 30 });
    session_config.shares = shared.to_vec();
    session_config.virtiofsd = Some(berth_host::vm::find_program("virtiofsd").expect("virtiofsd (cargo xtask setup installs it)"));
    session_config.guest_env = vec![("BERTH_SHARES".into(), shared.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))];
    session_config.balloon = true;
    let session_boot = || {
        runtime.block_on(async {
            let vm = berth_host::vm::start(&session_home, &session_config, |_| {}).await.expect("a session's VM boots");
            let t = vm.boot_time;
            berth_host::vm::stop(&session_home, Duration::from_secs(15)).await.expect("stop");
            vm.reap().await;
            t
        })
    };
    let (mut floor, mut berth, mut session) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up of each (page cache, QEMU's first start), then interleaved runs.
    floor_boot(&config, &scratch);
    for i in 0..=runs {
        let t_session = session_boot();
        let (t_floor, t_berth) = {
            let f = floor_boot(&config, &scratch);
            let b = runtime.block_on(async {
                let mut vm = builder.clone().start().await;
                let t = vm.running().boot_time;
                vm.stop().await;
                t
            });
            (f, b)
        };
        if i == 0 {
            continue; // warm-up
        }
        println!(
            "run {i}: floor {:>6.0} ms   berth {:>6.0} ms   berth+disk+shares {:>6.0} ms",
            t_floor.as_secs_f64() * 1e3,
            t_berth.as_secs_f64() * 1e3,
            t_session.as_secs_f64() * 1e3
        );
        floor.push(t_floor.as_secs_f64() * 1e3);
        berth.push(t_berth.as_secs_f64() * 1e3);
        session.push(t_session.as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(session_home.root());
    let (mf, mb, ms) = (median(floor.clone()), median(berth.clone()), median(session.clone()));
    println!();
    println!("| case (TCG, {} MiB, 1 vCPU, {runs} runs) | median ms | min ms | max ms |", config.mem_mib);
    println!("|---|---|---|---|");
    let row = |name: &str, v: &[f64], m: f64| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("| {name} | {m:.0} | {min:.0} | {max:.0} |");
    };
    row("floor: bare busybox initramfs to its marker", &floor, mf);
    row("berth: QEMU start to first gRPC reply over vsock", &berth, mb);
    row("berth with its data disk (checked) and 2 shares (virtiofsd)", &session, ms);
    println!("\nratio berth / floor: {:.2} (target: at most 1.3)", mb / mf);
    println!("ratio berth with disk and shares / floor: {:.2} (target: at most 1.3)", ms / mf);
}
