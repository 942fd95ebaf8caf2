//! Shared parts of Berth's end-to-end tests: finding the built binaries, a native
//! engine per test, and `TestVm`, a real QEMU VM per test with its logs kept on failure.

pub mod docker_target;
pub mod fixtures;
pub mod load;
pub mod native;
pub mod vm;
pub mod webdriver;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A binary of the workspace, built by `cargo xtask test` before the tests run.
pub fn bin(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(path.is_file(), "{} is not built; run the tests with `cargo xtask test` (it builds berth and berth-agent first)", path.display());
    path
}

/// A fresh, short folder for one test (unix socket paths must stay short).
pub fn temp_home(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-t-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test home");
    dir
}

/// Where a test keeps what it wants a human to see after a failure.
pub fn artifact_dir(test: &str) -> PathBuf {
    let dir = root().join("target/test-artifacts").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create artifact dir");
    dir
}

/// Processes whose command line contains `needle` (for leak checks).
pub fn processes_matching(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            // Zombies have an empty cmdline, so anything here is alive.
            found.push((pid, cmd));
        }
    }
    found
}
