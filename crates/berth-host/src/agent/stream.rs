use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use berth_proto::ipc::LocalStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(unix)]
use tokio::net::UnixStream;

use super::AgentEndpoint;

/// A byte stream to the agent, whatever the transport.
#[derive(Debug)]
pub enum AgentStream {
    /// A unix socket or, on Windows, a named pipe.
    Local(LocalStream),
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockStream),
    Mux(tokio_yamux::StreamHandle),
}

/// How long a stream of the serial mux may take to open (the mux itself starts over
/// when one goes unanswered far longer than a busy guest takes).
const MUX_OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl AgentStream {
    pub async fn connect(endpoint: &AgentEndpoint) -> io::Result<AgentStream> {
        match endpoint {
            AgentEndpoint::Unix(path) => Ok(AgentStream::Local(berth_proto::ipc::connect(path).await?)),
            #[cfg(unix)]
            AgentEndpoint::HybridVsock { uds, port } => {
                let stream = UnixStream::connect(uds).await?;
                Ok(AgentStream::Local(hybrid_handshake(stream, *port).await?))
            }
            #[cfg(not(unix))]
            AgentEndpoint::HybridVsock { .. } => {
                Err(io::Error::new(io::ErrorKind::Unsupported, "vhost-device-vsock's unix socket is not available on this host"))
            }
            #[cfg(target_os = "linux")]
            AgentEndpoint::Vsock { cid, port } => {
                let addr = tokio_vsock::VsockAddr::new(*cid, *port);
                Ok(AgentStream::Vsock(tokio_vsock::VsockStream::connect(addr).await?))
            }
            #[cfg(not(target_os = "linux"))]
            AgentEndpoint::Vsock { .. } => Err(io::Error::new(io::ErrorKind::Unsupported, "AF_VSOCK is not available on this host")),
            AgentEndpoint::Serial { mux, port } => Ok(AgentStream::Mux(mux.open(*port, MUX_OPEN_TIMEOUT).await?)),
        }
    }
}

/// The Firecracker-style hybrid vsock handshake: send "CONNECT <port>\n", expect
/// "OK <host port>\n". Reads byte by byte so nothing after the reply is swallowed.
#[cfg(unix)]
pub(crate) async fn hybrid_handshake(mut stream: UnixStream, port: u32) -> io::Result<UnixStream> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(format!("CONNECT {port}\n").as_bytes()).await?;
    let mut line = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("vsock port {port} closed the connection during the handshake (nothing listening yet?)"),
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "vsock handshake reply too long"));
        }
    }
    let reply = String::from_utf8_lossy(&line);
    if reply.starts_with("OK ") {
        Ok(stream)
    } else {
        Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("vsock handshake refused for port {port}: {reply:?}")))
    }
}

impl AsyncRead for AgentStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AgentStream::Local(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(target_os = "linux")]
            AgentStream::Vsock(s) => Pin::new(s).poll_read(cx, buf),
            AgentStream::Mux(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AgentStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AgentStream::Local(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(target_os = "linux")]
            AgentStream::Vsock(s) => Pin::new(s).poll_write(cx, buf),
            AgentStream::Mux(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AgentStream::Local(s) => Pin::new(s).poll_flush(cx),
            #[cfg(target_os = "linux")]
            AgentStream::Vsock(s) => Pin::new(s).poll_flush(cx),
            AgentStream::Mux(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AgentStream::Local(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(target_os = "linux")]
            AgentStream::Vsock(s) => Pin::new(s).poll_shutdown(cx),
            AgentStream::Mux(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn handshake_accepts_ok_and_keeps_following_bytes() {
        let (client, mut server) = UnixStream::pair().expect("pair");
        let server_task = tokio::spawn(async move {
            let mut buf = [0u8; 13];
            server.read_exact(&mut buf).await.expect("read connect");
            assert_eq!(&buf, b"CONNECT 1024\n");
            server.write_all(b"OK 1073741824\nhello").await.expect("reply");
            server
        });
        let mut stream = hybrid_handshake(client, 1024).await.expect("handshake");
        let mut rest = [0u8; 5];
        stream.read_exact(&mut rest).await.expect("payload");
        assert_eq!(&rest, b"hello");
        drop(server_task.await.expect("server"));
    }

    #[tokio::test]
    async fn handshake_reports_reset_when_nobody_listens() {
        let (client, server) = UnixStream::pair().expect("pair");
        drop(server);
        let err = hybrid_handshake(client, 1024).await.expect_err("must fail");
        assert!(matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe), "{err}");
    }

    #[tokio::test]
    async fn handshake_refusal_is_an_error() {
        let (client, mut server) = UnixStream::pair().expect("pair");
        tokio::spawn(async move {
            let mut buf = [0u8; 13];
            let _ = server.read_exact(&mut buf).await;
            let _ = server.write_all(b"NO\n").await;
        });
        let err = hybrid_handshake(client, 1024).await.expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
