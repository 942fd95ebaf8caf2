//! Binding Berth's unix sockets: private to the user (part of the contract: "sockets are
//! the user's alone"), and never stealing a socket that a live server still answers on.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("socket {path} is in use by another running server")]
    InUse { path: PathBuf },
    #[error("cannot create the directory of socket {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot remove stale socket {path}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot bind socket {path}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot restrict the permissions of socket {path}")]
    Permissions { path: PathBuf, source: io::Error },
}

impl BindError {
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            BindError::InUse { .. } => crate::ErrorKind::Conflict,
            _ => crate::ErrorKind::Internal,
        }
    }
}

/// Binds a unix socket at `path` with mode 0600 (its directory 0700). A socket file
/// left by a dead engine is replaced; one that still answers is an error.
pub async fn bind_unix(path: &Path) -> Result<UnixListener, BindError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| BindError::CreateDir { path: path.to_owned(), source })?;
        // Best effort: the directory may be shared (e.g. /run); the socket's own mode is
        // what keeps it private.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(BindError::InUse { path: path.to_owned() });
        }
        std::fs::remove_file(path)
            .map_err(|source| BindError::RemoveStale { path: path.to_owned(), source })?;
    }
    // Create the socket with a private umask so there is no moment where it is open
    // to others, then set the mode explicitly.
    // SAFETY: umask only changes this process's file-creation mask; it cannot fail.
    let old = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|source| BindError::Bind { path: path.to_owned(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| BindError::Permissions { path: path.to_owned(), source })?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-listen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn socket_is_private() {
        let dir = temp_dir("private");
        let path = dir.join("run/x.sock");
        let _listener = bind_unix(&path).await.expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn live_socket_is_refused_and_stale_one_replaced() {
        let dir = temp_dir("busy");
        let path = dir.join("x.sock");
        let live = bind_unix(&path).await.expect("first bind");
        let err = bind_unix(&path).await.expect_err("second bind must fail");
        assert!(matches!(err, BindError::InUse { .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Conflict);
        drop(live);
        // The file is still there but nobody answers: it is stale and gets replaced.
        assert!(path.exists());
        let _again = bind_unix(&path).await.expect("stale socket replaced");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
