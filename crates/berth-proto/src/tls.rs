//! The Docker Engine API on TCP, which Berth serves only with mutual TLS: dockerd's
//! `--tlsverify` files (`--tlscacert`, `--tlscert`, `--tlskey`), so the client
//! certificates made for dockerd work unchanged. There is no TLS-without-verify mode: a
//! client that reaches the port may do anything the engine can, so it must show a
//! certificate signed by the given CA. The native agent serves the API on the TLS
//! stream itself; in VM mode the host ends TLS and passes the bytes on over vsock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
pub use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
pub use tokio_rustls::TlsAcceptor;

/// A client's TLS stream, once its certificate is verified.
pub type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// How long a client may take to finish its handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the API listens on TCP, and dockerd's three TLS files.
#[derive(Debug, Clone)]
pub struct TcpTls {
    pub addr: SocketAddr,
    /// The CA that signs client certificates.
    pub ca: PathBuf,
    /// The server's certificate (chain), PEM.
    pub cert: PathBuf,
    /// The server's private key, PEM.
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {detail}")]
    File { what: &'static str, path: PathBuf, detail: String },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("the TLS settings are not usable: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_err = |detail: String| TlsError::File { what, path: path.to_owned(), detail };
    let certs =
        CertificateDer::pem_file_iter(path).map_err(|e| file_err(e.to_string()))?.collect::<Result<Vec<_>, _>>().map_err(|e| file_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.to_owned() });
    }
    Ok(certs)
}

/// The certificates of the CA file `ca`, as the roots a peer is checked against.
fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("CA certificate", ca)? {
        roots.add(cert).map_err(|e| TlsError::File { what: "CA certificate", path: ca.to_owned(), detail: e.to_string() })?;
    }
    Ok(roots)
}

/// The server's TLS settings: its certificate and key, and clients verified against
/// the CA (a client without a certificate, or with one the CA did not sign, is refused
/// in the handshake).
pub fn server_config(tls: &TcpTls) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&tls.ca)?), provider.clone()).build().map_err(|e| TlsError::Config(e.to_string()))?;
    let chain = certificates("certificate", &tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::File { what: "private key", path: tls.key.clone(), detail: e.to_string() })?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A client's TLS settings, as the docker CLI's `DOCKER_TLS_VERIFY` and a docker
/// context's TLS files give them: the server checked against `ca`, and the client's own
/// certificate and key (`identity`) shown when the server asks.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((cert, key)) => {
            let chain = certificates("certificate", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File { what: "private key", path: key.to_owned(), detail: e.to_string() })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| TlsError::Config(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A TLS client stream to a server.
pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The handshake on `stream` with the server named `host` (a DNS name or an IP address,
/// which its certificate must carry).
pub async fn connect(config: Arc<ClientConfig>, host: &str, stream: TcpStream) -> std::io::Result<ClientStream> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the TLS handshake timed out")),
    }
}

/// Reads the TLS files and binds the address: every mistake is an error before the
/// first client, named with its file.
pub async fn bind(tls: &TcpTls) -> Result<(TcpListener, TlsAcceptor), TlsError> {
    let acceptor = TlsAcceptor::from(server_config(tls)?);
    let listener = TcpListener::bind(tls.addr).await.map_err(|source| TlsError::Bind { addr: tls.addr, source })?;
    Ok((listener, acceptor))
}

/// Accepts clients forever; each that completes its handshake in time goes to
/// `serve`. A failed handshake (no certificate, a stranger's, plain HTTP) only ends that
/// connection.
pub async fn accept_each<F>(listener: TcpListener, acceptor: TlsAcceptor, serve: F)
where
    F: Fn(ServerStream) + Clone + Send + 'static,
{
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors and the like: the listener itself is fine.
                tracing::warn!(error = %err, "cannot accept a Docker API client on TCP");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let serve = serve.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                Ok(Ok(stream)) => serve(stream),
                Ok(Err(err)) => tracing::info!(%peer, error = %err, "TLS handshake refused"),
                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> TcpTls {
        TcpTls { addr: "127.0.0.1:0".parse().expect("addr"), ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
    }

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let dir = std::env::temp_dir().join(format!("berth-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let tls = settings(&dir);
        let err = server_config(&tls).expect_err("no files").to_string();
        assert!(err.starts_with(&format!("cannot read CA certificate {}", tls.ca.display())), "{err}");
        std::fs::write(&tls.ca, "not a certificate\n").expect("write");
        let err = server_config(&tls).expect_err("no PEM").to_string();
        assert_eq!(err, format!("{} holds no CA certificate", tls.ca.display()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
