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
            let (mut client_in, mut client_out) = conn.into_split();
            let (mut up_in, mut up_out) = tokio::io::split(upstream);
            let input = berth_proto::halfclose::send_framed(&mut client_in, &mut up_out);
            let output = async {
                let copied = tokio::io::copy(&mut up_in, &mut client_out).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut client_out).await;
                copied
            };
            if let Err(err) = berth_proto::halfclose::join(input, output).await {
                tracing::debug!(error = %err, "proxied connection ended");
            }
        });
    }
}
