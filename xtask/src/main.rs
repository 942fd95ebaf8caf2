//! `cargo xtask <verb>`: the one entry point for developers. No knowledge lives only
//! in someone's shell history.

mod bench;
mod bundle;
mod codegen;
mod cpio;
mod cross;
mod fuzz;
mod run;
mod setup;
mod shell;
mod test;
#[cfg(test)]
mod tidy;
mod vm_image;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <verb>

  setup              install what this machine lacks (Debian packages as root, cargo tools, npm ci)
  vm-image [--kernel cloud|generic] [--arch x86_64|arm64]
                     build the VM's kernel + initramfs under build/vm-image*
  run                build everything and launch Berth Desktop (headless: berth serve)
  test [tier...]     run the test tiers: unit, native, vm, gui (default: all)
  bench vm-boot [--arch arm64]
                     QEMU start to first gRPC reply vs. the bare-boot floor
  bench pull         pull of a 100 MiB image: berth vs dockerd and podman (shared/peers)
  codegen [--check]  regenerate the UI's TypeScript types from the Rust types
  cross-check [windows|macos]
                     clippy of the host crates and the app for Windows and macOS
  bundle             build the installers this machine can (.deb), say which it cannot
  fuzz [TARGET...] [--secs N]
                     coverage-guided fuzzing (libFuzzer) of each target for N s (default 60)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = dispatch(&args) {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("setup") => setup::run(rest),
        Some("vm-image") => vm_image::run(rest).map(drop),
        Some("run") => run::run(rest),
        Some("test") => test::run(rest),
        Some("bench") => bench::run(rest),
        Some("codegen") => codegen::run(rest),
        Some("cross-check") => cross::run(rest),
        Some("bundle") => bundle::run(rest),
        Some("fuzz") => fuzz::run(rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown verb {other:?}\n{USAGE}"),
    }
}

/// The workspace root (the parent of this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Cargo's target folder: `CARGO_TARGET_DIR` if set (the work `cargo xtask test` runs
/// beside the VM tests has one of its own), else the tree's.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// Where built artefacts that are not cargo's go.
pub fn build_dir() -> PathBuf {
    root().join("build")
}
