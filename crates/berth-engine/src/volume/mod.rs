//! Volumes: named and anonymous directories under `<root>/volumes/<name>/_data`, their
//! records in SQLite (`volumes.db`), and which containers use them (kept by the
//! container store, so `rm` and `prune` never take a volume in use).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_proto::ErrorKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// Made for one container (an image VOLUME or `-v /path`); removed with it by
    /// `rm -v` and `run --rm`.
    pub anonymous: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume name {0:?} includes invalid characters, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")]
    BadName(String),
    #[error("volume {name} is in use by container {container}")]
    InUse { name: String, container: String },
    #[error("volume driver {0:?} is not supported (only \"local\")")]
    Driver(String),
    #[error("{0}")]
    Invalid(String),
    #[error("volume store: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("volume store holds a bad record for {0}")]
    Corrupt(String),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
}

impl VolumeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound(_) => ErrorKind::NotFound,
            VolumeError::BadName(_) | VolumeError::Driver(_) | VolumeError::Invalid(_) => ErrorKind::InvalidArgument,
            VolumeError::InUse { .. } => ErrorKind::Conflict,
            VolumeError::Db(_) | VolumeError::Corrupt(_) | VolumeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let what = what.into();
    move |source| VolumeError::Io { what, source }
}

/// docker's rule for volume names.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphanumeric() && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub use crate::filters::labels_match;

/// The engine's volumes.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    db: Mutex<Connection>,
    /// Volume name -> containers using it.
    used_by: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Volume name (one with mount options) -> running containers it is mounted for.
    mounted_for: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Where the volumes' events go (docker's create, mount, unmount, destroy).
    events: Option<std::sync::Arc<crate::EventBus>>,
}

impl Volumes {
    pub fn open(root: &Path) -> Result<Volumes, VolumeError> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let db = Connection::open(root.join("volumes.db"))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS volumes (name TEXT PRIMARY KEY, record TEXT NOT NULL);",
        )?;
        Ok(Volumes { root: dir, db: Mutex::new(db), used_by: Mutex::new(HashMap::new()), mounted_for: Mutex::new(HashMap::new()), events: None })
    }

    /// The volumes publish their events on `events`, whichever API asked.
    pub fn publishing_to(mut self, events: std::sync::Arc<crate::EventBus>) -> Volumes {
        self.events = Some(events);
        self
    }

    fn publish(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        if let Some(events) = &self.events {
            let attributes = [("id", name.to_owned()), ("driver", "local".to_owned())].into_iter().chain(extra.iter().cloned());
            events.publish("volume", action, attributes.map(|(k, v)| (k.to_owned(), v)));
        }
    }

    /// A container started with the volume at `destination` (docker's `mount` event).
    pub fn mounted(&self, name: &str, container: &str, destination: &str, read_write: bool) {
        let extra = [
            ("container", container.to_owned()),
            ("destination", destination.to_owned()),
            ("propagation", String::new()),
            ("read/write", read_write.to_string()),
        ];
        self.publish("mount", name, &extra);
    }

    /// A container that had the volume stopped (docker's `unmount` event).
    pub fn unmounted(&self, name: &str, container: &str) {
        self.publish("unmount", name, &[("container", container.to_owned())]);
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory containers see (`Mountpoint`).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (docker's create is
    /// idempotent).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool), VolumeError> {
        if !matches!(driver, "" | "local") {
            return Err(VolumeError::Driver(driver.to_owned()));
        }
        if let Some(option) = options.keys().find(|k| !matches!(k.as_str(), "type" | "device" | "o")) {
            return Err(VolumeError::Invalid(format!("invalid option key: {option:?}")));
        }
        MountOptions::parse(&options)?;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => {
                if !valid_name(name) {
                    return Err(VolumeError::BadName(name.to_owned()));
                }
                name.to_owned()
            }
            None => crate::ids::new_id(),
        };
        if let Some(existing) = self.get(&name)? {
            // dockerd announces every create, a repeated one (`run -v NAME:...` of a
            // volume that exists) too.
            self.publish("create", &name, &[]);
            return Ok((existing, false));
        }
        let record = VolumeRecord { name: name.clone(), driver: "local".into(), labels, options, created: crate::time::now_rfc3339(), anonymous };
        let data = self.data_dir(&name);
        std::fs::create_dir_all(&data).map_err(io(format!("create {}", data.display())))?;
        let json = serde_json::to_string(&record).map_err(|_| VolumeError::Corrupt(name.clone()))?;
        if let Err(err) = self.db().execute("INSERT INTO volumes (name, record) VALUES (?1, ?2)", params![name, json]) {
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(err.into());
        }
        self.publish("create", &name, &[]);
        Ok((record, true))
    }

    pub fn get(&self, name: &str) -> Result<Option<VolumeRecord>, VolumeError> {
        let json: Option<String> = self.db().query_row("SELECT record FROM volumes WHERE name = ?1", params![name], |r| r.get(0)).optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|_| VolumeError::Corrupt(name.to_owned()))).transpose()
    }

    pub fn list(&self) -> Result<Vec<VolumeRecord>, VolumeError> {
        let rows: Vec<(String, String)> = {
            let db = self.db();
            let mut statement = db.prepare("SELECT name, record FROM volumes ORDER BY name")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            rows
        };
        rows.into_iter().map(|(name, json)| serde_json::from_str(&json).map_err(|_| VolumeError::Corrupt(name))).collect()
    }

    pub fn mark_used(&self, name: &str, container: &str) {
        self.used_by.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_owned()).or_default().insert(container.to_owned());
    }

    pub fn unmark_used(&self, name: &str, container: &str) {
        let mut used = self.used_by.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = used.get_mut(name) {
            set.remove(container);
            if set.is_empty() {
                used.remove(name);
            }
        }
    }

    /// Before a container that uses the volume starts: a volume with mount options
    /// (`type`, `device`, `o`) is mounted on its data directory, once for all the
    /// running containers that use it, as docker's local driver does.
    pub fn mount_for(&self, name: &str, container: &str) -> Result<(), VolumeError> {
        let Some(record) = self.get(name)? else { return Err(VolumeError::NotFound(name.to_owned())) };
        let Some(options) = MountOptions::parse(&record.options)? else { return Ok(()) };
        let mut mounted = self.mounted_for.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.data_dir(name);
        if !crate::files::is_mounted(&data) {
            options.mount(&data).map_err(|source| VolumeError::Io { what: format!("mount volume {name} ({})", options.describe()), source })?;
        }
        mounted.entry(name.to_owned()).or_default().insert(container.to_owned());
        Ok(())
    }

    /// A running container found after an engine restart: its volumes are mounted.
    pub fn note_mounted_for(&self, name: &str, container: &str) {
        if self.get(name).ok().flatten().is_some_and(|r| !r.options.is_empty()) {
            self.mounted_for.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_owned()).or_default().insert(container.to_owned());
        }
    }

    /// After a container stopped: the last one out unmounts an options volume.
    pub fn release_for(&self, name: &str, container: &str) {
        let mut mounted = self.mounted_for.lock().unwrap_or_else(|p| p.into_inner());
        match mounted.get_mut(name) {
            Some(set) => {
                set.remove(container);
                if !set.is_empty() {
                    return;
                }
                mounted.remove(name);
            }
            // Not counted (a container found dead after an engine restart): only an
            // options volume can be mounted; a plain one costs no mount table read.
            None if self.get(name).ok().flatten().is_none_or(|r| r.options.is_empty()) => return,
            None => {}
        }
        let data = self.data_dir(name);
        if let Err(e) = crate::files::unmount(&data) {
            tracing::warn!(volume = name, error = %e, "cannot unmount a volume");
        }
    }

    /// The containers using a volume.
    pub fn users(&self, name: &str) -> Vec<String> {
        self.used_by.lock().unwrap_or_else(|p| p.into_inner()).get(name).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// `volume rm`: refused while a container uses it (even with force, as docker does).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let Some(_) = self.get(name)? else {
            return if force { Ok(()) } else { Err(VolumeError::NotFound(name.to_owned())) };
        };
        if let Some(container) = self.users(name).into_iter().next() {
            return Err(VolumeError::InUse { name: name.to_owned(), container: container[..12.min(container.len())].to_owned() });
        }
        let dir = self.root.join(name);
        // An options volume a crash left mounted: never remove through a mount.
        crate::files::unmount(&self.data_dir(name)).map_err(|e| VolumeError::Invalid(format!("cannot remove volume {name}: {e}")))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(VolumeError::Io { what: format!("remove {}", dir.display()), source: e }),
        }
        self.db().execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
        self.publish("destroy", name, &[]);
        Ok(())
    }

    /// `volume prune`: unused volumes; only anonymous ones unless `all` (docker 23+).
    /// Returns the names removed and the bytes reclaimed.
    pub fn prune(&self, all: bool, label_filters: &[String]) -> Result<(Vec<String>, u64), VolumeError> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for volume in self.list()? {
            if !(all || volume.anonymous) || !self.users(&volume.name).is_empty() {
                continue;
            }
            if !labels_match(&volume.labels, label_filters) {
                continue;
            }
            bytes += dir_size(&self.data_dir(&volume.name));
            self.remove(&volume.name, false)?;
            removed.push(volume.name);
        }
        Ok((removed, bytes))
    }

    /// Writes the volume's files as a tar to `out` (symlinks stored, not followed),
    /// walked by the chrooted copy helper: a container using the volume cannot swap a
    /// folder for a symlink mid-walk and have the host's files archived.
    pub async fn export(&self, name: &str, out: &Path) -> Result<(), VolumeError> {
        self.get(name)?.ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        crate::files::helper::archive_dir(&self.data_dir(name), out)
            .await
            .map_err(|e| VolumeError::Io { what: format!("archive volume {name}"), source: std::io::Error::other(e.message) })
    }

    /// Unpacks the tar at `archive` into the volume (made if missing), through the
    /// engine binary's chrooted extract helper: nothing in the archive or the volume can
    /// lead outside it.
    pub async fn import(&self, name: &str, archive: &Path) -> Result<VolumeRecord, VolumeError> {
        let (record, created) = self.create(Some(name), "local", BTreeMap::new(), BTreeMap::new(), false)?;
        if let Err(e) = crate::files::helper::extract_into_dir(&self.data_dir(name), archive).await {
            if created {
                let _ = self.remove(name, true);
            }
            return Err(VolumeError::Invalid(format!("importing into volume {name}: {}", e.message)));
        }
        Ok(record)
    }

    /// A new volume `target` holding a copy of `source`'s files.
    pub fn clone_volume(&self, source: &str, target: &str) -> Result<VolumeRecord, VolumeError> {
        let from = self.get(source)?.ok_or_else(|| VolumeError::NotFound(source.to_owned()))?;
        if self.get(target)?.is_some() {
            return Err(VolumeError::Invalid(format!("volume {target} already exists")));
        }
        let (record, _) = self.create(Some(target), "local", from.labels.clone(), BTreeMap::new(), false)?;
        if let Err(e) = crate::files::copy_tree(&self.data_dir(source), &self.data_dir(target)) {
            let _ = self.remove(target, true);
            return Err(VolumeError::Invalid(format!("cloning volume {source}: {}", berth_proto::error_chain(&e))));
        }
        Ok(record)
    }

    /// Bytes used by a volume's files.
    pub fn size(&self, name: &str) -> u64 {
        dir_size(&self.data_dir(name))
    }
}

/// A local volume's mount options, docker's: `type=tmpfs device=tmpfs o=size=64m`, or a
/// bind of a host folder, `type=none o=bind device=/path`.
#[derive(Debug, PartialEq, Eq)]
enum MountOptions {
    Tmpfs { data: String },
    Bind { device: PathBuf, recursive: bool, read_only: bool },
}

impl MountOptions {
    /// None: a plain volume. Options Berth cannot mount are refused when the volume
    /// is made, not when a container first needs it.
    fn parse(options: &BTreeMap<String, String>) -> Result<Option<MountOptions>, VolumeError> {
        if let Some(option) = options.keys().find(|k| !matches!(k.as_str(), "type" | "device" | "o")) {
            return Err(VolumeError::Invalid(format!("invalid option key: {option:?}")));
        }
        if options.is_empty() {
            return Ok(None);
        }
        let get = |key: &str| options.get(key).map(String::as_str).unwrap_or_default();
        let flags: Vec<&str> = get("o").split(',').filter(|o| !o.is_empty()).collect();
        match get("type") {
            "tmpfs" => Ok(Some(MountOptions::Tmpfs { data: get("o").to_owned() })),
            "none" | "" if flags.iter().any(|f| matches!(*f, "bind" | "rbind")) => {
                let device = get("device");
                if !device.starts_with('/') {
                    return Err(VolumeError::Invalid(format!("a bind volume needs an absolute device path, not {device:?}")));
                }
                if let Some(other) = flags.iter().find(|f| !matches!(**f, "bind" | "rbind" | "ro" | "rw")) {
                    return Err(VolumeError::Invalid(format!("bind volume option {other:?} is not supported (bind, rbind, ro, rw)")));
                }
                Ok(Some(MountOptions::Bind { device: PathBuf::from(device), recursive: flags.contains(&"rbind"), read_only: flags.contains(&"ro") }))
            }
            other => Err(VolumeError::Invalid(format!("local volume type {other:?} is not supported by Berth (tmpfs, or none with o=bind)"))),
        }
    }

    fn describe(&self) -> String {
        match self {
            MountOptions::Tmpfs { data } => format!("tmpfs {data}"),
            MountOptions::Bind { device, .. } => format!("bind of {}", device.display()),
        }
    }

    fn mount(&self, target: &Path) -> std::io::Result<()> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput));
        let target_c = c(target)?;
        let check = |ret: i32| if ret == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
        match self {
            MountOptions::Tmpfs { data } => {
                let data_c = CString::new(data.as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
                // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
                check(unsafe { libc::mount(c"tmpfs".as_ptr(), target_c.as_ptr(), c"tmpfs".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV, data_c.as_ptr().cast()) })
            }
            MountOptions::Bind { device, recursive, read_only } => {
                let device_c = c(device)?;
                let flags = libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 };
                // SAFETY: as above; a bind takes no type or data.
                check(unsafe { libc::mount(device_c.as_ptr(), target_c.as_ptr(), std::ptr::null(), flags, std::ptr::null()) })?;
                if *read_only {
                    // SAFETY: as above; a read-only bind is a remount of the bind.
                    let remounted = check(unsafe {
                        libc::mount(std::ptr::null(), target_c.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, std::ptr::null())
                    });
                    if let Err(e) = remounted {
                        // SAFETY: as above.
                        unsafe { libc::umount2(target_c.as_ptr(), libc::MNT_DETACH) };
                        return Err(e);
                    }
                }
                Ok(())
            }
        }
    }
}

/// The bytes of the files under `dir` (not following links), as `du` counts apparent
/// sizes: a volume's usage, a container's writable layer.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_are_docker_local_drivers() {
        let opts = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>();
        assert_eq!(MountOptions::parse(&opts(&[])).expect("plain"), None);
        assert_eq!(
            MountOptions::parse(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m,uid=1000")])).expect("tmpfs"),
            Some(MountOptions::Tmpfs { data: "size=1m,uid=1000".into() })
        );
        assert_eq!(
            MountOptions::parse(&opts(&[("type", "none"), ("o", "rbind,ro"), ("device", "/srv/data")])).expect("bind"),
            Some(MountOptions::Bind { device: "/srv/data".into(), recursive: true, read_only: true })
        );
        for (bad, says) in [
            (opts(&[("type", "none"), ("o", "bind"), ("device", "relative")]), "absolute device path"),
            (opts(&[("type", "none"), ("o", "bind,noexec"), ("device", "/x")]), "\"noexec\" is not supported"),
            (opts(&[("type", "nfs"), ("o", "addr=10.0.0.1"), ("device", ":/export")]), "\"nfs\" is not supported"),
            (opts(&[("size", "1m")]), "invalid option key"),
        ] {
            let err = MountOptions::parse(&bad).expect_err("refused").to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn create_is_idempotent_and_removal_respects_users() {
        let root = std::env::temp_dir().join(format!("berth-volumes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let volumes = Volumes::open(&root).expect("open");
        let (v, created) = volumes.create(Some("data"), "local", BTreeMap::new(), BTreeMap::new(), false).expect("create");
        assert!(created && volumes.data_dir(&v.name).is_dir());
        let (_, again) = volumes.create(Some("data"), "", BTreeMap::new(), BTreeMap::new(), false).expect("create");
        assert!(!again);
        assert_eq!(volumes.create(Some("bad name"), "", BTreeMap::new(), BTreeMap::new(), false).expect_err("bad").kind(), ErrorKind::InvalidArgument);
        assert!(matches!(volumes.create(None, "nfs", BTreeMap::new(), BTreeMap::new(), false), Err(VolumeError::Driver(_))));
        volumes.mark_used("data", "abcdef0123456789");
        let err = volumes.remove("data", true).expect_err("in use");
        assert_eq!(err.to_string(), "volume data is in use by container abcdef012345");
        let (anon, _) = volumes.create(None, "", BTreeMap::new(), BTreeMap::new(), true).expect("anon");
        assert_eq!(anon.name.len(), 64);
        let (pruned, _) = volumes.prune(false, &[]).expect("prune");
        assert_eq!(pruned, vec![anon.name.clone()]);
        volumes.unmark_used("data", "abcdef0123456789");
        volumes.remove("data", false).expect("remove");
        assert!(volumes.list().expect("list").is_empty());
        assert!(!root.join("volumes/data").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
