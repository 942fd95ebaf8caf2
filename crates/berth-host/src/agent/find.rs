//! Finding the engine: `--host` / `BERTH_HOST`, else `$BERTH_HOME/run/berth.sock`, else
//! the VM recorded in `$BERTH_HOME/vm`. The CLI and Berth Desktop both find it so.

use std::path::PathBuf;
use std::time::Duration;

use super::{AgentClient, AgentEndpoint};
use crate::home::BerthHome;
use crate::vm;

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("invalid engine address {0:?}: expected unix:PATH, vsock:CID:PORT, vsock-hybrid:PATH:PORT or a socket path")]
    BadHost(String),
    #[error("no engine is running: start one with `berth vm start` or `berth serve --native`")]
    NoEngine,
    #[error(transparent)]
    Connect(#[from] super::ConnectError),
}

impl FindError {
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            FindError::BadHost(_) => crate::ErrorKind::InvalidArgument,
            FindError::NoEngine | FindError::Connect(_) => crate::ErrorKind::Unavailable,
        }
    }
}

pub fn parse_host(text: &str) -> Result<AgentEndpoint, FindError> {
    let bad = || FindError::BadHost(text.to_owned());
    if let Some(path) = text.strip_prefix("unix://").or_else(|| text.strip_prefix("unix:")) {
        return Ok(AgentEndpoint::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = text.strip_prefix("vsock-hybrid:") {
        let (path, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        return Ok(AgentEndpoint::HybridVsock { uds: path.into(), port: port.parse().map_err(|_| bad())? });
    }
    if let Some(rest) = text.strip_prefix("vsock:") {
        let (cid, port) = rest.split_once(':').ok_or_else(bad)?;
        return Ok(AgentEndpoint::Vsock { cid: cid.parse().map_err(|_| bad())?, port: port.parse().map_err(|_| bad())? });
    }
    if text.starts_with('/') {
        return Ok(AgentEndpoint::Unix(PathBuf::from(text)));
    }
    Err(bad())
}

/// Where the engine is, without connecting.
pub fn locate(host: Option<&str>, home: &BerthHome) -> Result<AgentEndpoint, FindError> {
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        return parse_host(host);
    }
    let socket = home.grpc_socket();
    if socket.exists() {
        return Ok(AgentEndpoint::Unix(socket));
    }
    match vm::state::load(&vm::VmPaths::new(home).state) {
        Ok(Some(record)) => Ok(vm::endpoint_of(&record)),
        _ => Err(FindError::NoEngine),
    }
}

pub async fn connect(host: Option<&str>, home: &BerthHome) -> Result<(AgentEndpoint, AgentClient), FindError> {
    let endpoint = locate(host, home)?;
    let client = AgentClient::connect(&endpoint, Duration::from_secs(5)).await?;
    Ok((endpoint, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(parse_host("unix:///x/b.sock").ok(), Some(AgentEndpoint::Unix("/x/b.sock".into())));
        assert_eq!(parse_host("/x/b.sock").ok(), Some(AgentEndpoint::Unix("/x/b.sock".into())));
        assert_eq!(parse_host("vsock-hybrid:/x/v.sock:1024").ok(), Some(AgentEndpoint::HybridVsock { uds: "/x/v.sock".into(), port: 1024 }));
        assert_eq!(parse_host("vsock:3:1024").ok(), Some(AgentEndpoint::Vsock { cid: 3, port: 1024 }));
        assert!(matches!(parse_host("tcp://1.2.3.4:1"), Err(FindError::BadHost(_))));
        assert!(matches!(parse_host("vsock:x:1"), Err(FindError::BadHost(_))));
    }

    #[test]
    fn nothing_running_is_a_clear_error() {
        let home = BerthHome::new(std::env::temp_dir().join(format!("berth-cli-none-{}", std::process::id())));
        assert!(matches!(locate(None, &home), Err(FindError::NoEngine)));
    }
}
