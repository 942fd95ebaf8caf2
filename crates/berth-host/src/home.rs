//! `BERTH_HOME`: the folder that holds all of Berth's state on the host.

use std::path::{Path, PathBuf};

/// The folder that holds all state: `run/` for the sockets users talk to, `vm/` for the
/// VM's sockets, logs and state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BerthHome {
    root: PathBuf,
    /// The platform's own folder (no `BERTH_HOME`): on Windows its Docker API is the
    /// well-known pipe.
    default: bool,
}

/// The Docker API of the default data folder on Windows, as Docker Desktop's is
/// `docker_engine`.
pub const WINDOWS_ENGINE_PIPE: &str = r"\\.\pipe\berth_engine";

impl BerthHome {
    pub fn new(root: impl Into<PathBuf>) -> BerthHome {
        BerthHome { root: root.into(), default: false }
    }

    /// `BERTH_HOME` if set, else the platform's data directory.
    pub fn from_env() -> BerthHome {
        match std::env::var_os("BERTH_HOME") {
            Some(dir) if !dir.is_empty() => BerthHome::new(dir),
            _ => BerthHome { root: default_root(), default: true },
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sockets users talk to.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The gRPC API (`berth.v1`).
    pub fn grpc_socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    /// The Docker Engine API: `run/docker.sock`; on Windows a named pipe, for the
    /// default folder `\\.\pipe\berth_engine` (`berth_proto::ipc::pipe_name` maps any
    /// other).
    pub fn docker_socket(&self) -> PathBuf {
        self.docker_socket_on(cfg!(windows))
    }

    fn docker_socket_on(&self, windows: bool) -> PathBuf {
        if windows && self.default {
            PathBuf::from(WINDOWS_ENGINE_PIPE)
        } else {
            self.run_dir().join("docker.sock")
        }
    }

    /// `DOCKER_HOST` for the Docker Engine API: `unix://...` or `npipe:////./pipe/...`.
    pub fn docker_host(&self) -> String {
        berth_proto::ipc::docker_host(&self.docker_socket(), cfg!(windows))
    }

    /// The VM's sockets, logs and state record.
    pub fn vm_dir(&self) -> PathBuf {
        self.root.join("vm")
    }

    /// State of the engine when it runs natively.
    pub fn engine_dir(&self) -> PathBuf {
        self.root.join("engine")
    }
}

fn default_root() -> PathBuf {
    let home = std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" }).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    if cfg!(target_os = "macos") {
        home.join("Library/Application Support/Berth")
    } else if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(PathBuf::from).unwrap_or(home).join("Berth")
    } else {
        match std::env::var_os("XDG_DATA_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("berth"),
            _ => home.join(".local/share/berth"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_under_root() {
        let home = BerthHome::new("/x");
        assert_eq!(home.grpc_socket(), PathBuf::from("/x/run/berth.sock"));
        assert_eq!(home.docker_socket(), PathBuf::from("/x/run/docker.sock"));
        assert_eq!(home.vm_dir(), PathBuf::from("/x/vm"));
        // On Windows only the default folder has the well-known pipe.
        assert_eq!(home.docker_socket_on(true), PathBuf::from("/x/run/docker.sock"));
        let default = BerthHome { root: "/d".into(), default: true };
        assert_eq!(default.docker_socket_on(true), PathBuf::from(WINDOWS_ENGINE_PIPE));
        assert_eq!(default.docker_socket_on(false), PathBuf::from("/d/run/docker.sock"));
        assert_eq!(berth_proto::ipc::docker_host(&default.docker_socket_on(true), true), "npipe:////./pipe/berth_engine");
    }
}
