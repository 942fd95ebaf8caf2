//! `cargo xtask bench load`: the load run (tests/src/load.rs) at full size, 50 clients
//! for 5 minutes with the engine killed halfway, and its figures. `LOAD_CLIENTS`,
//! `LOAD_SECS` change the size. Exits non-zero when a request was not answered or
//! refused cleanly or the engine left anything behind.

use std::time::Duration;

use berth_tests::load::{self, LoadConfig};

fn main() {
    let clients = std::env::var("LOAD_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let secs: u64 = std::env::var("LOAD_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let config = LoadConfig { clients, duration: Duration::from_secs(secs), kill_at: Duration::from_secs(secs / 2), images: 6 };
    println!("load: {clients} clients for {secs} s, the engine killed (SIGKILL) and restarted at {} s", secs / 2);
    let report = load::run("bench-load", &config);
    report.print();
    let clean = report.unclean.is_empty() && report.check.is_none() && report.leftovers.is_empty();
    if !clean {
        std::process::exit(1);
    }
}
