//! One settings file, `$BERTH_HOME/settings.json`, read by the CLI, the session and the
//! app: the VM's size, the folders shared into it, and the engine's settings (which
//! reach the engine wherever it runs). The `BERTH_VM_*` variables still override the
//! VM's size for one run.

use std::path::{Path, PathBuf};

use berth_proto::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::home::BerthHome;
use crate::vm::{self, guest::DataDisk, guest::ShareCache, guest::ShareTransport, StartError, VmConfig};

/// The host's address as the VM's user-mode network offers it: the host's loopback.
pub const VM_HOST_GATEWAY: &str = "10.0.2.2";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// The VM's CPUs (default 1, or `BERTH_VM_CPUS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// The VM's memory in MiB (default 1024, or `BERTH_VM_MEMORY_MIB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// The data disk's size limit in GiB (default 64). It only grows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<u64>,
    /// Host folders shared into the VM at the same paths (default: the home folder and
    /// /tmp; on macOS /Users, /Volumes, /private and /tmp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<PathBuf>>,
    /// How the VM caches the shared folders: `auto` (a host edit is seen within a
    /// second; walks about as fast as a volume) or `never` (seen at once; every lookup
    /// crosses to the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_cache: Option<ShareCache>,
    /// `virtiofs` or `9p`; by default virtiofs where virtiofsd is installed, else 9p.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_transport: Option<ShareTransport>,
    /// Registries spoken to over plain http (`host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub insecure_registries: Vec<String>,
    /// Registry mirrors, passed to the engine's daemon.json (the engine does not use
    /// mirrors yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry_mirrors: Vec<String>,
    /// Where the engine's DNS server forwards names it does not know (`ip[:port]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_upstream: Vec<String>,
    /// Which repositories need a signature by which keys (`berth trust policy`); the
    /// engine enforces it on pull and on create.
    #[serde(skip_serializing_if = "berth_trust::Policy::is_empty")]
    pub trust_policy: berth_trust::Policy,
    /// Other daemon.json keys, passed to the engine as they are.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub engine: serde_json::Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the settings file {path} is not valid: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("cannot write the settings {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("unknown setting {0:?}; settings: {keys}", keys = KEYS.join(", "))]
    UnknownKey(String),
    #[error("invalid value for {key}: {detail}")]
    BadValue { key: String, detail: String },
}

impl SettingsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SettingsError::Read { .. } | SettingsError::Write { .. } => ErrorKind::Internal,
            SettingsError::Invalid { .. } | SettingsError::UnknownKey(_) | SettingsError::BadValue { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// The keys `berth settings get|set` knows, as in the file. Every one takes effect
/// when the VM (and so the engine in it) starts next.
pub const KEYS: &[&str] =
    &["cpus", "memory-mib", "disk-gib", "shares", "share-cache", "share-transport", "insecure-registries", "registry-mirrors", "dns-upstream", "engine"];

impl Settings {
    pub fn path(home: &BerthHome) -> PathBuf {
        home.root().join("settings.json")
    }

    /// The settings file, or the defaults when there is none.
    pub fn load(home: &BerthHome) -> Result<Settings, SettingsError> {
        let path = Settings::path(home);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SettingsError::Invalid { path, detail: e.to_string() }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(SettingsError::Read { path, source }),
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, home: &BerthHome) -> Result<(), SettingsError> {
        let path = Settings::path(home);
        let write = |source| SettingsError::Write { path: path.clone(), source };
        std::fs::create_dir_all(home.root()).map_err(write)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default()).map_err(write)?;
        std::fs::rename(&tmp, &path).map_err(write)
    }

    /// The folders shared into the VM.
    pub fn shares(&self) -> Vec<PathBuf> {
        self.shares.clone().unwrap_or_else(default_shares)
    }

    pub fn disk_bytes(&self) -> u64 {
        self.disk_gib.unwrap_or(64).max(1) << 30
    }

    /// Every key's value, defaults filled in (what `settings get` shows).
    pub fn effective(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        out.insert("cpus".into(), self.cpus.unwrap_or(1).into());
        out.insert("memory-mib".into(), self.memory_mib.unwrap_or(1024).into());
        out.insert("disk-gib".into(), self.disk_gib.unwrap_or(64).into());
        out.insert("shares".into(), self.shares().iter().map(|p| Value::from(p.display().to_string())).collect());
        out.insert("share-cache".into(), self.share_cache.unwrap_or_default().as_str().into());
        out.insert("share-transport".into(), self.share_transport.map_or("auto", ShareTransport::as_str).into());
        out.insert("insecure-registries".into(), self.insecure_registries.clone().into());
        out.insert("registry-mirrors".into(), self.registry_mirrors.clone().into());
        out.insert("dns-upstream".into(), self.dns_upstream.clone().into());
        out.insert("engine".into(), Value::Object(self.engine.clone()));
        out.insert("trust-policy".into(), serde_json::to_value(&self.trust_policy).unwrap_or_default());
        out
    }

    /// Sets `key` from its command-line form: a number, a list (several values, or
    /// comma-separated), or for `engine` a JSON object.
    pub fn set(&mut self, key: &str, values: &[String]) -> Result<(), SettingsError> {
        let bad = |detail: &str| SettingsError::BadValue { key: key.to_owned(), detail: detail.to_owned() };
        let list = || -> Vec<String> { values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect() };
        let number = || -> Result<u64, SettingsError> {
            match values {
                [one] => one.parse().map_err(|_| bad("want a whole number")),
                _ => Err(bad("want one number")),
            }
        };
        match key {
            "cpus" => self.cpus = Some(u32::try_from(number()?).ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| bad("want 1 to 256"))?),
            "memory-mib" => self.memory_mib = Some(u32::try_from(number()?).ok().filter(|n| *n >= 256).ok_or_else(|| bad("want at least 256"))?),
            "disk-gib" => {
                let gib = number()?;
                if gib == 0 || gib > 16384 {
                    return Err(bad("want 1 to 16384"));
                }
                if gib < self.disk_gib.unwrap_or(64) {
                    return Err(bad("the data disk only grows; `berth vm reset` wipes it"));
                }
                self.disk_gib = Some(gib);
            }
            "shares" => {
                let shares: Vec<PathBuf> = list().into_iter().map(PathBuf::from).collect();
                if let Some(relative) = shares.iter().find(|p| !p.is_absolute()) {
                    return Err(bad(&format!("{} is not an absolute path", relative.display())));
                }
                self.shares = Some(shares);
            }
            "share-cache" => {
                self.share_cache = Some(match values {
                    [one] if one == "auto" => ShareCache::Auto,
                    [one] if one == "never" => ShareCache::Never,
                    _ => return Err(bad("want auto or never")),
                })
            }
            "share-transport" => {
                self.share_transport = match values {
                    [one] if one == "auto" => None,
                    [one] if one == "virtiofs" => Some(ShareTransport::Virtiofs),
                    [one] if one == "9p" => Some(ShareTransport::NineP),
                    _ => return Err(bad("want auto, virtiofs or 9p")),
                }
            }
            "insecure-registries" => self.insecure_registries = list(),
            "registry-mirrors" => self.registry_mirrors = list(),
            "dns-upstream" => {
                let servers = list();
                if let Some(wrong) = servers.iter().find(|s| s.parse::<std::net::IpAddr>().is_err() && s.parse::<std::net::SocketAddr>().is_err()) {
                    return Err(bad(&format!("{wrong} is not ip or ip:port")));
                }
                self.dns_upstream = servers;
            }
            "engine" => {
                let text = values.join(" ");
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => self.engine = map,
                    _ => return Err(bad("want a JSON object of daemon.json keys")),
                }
            }
            other => return Err(SettingsError::UnknownKey(other.to_owned())),
        }
        Ok(())
    }

    /// The engine's daemon.json: the pass-through keys, then the settings Berth names.
    pub fn daemon_json(&self) -> Value {
        let mut daemon = self.engine.clone();
        if !self.insecure_registries.is_empty() {
            daemon.insert("insecure-registries".into(), self.insecure_registries.clone().into());
        }
        if !self.registry_mirrors.is_empty() {
            daemon.insert("registry-mirrors".into(), self.registry_mirrors.clone().into());
        }
        // The engine takes its trust policy from here at each start.
        daemon.insert(berth_proto::TRUST_POLICY_KEY.into(), serde_json::to_value(&self.trust_policy).unwrap_or_default());
        Value::Object(daemon)
    }

    /// The engine's environment from these settings, natively and in the VM.
    pub fn engine_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if !self.insecure_registries.is_empty() {
            env.push(("BERTH_INSECURE_REGISTRIES".to_owned(), self.insecure_registries.join(",")));
        }
        if !self.dns_upstream.is_empty() {
            env.push(("BERTH_DNS_UPSTREAM".to_owned(), self.dns_upstream.join(",")));
        }
        env
    }

    /// How to start the VM: the environment's QEMU, image and accelerator, these
    /// settings' size, disk and shares, and the engine's settings for the guest.
    pub fn vm_config(&self, home: &BerthHome) -> Result<VmConfig, StartError> {
        let mut config = VmConfig::from_env()?;
        if std::env::var_os("BERTH_VM_CPUS").is_none() {
            config.cpus = self.cpus.unwrap_or(config.cpus);
        }
        if std::env::var_os("BERTH_VM_MEMORY_MIB").is_none() {
            config.mem_mib = self.memory_mib.unwrap_or(config.mem_mib);
        }
        config.data_disk = Some(DataDisk { path: vm::VmPaths::new(home).data_disk, size_bytes: self.disk_bytes() });
        config.shares = self.shares();
        config.share_cache = self.share_cache.unwrap_or_default();
        let virtiofsd = std::env::var_os("BERTH_VIRTIOFSD")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| vm::find_program("virtiofsd"))
            // The Rust virtiofsd as distributions install it (Debian 13, Fedora); not
            // QEMU's old C one in /usr/lib/qemu, which takes other options.
            .or_else(|| Some(PathBuf::from("/usr/libexec/virtiofsd")).filter(|p| p.is_file()));
        // Auto: virtiofs where virtiofsd is; else 9p, if the image's kernel has it (else
        // virtiofs, which then says virtiofsd is missing).
        config.share_transport = match self.share_transport {
            Some(chosen) => chosen,
            None if virtiofsd.is_some() && cfg!(target_os = "linux") => ShareTransport::Virtiofs,
            None if config.image.has_module("9p") != Some(false) => ShareTransport::NineP,
            None => ShareTransport::Virtiofs,
        };
        if !config.shares.is_empty() && config.share_transport == ShareTransport::Virtiofs {
            config.virtiofsd = Some(virtiofsd.ok_or(StartError::VirtiofsdMissing)?);
        }
        // The engine checks bind sources against the shares' places in the VM.
        let shares: Vec<String> = config.shares.iter().map(|p| crate::vm::guest::vm_path(p)).collect();
        config.guest_env = self.engine_env();
        config.guest_env.push(("BERTH_SHARES".to_owned(), shares.join(":")));
        config.guest_env.push(("BERTH_HOST_GATEWAY_IP".to_owned(), VM_HOST_GATEWAY.to_owned()));
        // A bind of the host's docker.sock (testcontainers' Ryuk, CI runners) is the
        // engine's own socket in the VM: a socket does not cross a shared folder.
        config.guest_env.push(("BERTH_HOST_DOCKER_SOCKET".to_owned(), home.docker_socket().display().to_string()));
        if cfg!(windows) {
            // docker's `/c/src` spelling of `C:\src` is then a Windows path.
            config.guest_env.push(("BERTH_HOST_OS".to_owned(), "windows".to_owned()));
        }
        config.daemon_json = Some(self.daemon_json());
        config.balloon = true;
        Ok(config)
    }
}

/// Docker Desktop's defaults: the user's home and /tmp (on macOS the folders that hold
/// them), each only if it exists.
fn default_shares() -> Vec<PathBuf> {
    let candidates: Vec<PathBuf> = if cfg!(target_os = "macos") {
        ["/Users", "/Volumes", "/private", "/tmp"].iter().map(PathBuf::from).collect()
    } else if cfg!(windows) {
        // The user's profile (C:\Users\NAME), as Docker Desktop shares C:\Users.
        std::env::var_os("USERPROFILE").map(PathBuf::from).into_iter().collect()
    } else {
        let mut list: Vec<PathBuf> = std::env::var_os("HOME").map(PathBuf::from).into_iter().collect();
        list.push(PathBuf::from("/tmp"));
        list
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for path in candidates {
        // /tmp inside a home (or the reverse) is one share, the outer one.
        let Ok(real) = std::fs::canonicalize(&path) else { continue };
        // A home of / would cover the VM's own root.
        if real == Path::new("/") {
            continue;
        }
        if out.iter().any(|o| real.starts_with(o)) {
            continue;
        }
        out.retain(|o| !o.starts_with(&real));
        out.push(real);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_each_kind_and_refuses_bad_values() {
        let mut s = Settings::default();
        s.set("cpus", &["2".into()]).expect("cpus");
        // Absolute on this host (the Windows build's tests run under Wine).
        let [a, b, c] = if cfg!(windows) { [r"C:\a", r"C:\b", r"D:\c"] } else { ["/a", "/b", "/c"] };
        s.set("shares", &[format!("{a},{b}"), c.into()]).expect("shares");
        s.set("insecure-registries", &["r:5000".into()]).expect("insecure");
        s.set("engine", &[r#"{"debug": true}"#.into()]).expect("engine");
        assert_eq!(s.cpus, Some(2));
        assert_eq!(s.shares(), vec![PathBuf::from(a), PathBuf::from(b), PathBuf::from(c)]);
        assert_eq!(s.daemon_json(), serde_json::json!({"debug": true, "insecure-registries": ["r:5000"], "berth-trust-policy": {"rules": []}}));
        assert!(s.set("cpus", &["lots".into()]).is_err());
        assert!(s.set("shares", &["relative".into()]).is_err());
        assert!(s.set("disk-gib", &["10".into()]).is_err(), "the disk only grows");
        assert!(s.set("dns-upstream", &["not-an-ip".into()]).is_err());
        assert!(matches!(s.set("colour", &["red".into()]), Err(SettingsError::UnknownKey(_))));
    }

    #[test]
    fn the_file_round_trips_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("berth-settings-{}", std::process::id()));
        let home = BerthHome::new(&dir);
        assert_eq!(Settings::load(&home).expect("defaults"), Settings::default());
        let mut s = Settings::default();
        s.set("memory-mib", &["2048".into()]).expect("memory");
        s.save(&home).expect("save");
        assert_eq!(Settings::load(&home).expect("load"), s);
        std::fs::write(Settings::path(&home), br#"{"colour": "red"}"#).expect("write");
        assert!(matches!(Settings::load(&home), Err(SettingsError::Invalid { .. })));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
