//! Docker contexts, in the docker CLI's own store (its configuration folder,
//! `$DOCKER_CONFIG` else `~/.docker`): `contexts/meta/<sha256 of the name>/meta.json`
//! for a context's endpoint, `contexts/tls/<sha256>/docker/{ca,cert,key}.pem` for its TLS
//! files.
//!
//! Berth writes one, `berth`: `docker --context berth ...` (or `docker context use
//! berth`) reaches Berth's Docker Engine API socket. And Berth reads them to find which
//! Docker endpoint the user means (a Swarm manager for `berth stack`), as the docker CLI
//! finds it: `--host`, else `--context`, else `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`
//! and `DOCKER_CERT_PATH`), else `DOCKER_CONTEXT`, else `config.json`'s current context;
//! so a context made with `docker context create` works unchanged.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const CONTEXT_NAME: &str = "berth";

/// Writes (or refreshes) the context pointing at `socket`; returns its file.
pub fn ensure(socket: &Path) -> std::io::Result<PathBuf> {
    ensure_in(&crate::credentials::docker_config_dir(), socket)
}

pub fn ensure_in(config_dir: &Path, socket: &Path) -> std::io::Result<PathBuf> {
    let dir = config_dir.join("contexts").join("meta").join(context_id(CONTEXT_NAME));
    std::fs::create_dir_all(&dir)?;
    let meta = serde_json::json!({
        "Name": CONTEXT_NAME,
        "Metadata": {"Description": "Berth"},
        "Endpoints": {"docker": {"Host": berth_proto::ipc::docker_host(socket, cfg!(windows)), "SkipTLSVerify": false}},
    });
    let path = dir.join("meta.json");
    let tmp = dir.join("meta.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&meta).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The TLS files of an endpoint: the CA to check the server against, and the client's
/// certificate and key when it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A Docker endpoint: `unix:///path` or `tcp://host:port`, with TLS or without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    pub host: String,
    pub tls: Option<TlsFiles>,
    /// Where it came from, for errors (`--host`, `context "prod"`, `DOCKER_HOST`).
    pub from: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("context {name:?} does not exist (docker context ls lists them; they are kept in {})", store.display())]
    Missing { name: String, store: PathBuf },
    #[error("context {name:?}: {detail}")]
    Unusable { name: String, detail: String },
    #[error("{0}")]
    Tls(String),
}

/// The endpoint the flags and the environment name, with the docker CLI's
/// configuration in `config_dir`; `None` for the default one (the `default` context with
/// no `DOCKER_HOST`).
pub fn resolve(
    config_dir: &Path,
    host: Option<&str>,
    context: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<DockerEndpoint>, ContextError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let from_env_tls = |host: &str, from: &str| -> Result<DockerEndpoint, ContextError> {
        let tls = match (set("DOCKER_TLS_VERIFY"), set("DOCKER_TLS")) {
            (Some(_), _) => {
                let dir = set("DOCKER_CERT_PATH").map(PathBuf::from).unwrap_or_else(|| config_dir.to_owned());
                let identity = (dir.join("cert.pem").exists() && dir.join("key.pem").exists()).then(|| (dir.join("cert.pem"), dir.join("key.pem")));
                Some(TlsFiles { ca: dir.join("ca.pem"), identity })
            }
            (None, Some(_)) => return Err(ContextError::Tls(
                "DOCKER_TLS without DOCKER_TLS_VERIFY (TLS that trusts any server) is not supported: set DOCKER_TLS_VERIFY=1 and give DOCKER_CERT_PATH the CA"
                    .to_owned(),
            )),
            (None, None) => None,
        };
        Ok(DockerEndpoint { host: host.to_owned(), tls, from: from.to_owned() })
    };
    if let Some(host) = host {
        return from_env_tls(host, "--host").map(Some);
    }
    if let Some(name) = context {
        return read_context(config_dir, name);
    }
    if let Some(host) = set("DOCKER_HOST") {
        return from_env_tls(&host, "DOCKER_HOST").map(Some);
    }
    if let Some(name) = set("DOCKER_CONTEXT") {
        return read_context(config_dir, &name);
    }
    let current = std::fs::read(config_dir.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|config| config["currentContext"].as_str().map(str::to_owned))
        .filter(|name| !name.is_empty());
    match current {
        Some(name) => read_context(config_dir, &name),
        None => Ok(None),
    }
}

/// A context's stored endpoint; `default` is no stored context.
fn read_context(config_dir: &Path, name: &str) -> Result<Option<DockerEndpoint>, ContextError> {
    if name == "default" {
        return Ok(None);
    }
    let id = context_id(name);
    let store = config_dir.join("contexts");
    let meta = store.join("meta").join(&id).join("meta.json");
    let unusable = |detail: String| ContextError::Unusable { name: name.to_owned(), detail };
    let bytes = match std::fs::read(&meta) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ContextError::Missing { name: name.to_owned(), store }),
        Err(e) => return Err(unusable(format!("{}: {e}", meta.display()))),
    };
    let meta_json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| unusable(format!("{}: {e}", meta.display())))?;
    let docker = &meta_json["Endpoints"]["docker"];
    let host = docker["Host"].as_str().filter(|h| !h.is_empty()).ok_or_else(|| unusable("it has no Docker endpoint".to_owned()))?;
    if docker["SkipTLSVerify"].as_bool() == Some(true) {
        return Err(unusable("skip-tls-verify (TLS that trusts any server) is not supported: give the context the server's CA (ca=...)".to_owned()));
    }
    let tls_dir = store.join("tls").join(&id).join("docker");
    let (ca, cert, key) = (tls_dir.join("ca.pem"), tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
    let tls = if ca.exists() {
        Some(TlsFiles { ca, identity: (cert.exists() && key.exists()).then_some((cert, key)) })
    } else if cert.exists() {
        return Err(unusable("it has a client certificate but no CA to check the server with: give it ca=...".to_owned()));
    } else {
        None
    };
    Ok(Some(DockerEndpoint { host: host.to_owned(), tls, from: format!("context {name:?}") }))
}

/// A context's folder name: the hex SHA-256 of its name.
fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_context_lands_where_the_docker_cli_looks() {
        let dir = std::env::temp_dir().join(format!("berth-ctx-{}", std::process::id()));
        let socket = if cfg!(windows) { Path::new(crate::home::WINDOWS_ENGINE_PIPE) } else { Path::new("/run/user/1000/berth/docker.sock") };
        let path = ensure_in(&dir, socket).expect("write");
        // The directory is sha256("berth"), as the docker CLI names it.
        assert_eq!(path, dir.join("contexts/meta/5c2f64c7f21efd5fb5e3d6a499abe5eacb248ae6f6f0085387c9a056d10ef5fd/meta.json"));
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(meta["Name"], "berth");
        let host = if cfg!(windows) { "npipe:////./pipe/berth_engine" } else { "unix:///run/user/1000/berth/docker.sock" };
        assert_eq!(meta["Endpoints"]["docker"]["Host"], host);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn store_context(config_dir: &Path, name: &str, host: &str, tls: &[&str]) {
        let id = context_id(name);
        let meta = config_dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).expect("dir");
        let json = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(meta.join("meta.json"), json.to_string()).expect("meta");
        let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
        for file in tls {
            std::fs::create_dir_all(&tls_dir).expect("dir");
            std::fs::write(tls_dir.join(file), "pem").expect("pem");
        }
    }

    #[test]
    fn the_endpoint_is_found_in_the_docker_clis_order() {
        let dir = std::env::temp_dir().join(format!("berth-docker-context-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        store_context(&dir, "swarm", "tcp://10.0.0.1:2376", &["ca.pem", "cert.pem", "key.pem"]);
        store_context(&dir, "plain", "unix:///run/other.sock", &[]);
        let mut vars: HashMap<&str, String> = HashMap::new();
        let resolve_with = |vars: &HashMap<&str, String>, host: Option<&str>, context: Option<&str>| {
            let env = |k: &str| vars.get(k).cloned();
            resolve(&dir, host, context, &env)
        };
        assert_eq!(resolve_with(&vars, None, None), Ok(None), "nothing named: the default");
        let tls_dir = dir.join("contexts/tls").join(context_id("swarm")).join("docker");
        let swarm = DockerEndpoint {
            host: "tcp://10.0.0.1:2376".to_owned(),
            tls: Some(TlsFiles { ca: tls_dir.join("ca.pem"), identity: Some((tls_dir.join("cert.pem"), tls_dir.join("key.pem"))) }),
            from: "context \"swarm\"".to_owned(),
        };
        std::fs::write(dir.join("config.json"), r#"{"currentContext": "swarm"}"#).expect("config");
        assert_eq!(resolve_with(&vars, None, None), Ok(Some(swarm.clone())), "the current context");
        vars.insert("DOCKER_CONTEXT", "plain".to_owned());
        assert_eq!(resolve_with(&vars, None, None).map(|e| e.map(|e| e.host)), Ok(Some("unix:///run/other.sock".to_owned())), "DOCKER_CONTEXT wins");
        vars.insert("DOCKER_HOST", "tcp://10.0.0.9:2375".to_owned());
        assert_eq!(resolve_with(&vars, None, None).map(|e| e.map(|e| (e.host, e.tls))), Ok(Some(("tcp://10.0.0.9:2375".to_owned(), None))), "DOCKER_HOST wins");
        vars.insert("DOCKER_TLS_VERIFY", "1".to_owned());
        vars.insert("DOCKER_CERT_PATH", "/certs".to_owned());
        let env_tls = resolve_with(&vars, None, None).map(|e| e.and_then(|e| e.tls));
        assert_eq!(env_tls, Ok(Some(TlsFiles { ca: PathBuf::from("/certs/ca.pem"), identity: None })), "the CA from DOCKER_CERT_PATH");
        assert_eq!(resolve_with(&vars, None, Some("swarm")), Ok(Some(swarm)), "--context wins");
        assert_eq!(resolve_with(&vars, Some("unix:///x"), Some("swarm")).map(|e| e.map(|e| e.from)), Ok(Some("--host".to_owned())), "--host wins");
        assert_eq!(resolve_with(&vars, None, Some("default")), Ok(None));

        let missing = resolve_with(&vars, None, Some("prod")).expect_err("no such context").to_string();
        assert!(missing.starts_with("context \"prod\" does not exist"), "{missing}");
        store_context(&dir, "half", "tcp://h:2376", &["cert.pem", "key.pem"]);
        assert!(resolve_with(&vars, None, Some("half")).expect_err("no CA").to_string().contains("no CA"));
        vars.remove("DOCKER_TLS_VERIFY");
        vars.insert("DOCKER_TLS", "1".to_owned());
        assert!(matches!(resolve_with(&vars, None, None), Err(ContextError::Tls(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
