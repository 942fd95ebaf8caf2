//! `berth diagnose`: one archive for a bug report — versions, the settings (anything
//! that looks like a secret removed), the VM's console, QEMU, vhost, virtiofsd and
//! session logs (the engine's own log is on the VM's console), the VM and session
//! records, and a summary of the engine's state when it answers. Registry credentials
//! are never read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent::{AgentClient, AgentEndpoint};
use crate::home::BerthHome;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
#[error("cannot write the diagnostics archive {path}")]
pub struct DiagnoseError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl DiagnoseError {
    pub fn kind(&self) -> berth_proto::ErrorKind {
        berth_proto::ErrorKind::Internal
    }
}

/// The files of `$BERTH_HOME/vm/` that go in as they are.
const VM_FILES: &[&str] =
    &["console.log", "qemu.log", "vhost-device-vsock.log", "session.log", "session.json", "state.json", "boot.conf", "accel-verdicts.json"];

/// Writes the archive (a gzipped tar) to `out`; returns the names it holds.
pub async fn write(home: &BerthHome, out: &Path, client_version: &str) -> Result<Vec<String>, DiagnoseError> {
    let fail = |source| DiagnoseError { path: out.to_owned(), source };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let settings = match Settings::load(home) {
        Ok(settings) => redact(serde_json::to_value(&settings).unwrap_or(Value::Null)),
        Err(e) => json!({ "error": e.to_string() }),
    };
    entries.push(("settings.json".into(), pretty(&settings)));
    let vm_dir = home.vm_dir();
    for name in VM_FILES {
        if let Ok(bytes) = std::fs::read(vm_dir.join(name)) {
            entries.push((format!("vm/{name}"), tail_bytes(bytes, 4 << 20)));
        }
    }
    if let Ok(dir) = std::fs::read_dir(&vm_dir) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("virtiofsd-") && name.ends_with(".log") {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    entries.push((format!("vm/{name}"), tail_bytes(bytes, 1 << 20)));
                }
            }
        }
    }
    let engine = engine_summary(home).await;
    entries.push((
        "versions.json".into(),
        pretty(&json!({
            "client": client_version,
            "host_os": std::env::consts::OS,
            "host_arch": std::env::consts::ARCH,
            "engine": engine.get("version").cloned().unwrap_or(Value::Null),
        })),
    ));
    entries.push(("engine.json".into(), pretty(&engine)));

    let file = std::fs::File::create(out).map_err(fail)?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    let mut names = Vec::new();
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
        header.set_cksum();
        tar.append_data(&mut header, &name, &data[..]).map_err(fail)?;
        names.push(name);
    }
    tar.into_inner().map_err(fail)?.finish().map_err(fail)?.flush().map_err(fail)?;
    Ok(names)
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// The last `limit` bytes of a log.
fn tail_bytes(bytes: Vec<u8>, limit: usize) -> Vec<u8> {
    if bytes.len() <= limit {
        bytes
    } else {
        bytes[bytes.len() - limit..].to_vec()
    }
}

/// `value` with every key that may hold a secret replaced.
fn redact(value: Value) -> Value {
    const SECRET: &[&str] = &["password", "secret", "token", "auth", "key", "credential"];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET.iter().any(|s| lower.contains(s)) {
                        (k, Value::String("(removed)".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// What the engine says about itself and what it holds, or why it did not answer.
async fn engine_summary(home: &BerthHome) -> Value {
    let endpoint = AgentEndpoint::Unix(home.grpc_socket());
    let timeout = Duration::from_secs(5);
    let client = match AgentClient::connect(&endpoint, timeout).await {
        Ok(client) => client,
        Err(e) => return json!({ "error": crate::agent::error_chain(&e) }),
    };
    let mut out = serde_json::Map::new();
    match client.version(timeout).await {
        Ok(v) => {
            out.insert("version".into(), json!({"engine": v.engine_version, "api": v.api_version, "kernel": v.kernel_version, "os": v.os, "arch": v.arch}))
        }
        Err(e) => out.insert("version".into(), json!({ "error": e.to_string() })),
    };
    if let Ok(info) = client.info(timeout).await {
        out.insert("info".into(), json!({"placement": info.placement, "cpus": info.cpus, "memory_bytes": info.memory_bytes, "uptime_seconds": info.uptime_seconds, "root_dir": info.root_dir}));
    }
    let containers = client.containers().list(berth_proto::v1::ListContainersRequest { all: true, filters: Vec::new() }).await;
    if let Ok(list) = containers {
        let states: Vec<Value> = list
            .into_inner()
            .containers
            .into_iter()
            .map(|c| json!({"id": c.id.chars().take(12).collect::<String>(), "image": c.image, "state": c.state, "status": c.status}))
            .collect();
        out.insert("containers".into(), Value::Array(states));
    }
    if let Ok(list) = client.images().list(berth_proto::v1::ListImagesRequest {}).await {
        out.insert("images".into(), list.into_inner().images.len().into());
    }
    if let Ok(list) = client.volumes().list(berth_proto::v1::ListVolumesRequest::default()).await {
        out.insert("volumes".into(), list.into_inner().volumes.len().into());
    }
    if let Ok(list) = client.networks().list(berth_proto::v1::ListNetworksRequest::default()).await {
        out.insert("networks".into(), list.into_inner().networks.into_iter().map(|n| Value::String(n.name)).collect());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed_at_any_depth() {
        let value = json!({"engine": {"registry-auth": "s3cret", "debug": true, "nested": [{"api_token": "x"}]}, "cpus": 2});
        let redacted = redact(value);
        assert_eq!(redacted, json!({"engine": {"registry-auth": "(removed)", "debug": true, "nested": [{"api_token": "(removed)"}]}, "cpus": 2}));
    }
}
