//! `cargo xtask fuzz [TARGET...] [--secs N]`: coverage-guided fuzzing with libFuzzer on
//! the stable toolchain. The `fuzz/` crate is built with SanitizerCoverage (rustc's
//! `-Cpasses=sancov-module`) for the host target, so build scripts stay plain; each
//! target then runs for N seconds (default 60) on a working corpus seeded from
//! `fuzz/corpus/<target>/` and the crashes of `fuzz/regressions/<target>/`. A crash
//! fails the command and names its input: fix it, then keep the input in
//! `fuzz/regressions/<target>/`, where the unit tier replays it for ever.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

/// Every target, as `fuzz/Cargo.toml` names its binaries.
pub const TARGETS: [&str; 6] = ["unpack_layer", "reference", "manifest", "docker_request", "compose_load", "dockerfile_parse"];

const HOST: &str = "x86_64-unknown-linux-gnu";

const RUSTFLAGS: &str = "--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares";

/// What one run found, from libFuzzer's final statistics.
#[derive(Debug, Default)]
pub struct Run {
    pub target: String,
    pub executions: u64,
    pub per_second: u64,
    pub coverage: u64,
    pub features: u64,
    pub corpus: usize,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut secs = 60u64;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secs" => secs = it.next().context("--secs needs a number")?.parse().context("--secs needs a number")?,
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => bail!("unknown fuzz target or flag {other:?} (targets: {})", TARGETS.join(", ")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let runs = fuzz(&targets, secs)?;
    println!("{:<18} {:>12} {:>10} {:>8} {:>8} {:>8}", "target", "executions", "exec/s", "cov", "ft", "corpus");
    for r in &runs {
        println!("{:<18} {:>12} {:>10} {:>8} {:>8} {:>8}", r.target, r.executions, r.per_second, r.coverage, r.features, r.corpus);
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    crate::root().join("target/fuzz")
}

/// Builds the targets (instrumented, release with overflow checks).
pub fn build() -> Result<()> {
    shell::run(
        shell::cargo()
            .args(["build", "--release", "--target", HOST, "--manifest-path"])
            .arg(crate::root().join("fuzz/Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir())
            .env("RUSTFLAGS", RUSTFLAGS)
            .current_dir(crate::root().join("fuzz")),
    )
    .context("build the fuzz targets")
}

/// Runs each target for `secs` seconds; fails on the first crash, naming its input.
pub fn fuzz(targets: &[String], secs: u64) -> Result<Vec<Run>> {
    build()?;
    let mut runs = Vec::new();
    for target in targets {
        let work = target_dir().join("corpus").join(target);
        let artifacts = target_dir().join("artifacts").join(target);
        std::fs::create_dir_all(&work)?;
        std::fs::create_dir_all(&artifacts)?;
        let binary = target_dir().join(HOST).join("release").join(target);
        let output = Command::new(&binary)
            .arg(&work)
            .arg(crate::root().join("fuzz/corpus").join(target))
            .arg(crate::root().join("fuzz/regressions").join(target))
            .arg(format!("-max_total_time={secs}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=65536")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .output()
            .with_context(|| format!("run {}", binary.display()))?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("fuzz target {target} found a crash (inputs in {}):\n{}", artifacts.display(), tail.join("\n"));
        }
        runs.push(parse_stats(target, &log, std::fs::read_dir(&work).map(|d| d.count()).unwrap_or(0)));
    }
    Ok(runs)
}

fn parse_stats(target: &str, log: &str, corpus: usize) -> Run {
    let stat = |name: &str| -> u64 { log.lines().find_map(|l| l.strip_prefix(&format!("stat::{name}:")).and_then(|v| v.trim().parse().ok())).unwrap_or(0) };
    // The last status line: "#123 DONE cov: 456 ft: 789 corp: ...".
    let field = |name: &str| -> u64 {
        log.lines()
            .rev()
            .find(|l| l.starts_with('#') && l.contains(" cov: "))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != name).nth(1).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    Run {
        target: target.to_owned(),
        executions: stat("number_of_executed_units"),
        per_second: stat("average_exec_per_sec"),
        coverage: field("cov:"),
        features: field("ft:"),
        corpus,
    }
}
