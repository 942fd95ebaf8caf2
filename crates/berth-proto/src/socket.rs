//! Binding Berth's unix sockets: private to the user (part of the contract: "sockets are
//! the user's alone"), and never stealing a socket that a live server still answers on.
//! And published ports' sockets, whose IPv6 ones are IPv6 only, so `0.0.0.0:P` and
//! `[::]:P` are two bindings, as docker makes them.

use std::io;
use std::path::PathBuf;
#[cfg(unix)]
use std::{os::unix::fs::PermissionsExt, path::Path};

#[cfg(unix)]
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

/// Binds a unix socket at `path` with mode 0600. A socket file left by a dead engine
/// is replaced; one that still answers is an error.
///
/// The socket is made inside a private (0700) folder of its own next to `path`, made
/// 0600 there, and renamed into place: there is no moment where another user could
/// connect, without touching the process's umask (which every thread shares) or the
/// mode of a parent folder that may be shared (`/run` in the VM). A parent folder
/// this function creates is private (0700).
#[cfg(unix)]
pub async fn bind_unix(path: &Path) -> Result<UnixListener, BindError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| BindError::CreateDir { path: path.to_owned(), source })?;
    }
    if path.exists() && UnixStream::connect(path).await.is_ok() {
        return Err(BindError::InUse { path: path.to_owned() });
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = dir.join(format!(".{name}.{}.bind", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new().mode(0o700).create(&staging).map_err(|source| BindError::CreateDir { path: path.to_owned(), source })?;
    let staged = staging.join("s");
    let bound = (|| {
        let listener = UnixListener::bind(&staged).map_err(|source| BindError::Bind { path: path.to_owned(), source })?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).map_err(|source| BindError::Permissions { path: path.to_owned(), source })?;
        // Replaces a stale socket file in one step.
        std::fs::rename(&staged, path).map_err(|source| BindError::RemoveStale { path: path.to_owned(), source })?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}

/// A socket for a published port at `addr`: address reuse as std's listeners have it,
/// and IPv6 only on an IPv6 address.
fn port_socket(addr: std::net::SocketAddr, kind: socket2::Type, protocol: socket2::Protocol) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // SO_REUSEADDR lets a unix listener rebind over connections in TIME_WAIT; on Windows it
    // would let another socket take the port over, so Windows goes without it (as std).
    if kind == socket2::Type::STREAM && cfg!(unix) {
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP listener for a published port (see [`port_socket`]).
pub fn port_listener(addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = port_socket(addr, socket2::Type::STREAM, socket2::Protocol::TCP)?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// A UDP socket for a published port (see [`port_socket`]).
pub fn port_udp(addr: std::net::SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::from_std(port_socket(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?.into())
}

/// Whether a bind failed because this machine has no IPv6 (disabled, or no address).
pub fn no_ipv6(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::AddrNotAvailable || err.raw_os_error() == Some(libc::EAFNOSUPPORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-listen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn socket_is_private() {
        let dir = temp_dir("private");
        let path = dir.join("run/x.sock");
        let _listener = bind_unix(&path).await.expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(dir.join("run")).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a folder bind_unix makes is private");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A shared folder (as /run is in the VM) keeps its mode, and nothing is left beside
    /// the socket.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_shared_folder_keeps_its_mode() {
        let dir = temp_dir("shared");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let _listener = bind_unix(&dir.join("x.sock")).await.expect("bind");
        assert_eq!(std::fs::metadata(&dir).expect("stat").permissions().mode() & 0o777, 0o755);
        let names: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.sock")]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[cfg(unix)]
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

    #[tokio::test]
    async fn a_port_on_ipv4_and_ipv6_is_two_bindings() {
        let v4 = port_listener("127.0.0.1:0".parse().expect("addr")).expect("v4");
        let port = v4.local_addr().expect("addr").port();
        match port_listener(std::net::SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port)) {
            Ok(v6) => assert_eq!(v6.local_addr().expect("addr").port(), port),
            Err(e) => assert!(no_ipv6(&e), "{e}"),
        }
        // The IPv4 port itself stays taken.
        let again = port_listener(std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port)).expect_err("taken");
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
    }
}
