//! Whether a container's command can be run, found by looking at its files, not by
//! reading the OCI runtime's words: docker's exit codes (127 for a command that is
//! nowhere, 126 for one that cannot be run) and docker's phrases for them, which the
//! docker CLI itself reads to choose its own exit code.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::rootfs;

/// Why a command cannot be run: docker's exit code and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRunnable {
    pub code: i32,
    pub message: String,
}

/// Where paths of a container are, seen from outside it.
pub(super) enum View<'a> {
    /// A running container's root (`/proc/PID/root`): its mounts are in place.
    Running(&'a Path),
    /// A container not started yet: its root filesystem and, over it, its mounts
    /// (destination, and the host source of a bind; `None` for another kind).
    Bundle { root: PathBuf, mounts: Vec<(String, Option<PathBuf>)> },
}

/// A path is there, not there, or under a mount whose contents cannot be seen.
enum Found {
    File(File),
    Missing,
    Unknown,
}

impl View<'_> {
    /// The view of the OCI bundle at `bundle`, from its `config.json`.
    pub(super) fn of_bundle(bundle: &Path) -> Option<(View<'static>, Vec<String>, Vec<String>, String)> {
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
        let root = PathBuf::from(spec["root"]["path"].as_str()?);
        let root = if root.is_absolute() { root } else { bundle.join(root) };
        let strings = |v: &serde_json::Value| v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<_>>();
        let mounts = spec["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let destination = m["destination"].as_str()?.trim_end_matches('/').to_owned();
                let bind = m["type"] == "bind" || strings(&m["options"]).iter().any(|o| o == "bind" || o == "rbind");
                Some((destination, bind.then(|| m["source"].as_str().map(PathBuf::from)).flatten()))
            })
            .collect();
        let process = &spec["process"];
        let cwd = process["cwd"].as_str().unwrap_or("/").to_owned();
        Some((View::Bundle { root, mounts }, strings(&process["args"]), strings(&process["env"]), cwd))
    }

    fn open(&self, path: &str) -> Found {
        let flags = libc::O_PATH | libc::O_CLOEXEC;
        let found = |result: std::io::Result<File>| match result {
            Ok(file) => Found::File(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Missing,
            Err(_) => Found::Unknown,
        };
        match self {
            View::Running(root) => found(rootfs::open_with(root, path, flags)),
            View::Bundle { root, mounts } => {
                // The last mount over the path holds it (later mounts cover earlier).
                let over = mounts.iter().rev().find(|(dest, _)| path == dest || path.starts_with(&format!("{dest}/")) || dest.is_empty());
                match over {
                    None => found(rootfs::open_with(root, path, flags)),
                    Some((_, None)) => Found::Unknown,
                    Some((dest, Some(source))) => {
                        let rest = &path[dest.len()..];
                        if rest.is_empty() {
                            found(File::open(source).or_else(|_| rootfs::open_with(source, "/", flags)))
                        } else if source.is_dir() {
                            found(rootfs::open_with(source, rest, flags))
                        } else {
                            Found::Missing
                        }
                    }
                }
            }
        }
    }
}

/// Whether `cmd[0]` can be run in `view` (its PATH from `env`, or relative to `cwd`),
/// and whether `cwd` is a directory. `None` when it looks runnable, or cannot be told.
pub(super) fn check(view: &View<'_>, cmd: &[String], env: &[String], cwd: &str) -> Option<NotRunnable> {
    if let Found::File(file) = view.open(cwd) {
        if file.metadata().is_ok_and(|m| !m.is_dir()) {
            return Some(NotRunnable { code: 127, message: format!("chdir to cwd (\"{cwd}\") set in config.json failed: not a directory") });
        }
    }
    let program = cmd.first()?;
    let candidates: Vec<String> = if program.contains('/') {
        vec![if program.starts_with('/') { program.clone() } else { format!("{}/{program}", cwd.trim_end_matches('/')) }]
    } else {
        let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':').filter(|d| !d.is_empty()).map(|d| format!("{}/{program}", d.trim_end_matches('/'))).collect()
    };
    let mut unrunnable = false;
    for candidate in &candidates {
        match view.open(candidate) {
            Found::File(file) => match file.metadata() {
                Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => return None,
                _ => unrunnable = true,
            },
            Found::Unknown => return None,
            Found::Missing => {}
        }
    }
    // runc's words, which the docker CLI turns into its exit code.
    Some(if unrunnable {
        NotRunnable { code: 126, message: format!("exec: \"{program}\": permission denied") }
    } else if program.contains('/') {
        NotRunnable { code: 127, message: format!("exec: \"{program}\": stat {program}: no such file or directory") }
    } else {
        NotRunnable { code: 127, message: format!("exec: \"{program}\": executable file not found in $PATH") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn commands_are_found_in_the_root_and_in_binds_over_it() {
        let dir = std::env::temp_dir().join(format!("berth-runnable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("bin")).expect("bin");
        std::fs::write(root.join("bin/sh"), "x").expect("sh");
        std::fs::set_permissions(root.join("bin/sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(root.join("bin/data"), "x").expect("data");
        std::fs::create_dir_all(root.join("etc")).expect("etc");
        let app = dir.join("app");
        std::fs::create_dir_all(&app).expect("app");
        std::fs::write(app.join("run"), "x").expect("run");
        std::fs::set_permissions(app.join("run"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let view = View::Bundle { root, mounts: vec![("/app".into(), Some(app)), ("/tmp".into(), None)] };
        let env = strings(&["PATH=/bin"]);
        assert_eq!(check(&view, &strings(&["sh"]), &env, "/"), None);
        assert_eq!(check(&view, &strings(&["/app/run"]), &env, "/"), None, "a command in a bind mount is there");
        assert_eq!(check(&view, &strings(&["./run"]), &env, "/app"), None);
        assert_eq!(check(&view, &strings(&["/tmp/x"]), &env, "/"), None, "under a tmpfs: cannot be told");
        assert_eq!(check(&view, &strings(&["nope"]), &env, "/").map(|n| n.code), Some(127));
        assert!(check(&view, &strings(&["nope"]), &env, "/").is_some_and(|n| n.message.contains("executable file not found")));
        assert!(check(&view, &strings(&["/app/nope"]), &env, "/").is_some_and(|n| n.message.contains("no such file or directory")));
        assert_eq!(check(&view, &strings(&["data"]), &env, "/").map(|n| n.code), Some(126));
        assert_eq!(check(&view, &strings(&["/etc"]), &env, "/").map(|n| n.code), Some(126));
        let not_dir = check(&view, &strings(&["sh"]), &env, "/bin/data").expect("a file as the working directory");
        assert_eq!(not_dir.code, 127);
        assert!(not_dir.message.contains("not a directory"), "{}", not_dir.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
