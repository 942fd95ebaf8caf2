//! Serving a host unix socket by passing each connection's bytes to the agent, so the
//! host translates nothing. The Docker API's socket needs half-close, which vsock does
//! not carry: its input goes as frames (`berth_proto::halfclose`).

use tokio::net::UnixListener;

use crate::agent::{AgentEndpoint, AgentStream};

/// Accepts connections forever; each is joined to a new connection to `endpoint`.
pub async fn serve_unix(listener: UnixListener, endpoint: AgentEndpoint) -> std::io::Result<()> {
    loop {
        let (mut conn, _) = listener.accept().await?;
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
pub async fn serve_unix_framed(listener: UnixListener, endpoint: AgentEndpoint) -> std::io::Result<()> {
    loop {
        let (conn, _) = listener.accept().await?;
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let upstream = match AgentStream::connect(&endpoint).await {
                Ok(upstream) => upstream,
                Err(err) => {
                    tracing::warn!(error = %err, %endpoint, "cannot reach the agent");
                    return;
                }
            };
            if let Err(err) = berth_proto::halfclose::host_pipe(conn, upstream).await {
                tracing::debug!(error = %err, "proxied connection ended");
            }
        });
    }
}
