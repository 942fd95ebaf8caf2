//! What the VM gets besides its kernel: the engine's data disk, the host folders shared
//! into it (virtiofsd), and its boot settings (QEMU fw_cfg files the guest's rcS reads:
//! `boot.conf` and the engine's `daemon.json`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::{StartError, VmPaths};

/// The engine's state disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDisk {
    /// A raw, sparse image (`$BERTH_HOME/vm/data.img`).
    pub path: PathBuf,
    /// Its size limit: the file's apparent size, which only grows.
    pub size_bytes: u64,
}

impl DataDisk {
    /// The marker that says the image has no file system yet (made on its first boot).
    fn fresh_marker(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".fresh");
        PathBuf::from(name)
    }

    /// Makes the image when missing (sparse: it takes no space until written) and grows
    /// it to its limit; returns whether the guest must make its file system.
    pub fn prepare(&self) -> Result<bool, StartError> {
        let io = |what: &str| StartError::io(format!("{what} {}", self.path.display()));
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                if !meta.is_file() {
                    return Err(StartError::InvalidConfig(format!("the data disk {} is not a file", self.path.display())));
                }
                if meta.len() < self.size_bytes {
                    let file = std::fs::OpenOptions::new().write(true).open(&self.path).map_err(io("open the data disk"))?;
                    crate::os::make_sparse(&file).map_err(io("make sparse the data disk"))?;
                    file.set_len(self.size_bytes).map_err(io("grow the data disk"))?;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(self.fresh_marker(), b"").map_err(io("mark the new data disk"))?;
                let file = std::fs::File::create_new(&self.path).map_err(io("create the data disk"))?;
                crate::os::make_sparse(&file).map_err(io("make sparse the data disk"))?;
                file.set_len(self.size_bytes).map_err(io("size the data disk"))?;
            }
            Err(err) => return Err(io("read the data disk")(err)),
        }
        Ok(self.fresh_marker().exists())
    }

    /// After the first boot that made the file system: the image is no longer new.
    pub fn made(&self) {
        let _ = std::fs::remove_file(self.fresh_marker());
    }

    /// Deletes the image (`berth vm reset`); the next start makes a new one.
    pub fn wipe(&self) -> std::io::Result<()> {
        let _ = std::fs::remove_file(self.fresh_marker());
        match std::fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

/// A host folder shared into the VM at the same path (a Windows one at its drive's
/// place under `/mnt/host`: [`vm_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tag: String,
    pub path: PathBuf,
    /// Where the VM mounts it.
    pub guest_path: String,
    pub socket: PathBuf,
}

/// The VM's path of a host folder: the same path, but on Windows `C:\src` is
/// `/mnt/host/c/src` (`berth_proto::mounts::windows_path_in_vm`).
pub fn vm_path(host: &Path) -> String {
    vm_path_on(host, cfg!(windows))
}

fn vm_path_on(host: &Path, windows: bool) -> String {
    let text = host.to_string_lossy();
    if !windows {
        return text.into_owned();
    }
    // canonicalize's verbatim form (`\\?\C:\Users`) is the plain path.
    let text = text.strip_prefix(r"\\?\").unwrap_or(&text);
    berth_proto::mounts::windows_path_in_vm(text, true).unwrap_or_else(|| text.to_owned())
}

/// The shares of `folders`, refusing what cannot be shared: a relative path, one that
/// does not exist or is not a folder, or one inside another.
pub fn shares(paths: &VmPaths, folders: &[PathBuf]) -> Result<Vec<Share>, StartError> {
    let mut out: Vec<Share> = Vec::new();
    for (i, folder) in folders.iter().enumerate() {
        if !folder.is_absolute() {
            return Err(StartError::InvalidConfig(format!("the shared folder {} is not an absolute path", folder.display())));
        }
        // Mounted at the same path in the VM, these would cover the VM's own system.
        const VM_OWN: &[&str] = &["/", "/proc", "/sys", "/dev", "/run", "/var/lib/berth", "/sbin", "/bin", "/lib", "/lib64", "/usr", "/etc"];
        if VM_OWN.iter().any(|own| folder == Path::new(own)) {
            return Err(StartError::InvalidConfig(format!("{} cannot be shared: the VM needs its own {}", folder.display(), folder.display())));
        }
        match std::fs::metadata(folder) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(StartError::InvalidConfig(format!("the shared folder {} is not a folder", folder.display()))),
            Err(err) => return Err(StartError::InvalidConfig(format!("the shared folder {} cannot be shared: {err}", folder.display()))),
        }
        if let Some(outer) = out.iter().find(|s| folder.starts_with(&s.path) || s.path.starts_with(folder)) {
            return Err(StartError::InvalidConfig(format!("the shared folders {} and {} overlap; share one of them", outer.path.display(), folder.display())));
        }
        let text = folder.to_string_lossy();
        if text.contains('\n') || text.contains('\'') {
            return Err(StartError::InvalidConfig(format!("the shared folder {text:?} has a character Berth cannot pass to the VM")));
        }
        let guest_path = vm_path(folder);
        if !guest_path.starts_with('/') {
            return Err(StartError::InvalidConfig(format!("the shared folder {} has no place in the VM (a drive path such as C:\\src is)", folder.display())));
        }
        out.push(Share { tag: format!("share{i}"), path: folder.clone(), guest_path, socket: paths.dir.join(format!("fs{i}.sock")) });
    }
    Ok(out)
}

/// How a host folder reaches the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShareTransport {
    /// virtiofs, served by one `virtiofsd` per folder (Linux hosts).
    #[serde(rename = "virtiofs")]
    Virtiofs,
    /// virtio-9p, served by QEMU itself (every host; what QEMU offers on macOS).
    #[serde(rename = "9p")]
    NineP,
}

impl ShareTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareTransport::Virtiofs => "virtiofs",
            ShareTransport::NineP => "9p",
        }
    }
}

/// How the VM caches a shared folder (virtiofsd's `--cache`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareCache {
    /// Names and attributes for a second, file data until the file changes: a host
    /// edit is seen within a second. About as fast as a volume for walks.
    #[default]
    Auto,
    /// Nothing cached: a host edit is seen at once, every lookup crosses to the host.
    Never,
}

impl ShareCache {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareCache::Auto => "auto",
            ShareCache::Never => "never",
        }
    }
}

/// Starts one virtiofsd per share and waits for its socket. Each serves its folder to
/// the guest as the host user: what a container writes there belongs to that user.
pub async fn spawn_virtiofsd(program: &Path, paths: &VmPaths, shares: &[Share], cache: ShareCache) -> Result<Vec<Child>, StartError> {
    let mut children = Vec::new();
    for share in shares {
        let _ = std::fs::remove_file(&share.socket);
        let log_path = paths.dir.join(format!("virtiofsd-{}.log", share.tag));
        let log = std::fs::File::create(&log_path).map_err(StartError::io("create the virtiofsd log"))?;
        let log_err = log.try_clone().map_err(StartError::io("open the virtiofsd log"))?;
        let mut command = Command::new(program);
        command
            .arg(format!("--socket-path={}", share.socket.display()))
            .arg(format!("--shared-dir={}", share.path.display()))
            .arg(format!("--cache={}", cache.as_str()))
            .args(["--announce-submounts", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        crate::os::own_process_group(&mut command);
        // Its namespace sandbox needs privileges a user may lack (and root does not
        // need): the folder is the user's own, served by the user's own process.
        command.arg("--sandbox=none");
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                kill_all(&mut children).await;
                return Err(StartError::Io { what: format!("run {}", program.display()), source });
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !share.socket.exists() {
            let failed = match child.try_wait() {
                Ok(Some(status)) => Some(format!("exited with {status}: {}", super::tail(&log_path, 5))),
                _ if Instant::now() > deadline => Some("its socket did not appear within 5s".to_owned()),
                _ => None,
            };
            if let Some(detail) = failed {
                let _ = child.kill().await;
                kill_all(&mut children).await;
                return Err(StartError::ShareFailed { path: share.path.clone(), detail });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        children.push(child);
    }
    Ok(children)
}

pub async fn kill_all(children: &mut [Child]) {
    for child in children {
        let _ = child.kill().await;
    }
}

/// The guest's `boot.conf`: one setting a line (see vm-images/rootfs/etc/init.d/rcS).
pub fn boot_conf(fresh_disk: Option<bool>, shares: &[Share], transport: ShareTransport, env: &[(String, String)]) -> Result<String, StartError> {
    let mut conf = String::new();
    match fresh_disk {
        Some(true) => conf.push_str("data new\n"),
        Some(false) => conf.push_str("data existing\n"),
        None => {}
    }
    for share in shares {
        conf.push_str(&format!("share-{} {} {}\n", transport.as_str(), share.tag, share.guest_path));
    }
    for (name, value) in env {
        let bad = |c: char| c == '\n' || c == '\'';
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || value.chars().any(bad) {
            return Err(StartError::InvalidConfig(format!("the engine setting {name}={value:?} cannot be passed to the VM")));
        }
        conf.push_str(&format!("env {name} {value}\n"));
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_conf_lines_and_refusals() {
        let share = Share { tag: "share0".into(), path: "/home/me/src code".into(), guest_path: "/home/me/src code".into(), socket: "/x/fs0.sock".into() };
        let conf = boot_conf(Some(true), std::slice::from_ref(&share), ShareTransport::Virtiofs, &[("BERTH_SHARES".into(), "/home/me/src code".into())])
            .expect("conf");
        assert_eq!(conf, "data new\nshare-virtiofs share0 /home/me/src code\nenv BERTH_SHARES /home/me/src code\n");
        assert_eq!(boot_conf(None, &[share], ShareTransport::NineP, &[]).expect("conf"), "share-9p share0 /home/me/src code\n");
        assert!(boot_conf(None, &[], ShareTransport::Virtiofs, &[("A".into(), "it's".into())]).is_err());
        assert!(boot_conf(None, &[], ShareTransport::Virtiofs, &[("A B".into(), "x".into())]).is_err());
    }

    #[test]
    fn windows_folders_have_their_drive_place_in_the_vm() {
        assert_eq!(vm_path_on(Path::new(r"C:\Users\ann"), true), "/mnt/host/c/Users/ann");
        assert_eq!(vm_path_on(Path::new(r"\\?\C:\Users\ann"), true), "/mnt/host/c/Users/ann");
        assert_eq!(vm_path_on(Path::new("/home/ann"), false), "/home/ann");
        let share = Share { tag: "share0".into(), path: r"C:\Users\ann".into(), guest_path: vm_path_on(Path::new(r"C:\Users\ann"), true), socket: "/x".into() };
        assert_eq!(boot_conf(None, &[share], ShareTransport::NineP, &[]).expect("conf"), "share-9p share0 /mnt/host/c/Users/ann\n");
    }

    #[test]
    fn shares_must_exist_and_not_overlap() {
        let dir = std::env::temp_dir().join(format!("berth-shares-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).expect("dirs");
        let paths = VmPaths::new(&crate::home::BerthHome::new(&dir));
        let ok = shares(&paths, &[dir.join("a")]).expect("one share");
        assert_eq!(ok[0].tag, "share0");
        assert!(shares(&paths, &[dir.join("a"), dir.join("a/b")]).is_err(), "nested");
        assert!(shares(&paths, &[dir.join("missing")]).is_err());
        assert!(shares(&paths, &[PathBuf::from("relative")]).is_err());
        assert!(shares(&paths, &[PathBuf::from("/")]).is_err(), "the VM's own root");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_new_disk_is_sparse_marked_and_grows() {
        let dir = std::env::temp_dir().join(format!("berth-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let disk = DataDisk { path: dir.join("data.img"), size_bytes: 1 << 30 };
        assert!(disk.prepare().expect("made"), "a new disk needs a file system");
        let meta = std::fs::metadata(&disk.path).expect("stat");
        assert_eq!(meta.len(), 1 << 30);
        #[cfg(unix)]
        assert!(std::os::unix::fs::MetadataExt::blocks(&meta) < 64, "sparse: {} blocks", std::os::unix::fs::MetadataExt::blocks(&meta));
        // FILE_ATTRIBUTE_SPARSE_FILE: marked before it was sized. Wine (where CI runs this,
        // with WINEPREFIX set) accepts FSCTL_SET_SPARSE but keeps no such attribute.
        #[cfg(windows)]
        if std::env::var_os("WINEPREFIX").is_none() {
            assert_ne!(std::os::windows::fs::MetadataExt::file_attributes(&meta) & 0x200, 0, "sparse attribute");
        }
        disk.made();
        assert!(!disk.prepare().expect("again"), "made once");
        let bigger = DataDisk { size_bytes: 2 << 30, ..disk.clone() };
        assert!(!bigger.prepare().expect("grown"));
        assert_eq!(std::fs::metadata(&disk.path).expect("stat").len(), 2 << 30);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
