//! A small client of another engine's Docker Engine API (a Swarm manager's, for
//! `berth stack` and `berth node`): JSON requests over HTTP/1.1 on `unix://PATH` or
//! `tcp://HOST:PORT`, with TLS when the endpoint has its files (`DOCKER_TLS_VERIFY`, or a
//! docker context's), plain only where the user asks for it, as docker does.

#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;

use berth_proto::tls::ClientConfig;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The API version asked for: Swarm's service fields Berth sends (CapabilityAdd, Ulimits)
/// need 1.41.
pub const API_VERSION: &str = "v1.41";

#[derive(Debug, thiserror::Error)]
pub enum DockerApiError {
    #[error("{0:?} is not a Docker endpoint: expected unix:///path or tcp://host:port")]
    Endpoint(String),
    #[error("the TLS files of {from}: {detail}")]
    Tls { from: String, detail: String },
    #[error("cannot reach the Docker API at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The engine's refusal, in its words.
    #[error("{method} {path}: {message} ({status})")]
    Refused { method: String, path: String, status: u16, message: String },
    #[error("{method} {path}: the answer is not JSON: {detail}")]
    Answer { method: String, path: String, detail: String },
}

impl DockerApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            DockerApiError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Endpoint {
    #[cfg(unix)]
    Unix(PathBuf),
    /// `host:port`, and TLS settings with the server's name.
    Tcp(String, Option<(Arc<ClientConfig>, String)>),
}

#[derive(Debug, Clone)]
pub struct DockerClient {
    endpoint: Endpoint,
    text: String,
}

impl DockerClient {
    pub fn new(url: &str) -> Result<DockerClient, DockerApiError> {
        let endpoint = if let Some(path) = url.strip_prefix("unix://") {
            #[cfg(unix)]
            {
                Endpoint::Unix(PathBuf::from(path))
            }
            #[cfg(not(unix))]
            {
                let _ = path;
                return Err(DockerApiError::Endpoint(url.to_owned()));
            }
        } else if let Some(authority) = url.strip_prefix("tcp://") {
            let authority = authority.trim_end_matches('/');
            if authority.is_empty() {
                return Err(DockerApiError::Endpoint(url.to_owned()));
            }
            Endpoint::Tcp(if authority.contains(':') { authority.to_owned() } else { format!("{authority}:2375") }, None)
        } else {
            return Err(DockerApiError::Endpoint(url.to_owned()));
        };
        Ok(DockerClient { endpoint, text: url.to_owned() })
    }

    /// The endpoint a docker context or the environment names, with its TLS files.
    pub fn for_endpoint(endpoint: &crate::docker_context::DockerEndpoint) -> Result<DockerClient, DockerApiError> {
        let mut client = DockerClient::new(&endpoint.host)?;
        if let Some(tls) = &endpoint.tls {
            let tls_err = |detail: String| DockerApiError::Tls { from: endpoint.from.clone(), detail };
            let (authority, settings) = match &mut client.endpoint {
                Endpoint::Tcp(authority, settings) => (authority, settings),
                #[cfg(unix)]
                Endpoint::Unix(_) => return Err(tls_err(format!("TLS is for tcp:// endpoints, not {}", endpoint.host))),
            };
            let identity = tls.identity.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path()));
            let config = berth_proto::tls::client_config(&tls.ca, identity).map_err(|e| tls_err(e.to_string()))?;
            let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority).trim_start_matches('[').trim_end_matches(']').to_owned();
            // A TLS endpoint without a port is on docker's TLS port.
            if !endpoint.host.trim_start_matches("tcp://").contains(':') {
                *authority = format!("{host}:2376");
            }
            *settings = Some((config, host));
        }
        Ok(client)
    }

    pub fn endpoint(&self) -> &str {
        &self.text
    }

    /// One request; the answer's JSON (`null` for an empty body). A status of 400 or
    /// more is the engine's refusal, with its message.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, DockerApiError> {
        let unreachable = |detail: String| DockerApiError::Unreachable { endpoint: self.text.clone(), detail };
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize")).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("/{API_VERSION}{path}"))
            .header("host", "docker")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = match &self.endpoint {
            #[cfg(unix)]
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| unreachable(e.to_string()))?;
                send(stream, request).await.map_err(unreachable)?
            }
            Endpoint::Tcp(authority, tls) => {
                let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| unreachable(e.to_string()))?;
                match tls {
                    Some((config, host)) => {
                        let stream = berth_proto::tls::connect(config.clone(), host, stream).await.map_err(|e| unreachable(format!("TLS: {e}")))?;
                        send(stream, request).await.map_err(unreachable)?
                    }
                    None => send(stream, request).await.map_err(unreachable)?,
                }
            }
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| unreachable(e.to_string()))?.to_bytes();
        if status >= 400 {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(DockerApiError::Refused { method: method.to_owned(), path: path.to_owned(), status, message });
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| DockerApiError::Answer { method: method.to_owned(), path: path.to_owned(), detail: e.to_string() })
    }
}

async fn send<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| with_causes(&e))?;
    let (ended, ended_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = ended.send(connection.await);
    });
    match sender.send_request(request).await {
        Ok(response) => Ok(response),
        // The connection's own end says why the request failed (a TLS alert: the server
        // refused the client's certificate).
        Err(e) => match tokio::time::timeout(std::time::Duration::from_secs(2), ended_rx).await {
            Ok(Ok(Err(connection_error))) => Err(with_causes(&connection_error)),
            _ => Err(with_causes(&e)),
        },
    }
}

/// An error with what caused it (hyper's "connection error" says why only in its source:
/// a TLS alert, a reset).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `?filters=` for the Docker API: `{"key":["value",...]}`, URL-encoded.
pub fn filters(pairs: &[(&str, &str)]) -> String {
    let mut map: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    let json = serde_json::to_string(&map).expect("plain JSON");
    let mut out = String::from("filters=");
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_docker_urls() {
        assert!(DockerClient::new("tcp://10.0.0.1").is_ok());
        assert!(matches!(DockerClient::new("tcp://10.0.0.1").map(|c| c.endpoint), Ok(Endpoint::Tcp(a, None)) if a == "10.0.0.1:2375"));
        assert!(DockerClient::new("unix:/x").is_err());
        assert!(DockerClient::new("tcp://").is_err());
        assert!(DockerClient::new("ssh://host").is_err());
    }

    #[test]
    fn tls_is_for_tcp_and_its_files_are_named() {
        use crate::docker_context::{DockerEndpoint, TlsFiles};
        let endpoint = |host: &str| DockerEndpoint {
            host: host.to_owned(),
            tls: Some(TlsFiles { ca: std::path::PathBuf::from("/nonexistent/ca.pem"), identity: None }),
            from: "context \"m\"".to_owned(),
        };
        let err = DockerClient::for_endpoint(&endpoint("tcp://manager")).expect_err("no CA file").to_string();
        assert!(err.starts_with("the TLS files of context \"m\": ") && err.contains("/nonexistent/ca.pem"), "{err}");
        #[cfg(unix)]
        {
            let err = DockerClient::for_endpoint(&endpoint("unix:///run/d.sock")).expect_err("TLS on a socket").to_string();
            assert!(err.contains("TLS is for tcp://"), "{err}");
        }
        let plain = DockerClient::for_endpoint(&DockerEndpoint { host: "tcp://manager".to_owned(), tls: None, from: "--host".to_owned() }).expect("plain");
        assert!(matches!(plain.endpoint, Endpoint::Tcp(a, None) if a == "manager:2375"));
    }

    #[test]
    fn filters_are_url_encoded_json() {
        assert_eq!(filters(&[("label", "a=b")]), "filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    }
}
