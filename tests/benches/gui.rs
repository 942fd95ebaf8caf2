//! Berth Desktop: launch to the Containers list rendered with 200 containers present,
//! and the app's memory and CPU while idle on that list. The release app, under Xvfb,
//! launched through tauri-driver (the WebDriver session request starts it), against a
//! release native engine in a network namespace of its own (`BERTH_HOST`).
//!
//! `cargo xtask bench gui` (BENCH_RUNS=n launches, default 5). A benchmark, not a test:
//! it prints numbers and asserts nothing about them. Targets (DESIGN.md): under 1 s to
//! the list, under 150 MiB for app + WebKit, no CPU when idle.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::native::NativeEngine;
use berth_tests::webdriver::WebDriver;

const CONTAINERS: usize = 200;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(4444)
}

/// The pid and its descendants (the app and its WebKit helpers).
fn tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
        all.extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        i += 1;
    }
    all
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(field).and_then(|v| v.split_whitespace().next()?.parse().ok())))
        .unwrap_or(0)
}

/// Proportional set size: shared pages split among the processes that share them.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Pss:").and_then(|v| v.split_whitespace().next()?.parse().ok())))
        .unwrap_or(0)
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn app_pid() -> Option<u32> {
    berth_tests::processes_matching("berth-desktop")
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "berth-desktop"))
}

fn main() {
    assert!(std::env::var_os("DISPLAY").is_some(), "no DISPLAY: run through `cargo xtask bench gui`, which starts Xvfb");
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let app = berth_tests::bin("berth-desktop");
    let engine = NativeEngine::start_isolated("bench-gui");
    let image = berth_tests::fixtures::container_image(serde_json::json!({}));
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, berth_tests::fixtures::oci_archive(&image, "bench/busybox:gui")).expect("archive");
    assert!(engine.berth(&["load", "-i", &archive.display().to_string()]).status.success(), "load");
    for i in 0..CONTAINERS {
        let out = engine.berth(&["create", "--name", &format!("c{i:03}"), "bench/busybox:gui", "true"]);
        assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    }
    let home = berth_tests::temp_home("bench-gui-app");
    let tauri_driver = berth_host::vm::find_program("tauri-driver").expect("tauri-driver");
    let port = free_port();
    let mut driver: Child = Command::new(tauri_driver)
        .args(["--port", &port.to_string(), "--native-port", &free_port().to_string()])
        .env("BERTH_HOME", &home)
        .env("BERTH_HOST", format!("unix:{}", engine.socket().display()))
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tauri-driver");
    let wd = WebDriver::new(port);
    wd.wait_ready(Duration::from_secs(30)).expect("tauri-driver ready");
    let rows = "return document.querySelectorAll('tr[data-name]').length";
    let mut launches = Vec::new();
    let mut idle = None;
    for run in 0..runs {
        let started = Instant::now();
        let session = wd.session(&app).expect("start the app");
        loop {
            let shown = session.script(rows).ok().and_then(|v| v.as_u64()).unwrap_or(0);
            if shown as usize >= CONTAINERS {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the list never showed {CONTAINERS} containers (shows {shown})");
            std::thread::sleep(Duration::from_millis(10));
        }
        launches.push(started.elapsed().as_secs_f64());
        if run == runs - 1 {
            // Idle on the list: let it settle, then memory, then CPU over ten seconds.
            std::thread::sleep(Duration::from_secs(5));
            let pids = tree(app_pid().expect("the app's process"));
            let rss: u64 = pids.iter().map(|p| status_kib(*p, "VmRSS:")).sum();
            let pss: u64 = pids.iter().map(|p| pss_kib(*p)).sum();
            let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
            std::thread::sleep(Duration::from_secs(10));
            let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
            let hz = 100.0; // USER_HZ on Linux
            idle = Some((pids.len(), rss, pss, (after - before) as f64 / hz / 10.0 * 100.0));
            for p in &pids {
                let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                println!("  {:<22} RSS {:>4} MiB  PSS {:>4} MiB", name.trim(), status_kib(*p, "VmRSS:") / 1024, pss_kib(*p) / 1024);
            }
        }
        session.close().expect("close the app");
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = Command::new("kill").args(["-TERM", &driver.id().to_string()]).status();
    let _ = driver.wait();
    let _ = std::fs::remove_dir_all(&home);
    println!("\n## Berth Desktop, {CONTAINERS} containers, {runs} launches (release app, Xvfb, software GL)\n");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| launch to the Containers list rendered, median (s) | {:.2} | < 1 |", median(launches.clone()));
    println!("| launch, each (s) | {} | |", launches.iter().map(|l| format!("{l:.2}")).collect::<Vec<_>>().join(", "));
    if let Some((count, rss, pss, cpu)) = idle {
        println!("| app + WebKit processes | {count} | |");
        println!("| RSS, summed (MiB) | {:.0} | < 150 |", rss as f64 / 1024.0);
        println!("| PSS, summed (MiB; shared pages split) | {:.0} | < 150 |", pss as f64 / 1024.0);
        println!("| CPU idle on the list, 10 s (% of one core) | {cpu:.1} | 0 |");
    }
}
