//! Serving a host unix socket by passing each connection's bytes to the agent, so the
//! host translates nothing. The Docker API's socket needs half-close, which vsock does
//! not carry: its input goes as frames (`berth_proto::halfclose`). The Docker API on
//! TCP, when configured, is served the same way once TLS has verified the client.

use berth_proto::ipc::LocalListener;
use berth_proto::tls::TlsAcceptor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::agent::{AgentEndpoint, AgentStream};

/// Why the engine cannot be reached (the VM died), once that is so: connections are
/// then answered with it instead of being passed on (or left to hang).
pub type Down = tokio::sync::watch::Receiver<Option<String>>;

/// Accepts connections forever; each is joined to a new connection to `endpoint`, or
/// closed at once while the engine is down.
pub async fn serve_unix(mut listener: LocalListener, endpoint: AgentEndpoint, down: Down) -> std::io::Result<()> {
    loop {
        let mut conn = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, say: wait for some to close instead of spinning
                // (or giving up the socket for good).
                tracing::warn!(error = %err, "accepting a client");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if down.borrow().is_some() {
            continue;
        }
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            match AgentStream::connect(&endpoint).await {
                Ok(mut upstream) => {
                    if let Err(err) = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await {
                        tracing::debug!(error = %err, "proxied connection ended");
                    }
                }
                Err(err) => tracing::warn!(error = %err, %endpoint, "cannot reach the agent"),
            }
        });
    }
}

/// `serve_unix` for a protocol that half-closes (the Docker API's hijacked streams): the
/// client's bytes go up as frames ending with an end frame, so the client's
/// `shutdown(SHUT_WR)` reaches the guest as end of input while the answer still flows
/// back. The connection ends when the guest closes its side.
pub async fn serve_unix_framed(mut listener: LocalListener, endpoint: AgentEndpoint, down: Down) -> std::io::Result<()> {
    loop {
        let conn = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, say: wait for some to close instead of spinning
                // (or giving up the socket for good).
                tracing::warn!(error = %err, "accepting a client");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let reason = down.borrow().clone();
        match reason {
            Some(reason) => {
                tokio::spawn(answer_unavailable(conn, reason));
            }
            None => {
                tokio::spawn(pipe_framed(conn, endpoint.clone()));
            }
        }
    }
}

/// Answers an HTTP request with 503 and docker's error body, so the docker CLI prints
/// the reason ("Error response from daemon: ...") instead of hanging.
async fn answer_unavailable<C>(mut client: C, reason: String)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The request's head first (a client may not read before it has written it).
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read_head).await;
    let body = serde_json::json!({ "message": reason }).to_string();
    let reply =
        format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = client.write_all(reply.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// `serve_unix_framed` for the Docker API on TCP: clients verified by mutual TLS
/// (`berth_proto::tls`), their bytes framed to the agent once the handshake is done.
pub async fn serve_tls_framed(listener: TcpListener, acceptor: TlsAcceptor, endpoint: AgentEndpoint) {
    berth_proto::tls::accept_each(listener, acceptor, move |stream| {
        tokio::spawn(pipe_framed(stream, endpoint.clone()));
    })
    .await;
}

/// One client joined to a new connection to the agent, its input framed.
async fn pipe_framed<C>(client: C, endpoint: AgentEndpoint)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let upstream = match AgentStream::connect(&endpoint).await {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::warn!(error = %err, %endpoint, "cannot reach the agent");
            return;
        }
    };
    if let Err(err) = berth_proto::halfclose::host_pipe(client, upstream).await {
        tracing::debug!(error = %err, "proxied connection ended");
    }
}
