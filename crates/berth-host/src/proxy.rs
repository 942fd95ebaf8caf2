//! Serving a host unix socket by passing each connection's bytes to the agent, so the
//! host translates nothing.

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
