//! Binding Berth's unix sockets: private to the user (part of the contract: "sockets are
//! the user's alone"), and never stealing a socket that a live server still answers on.
//! And published ports' sockets, whose IPv6 ones are IPv6 only, so `0.0.0.0:P` and
//! `[::]:P` are two bindings, as docker makes them.

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

/// A socket for a published port at `addr`: address reuse as std's listeners have it,
/// and IPv6 only on an IPv6 address.
fn port_socket(addr: std::net::SocketAddr, kind: socket2::Type, protocol: socket2::Protocol) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if kind == socket2::Type::STREAM {
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
