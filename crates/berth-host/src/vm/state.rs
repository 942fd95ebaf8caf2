//! The record of a running VM, kept in `$BERTH_HOME/vm/state.json` so that any Berth
//! process (CLI, app) can find, query and stop the VM another one started.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::accel::Accel;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    pub qemu_pid: u32,
    pub vhost_pid: Option<u32>,
    /// One virtiofsd per shared folder.
    #[serde(default)]
    pub virtiofsd_pids: Vec<u32>,
    pub accel: Accel,
    pub qmp_socket: PathBuf,
    /// The hybrid vsock socket (vhost-device-vsock's uds-path), when used.
    pub vsock_uds: Option<PathBuf>,
    /// The guest CID, when the host's AF_VSOCK is used.
    pub guest_cid: Option<u32>,
    /// On the serial transport, the session's gRPC proxy: only the session holds the
    /// mux, so other processes reach the agent through it.
    #[serde(default)]
    pub serial_proxy: Option<PathBuf>,
    /// The serial mux's host end, held by the process that runs the VM.
    #[serde(default)]
    pub mux_socket: Option<PathBuf>,
    pub console_log: PathBuf,
    /// Unix time (ms) at which QEMU was started.
    pub started_unix_ms: u64,
}

pub fn load(path: &Path) -> std::io::Result<Option<VmRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Writes the record atomically (temp file, then rename).
pub fn save(path: &Path, record: &VmRecord) -> std::io::Result<()> {
    save_json(path, record)
}

/// Writes any record as JSON atomically (temp file, then rename): the VM's and the
/// session's.
pub fn save_json(path: &Path, record: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Now, in ms since the Unix epoch, as the records keep it.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Whether `pid` is a live (not zombie) process whose command line mentions `needle`.
/// The needle guards against a recycled pid.
pub fn process_alive(pid: u32, needle: &str) -> bool {
    crate::os::process_alive(pid, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = std::env::temp_dir().join(format!("berth-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        assert_eq!(load(&path).expect("load"), None);
        let record = VmRecord {
            qemu_pid: 42,
            vhost_pid: Some(43),
            virtiofsd_pids: vec![44],
            accel: Accel::Tcg,
            qmp_socket: "/x/qmp.sock".into(),
            vsock_uds: Some("/x/vsock.sock".into()),
            guest_cid: None,
            serial_proxy: None,
            mux_socket: None,
            console_log: "/x/console.log".into(),
            started_unix_ms: 1,
        };
        save(&path, &record).expect("save");
        assert_eq!(load(&path).expect("load"), Some(record));
        std::fs::write(&path, b"{not json").expect("write");
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn own_process_is_alive_and_needle_matters() {
        let me = std::process::id();
        assert!(process_alive(me, ""));
        assert!(!process_alive(me, "no-such-command-line-part"));
        assert!(!process_alive(u32::MAX - 1, ""));
    }
}
