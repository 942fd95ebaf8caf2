//! The `berth` docker context: `docker --context berth ...` (or `docker context use
//! berth`) reaches Berth's Docker Engine API socket. Written where the docker CLI
//! keeps contexts: `contexts/meta/<sha256 of the name>/meta.json` under its
//! configuration directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const CONTEXT_NAME: &str = "berth";

/// Writes (or refreshes) the context pointing at `socket`; returns its file.
pub fn ensure(socket: &Path) -> std::io::Result<PathBuf> {
    ensure_in(&crate::credentials::docker_config_dir(), socket)
}

pub fn ensure_in(config_dir: &Path, socket: &Path) -> std::io::Result<PathBuf> {
    let digest: String = Sha256::digest(CONTEXT_NAME.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let dir = config_dir.join("contexts").join("meta").join(digest);
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

#[cfg(test)]
mod tests {
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
}
