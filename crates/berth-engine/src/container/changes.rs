//! What a container changed (`diff`: its writable layer against the image), its whole
//! filesystem as a tar (`export`), and a path out of it as a tar (`cp` out). Reading
//! never follows a symlink out of the container: paths are resolved inside its root.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{rootfs, ContainerError, Containers};

/// docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }

    /// docker's numeric kind (0 modified, 1 added, 2 deleted).
    pub fn code(self) -> u32 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

impl Containers {
    /// The lower layers of a container's image, top first (empty if the image is gone).
    pub(super) fn lowers(&self, image_id: &str) -> Vec<PathBuf> {
        let Ok(Some(image)) = self.images.resolve(image_id) else { return Vec::new() };
        let mut parent = None;
        let mut out: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|diff| {
                let chain = crate::snapshot::chain_id(parent.as_ref(), diff);
                parent = Some(chain.clone());
                self.images.snapshots.path(&chain)
            })
            .collect();
        out.reverse();
        out
    }

    /// `diff`: each path the container added, changed or deleted, sorted.
    pub fn changes(&self, key: &str) -> Result<Vec<(ChangeKind, String)>, ContainerError> {
        let record = self.find(key)?;
        let upper = self.dir(&record.id).join("upper");
        let lowers = self.lowers(&record.image_id);
        let in_image = |rel: &Path| lowers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok());
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(upper.join(&rel)) else { continue };
            for entry in entries.flatten() {
                let child = rel.join(entry.file_name());
                let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
                let shown = format!("/{}", child.display());
                if is_whiteout(&meta) {
                    out.push((ChangeKind::Deleted, shown));
                    continue;
                }
                out.push((if in_image(&child) { ChangeKind::Modified } else { ChangeKind::Added }, shown));
                if meta.is_dir() {
                    stack.push(child);
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Writes a tar of `path` inside the container (its whole root for "/") to `out`.
    /// The root filesystem is mounted for the duration if the container is stopped.
    pub async fn archive(self: &Arc<Self>, key: &str, path: &str, out: &Path) -> Result<(), ContainerError> {
        self.with_root(key, |root, record| {
            write_tar(root, path, out).map_err(|e| match e {
                ContainerError::NotFound(_) => ContainerError::NoPath { path: path.to_owned(), container: record.name.clone() },
                other => other,
            })
        })
        .await
    }

    /// Runs `look` on the container's root filesystem, under the container's lock; the
    /// root is mounted for the duration if the container is stopped.
    async fn with_root<T>(self: &Arc<Self>, key: &str, look: impl FnOnce(&Path, &super::ContainerRecord) -> Result<T, ContainerError>) -> Result<T, ContainerError> {
        let record = self.find(key)?;
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.dir(&record.id).join("rootfs");
        let mounted_here = !rootfs::is_mounted(&root);
        if mounted_here {
            self.mount_rootfs(&record).await?;
        }
        let result = look(&root, &record);
        if mounted_here {
            let _ = rootfs::unmount(&root);
        }
        result
    }
}

/// Tars `path` (resolved inside `root`) into `out`; symlinks are stored, not followed.
fn write_tar(root: &Path, path: &str, out: &Path) -> Result<(), ContainerError> {
    let real = rootfs::resolve_in_root(root, path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ContainerError::NotFound(format!("no such file or directory: {path} in the container"))
        } else {
            ContainerError::Io { what: format!("open {path} in the container"), source: e }
        }
    })?;
    let file = std::fs::File::create(out).map_err(ContainerError::io("create the archive"))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(&real).map_err(ContainerError::io(format!("stat {path}")))?;
    let name = Path::new(path.trim_end_matches('/')).file_name().map(|n| n.to_owned());
    let io = |e: std::io::Error| ContainerError::Io { what: format!("archive {path}"), source: e };
    match (meta.is_dir(), name) {
        // The whole root: its contents at the top of the archive.
        (true, None) => builder.append_dir_all(".", &real).map_err(io)?,
        (true, Some(name)) => builder.append_dir_all(name, &real).map_err(io)?,
        (false, Some(name)) => builder.append_path_with_name(&real, name).map_err(io)?,
        (false, None) => return Err(ContainerError::Invalid(format!("cannot archive {path}"))),
    }
    builder.into_inner().map_err(io)?;
    Ok(())
}

/// The engine binary's hidden mode that unpacks a tar into a container: run as a child
/// process, it chroots into the container's root first, so no path or symlink in the
/// archive or the container can lead outside it.
pub const EXTRACT_HELPER_FLAG: &str = "--extract-in-root";

/// The helper itself: `<engine> --extract-in-root ROOT DEST [RENAME]`, the tar on stdin.
/// With RENAME, the archive's top entry gets that name.
pub fn extract_helper(root: &Path, dest: &str, rename: Option<&str>) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let root_c = std::ffi::CString::new(root.as_os_str().as_bytes()).map_err(|_| "bad root path".to_owned())?;
    // SAFETY: chroot and chdir take valid NUL-terminated paths; this process is a
    // single-threaded helper that does nothing else.
    unsafe {
        if libc::chroot(root_c.as_ptr()) != 0 {
            return Err(format!("chroot {}: {}", root.display(), std::io::Error::last_os_error()));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(format!("chdir /: {}", std::io::Error::last_os_error()));
        }
    }
    let mut archive = tar::Archive::new(std::io::stdin().lock());
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    let dest = Path::new(dest);
    for entry in archive.entries().map_err(|e| format!("read the archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("read the archive: {e}"))?;
        let path = entry.path().map_err(|e| format!("read the archive: {e}"))?.into_owned();
        let mut parts: Vec<std::path::Component> = Vec::new();
        for part in path.components() {
            match part {
                std::path::Component::Normal(_) => parts.push(part),
                // `/www/index.html` is `www/index.html` under the destination, as docker
                // reads it (testcontainers writes such names); `..` stays refused.
                std::path::Component::CurDir | std::path::Component::RootDir => {}
                _ => return Err(format!("refusing archive entry {}", path.display())),
            }
        }
        let mut relative: PathBuf = parts.iter().collect();
        if relative.as_os_str().is_empty() {
            continue;
        }
        if let Some(name) = rename {
            let rest: PathBuf = parts.iter().skip(1).collect();
            relative = if rest.as_os_str().is_empty() { PathBuf::from(name) } else { Path::new(name).join(rest) };
        }
        let target = dest.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        entry.unpack(&target).map_err(|e| format!("write {}: {e}", target.display()))?;
    }
    Ok(())
}

impl Containers {
    /// Unpacks the tar at `archive` into the container at `dest` (cp in): into it when
    /// it is a directory, else as that name in its parent directory.
    pub async fn extract(self: &Arc<Self>, key: &str, dest: &str, archive: &Path) -> Result<(), ContainerError> {
        let record = self.find(key)?;
        if record.host_config.read_only {
            return Err(ContainerError::Conflict(format!("container {} has a read-only root filesystem", record.name)));
        }
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.dir(&record.id).join("rootfs");
        let mounted_here = !rootfs::is_mounted(&root);
        if mounted_here {
            self.mount_rootfs(&record).await?;
        }
        let result = self.run_extract_helper(&record.name, &root, dest, archive).await;
        if mounted_here {
            let _ = rootfs::unmount(&root);
        }
        result
    }

    async fn run_extract_helper(&self, name: &str, root: &Path, dest: &str, archive: &Path) -> Result<(), ContainerError> {
        let no_path = || ContainerError::NoPath { path: dest.to_owned(), container: name.to_owned() };
        let (into, rename) = match rootfs::resolve_in_root(root, dest) {
            Ok(real) if real.is_dir() => (dest.to_owned(), None),
            Ok(_) => return Err(ContainerError::Conflict(format!("{dest} exists in container {name} and is not a directory"))),
            // "dir/" must name an existing directory (docker's rule).
            Err(_) if dest.ends_with('/') => return Err(no_path()),
            Err(_) => {
                let path = Path::new(dest);
                let parent = path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".to_owned());
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(no_path)?;
                match rootfs::resolve_in_root(root, &parent) {
                    Ok(real) if real.is_dir() => (parent, Some(file)),
                    _ => return Err(no_path()),
                }
            }
        };
        let exe = std::env::current_exe().map_err(ContainerError::io("find the engine's binary"))?;
        let input = std::fs::File::open(archive).map_err(ContainerError::io("open the archive"))?;
        let mut command = tokio::process::Command::new(exe);
        command.arg(EXTRACT_HELPER_FLAG).arg(root).arg(&into);
        if let Some(rename) = &rename {
            command.arg(rename);
        }
        let output = command
            .stdin(input)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .map_err(ContainerError::io("run the extract helper"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ContainerError::Invalid(format!("copying into {name}: {}", String::from_utf8_lossy(&output.stderr).trim())))
        }
    }
}

/// A path's facts inside a container, as docker's `X-Docker-Container-Path-Stat` gives
/// them (`mode` in Go's `os.FileMode` bits, which the docker CLI decodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

/// Go's `os.FileMode` for a file's metadata.
fn go_file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    let kind = meta.file_type();
    let mut out = mode & 0o777;
    if kind.is_dir() {
        out |= 1 << 31;
    } else if kind.is_symlink() {
        out |= 1 << 27;
    } else if kind.is_fifo() {
        out |= 1 << 25;
    } else if kind.is_socket() {
        out |= 1 << 24;
    } else if kind.is_char_device() {
        out |= (1 << 26) | (1 << 21);
    } else if kind.is_block_device() {
        out |= 1 << 26;
    }
    if mode & 0o4000 != 0 {
        out |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        out |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        out |= 1 << 20;
    }
    out
}

/// `path`'s facts under `root`: the parent is resolved inside the root, the last part
/// looked at as it is (a symlink is described, not followed).
fn stat_in_root(root: &Path, container: &str, path: &str) -> Result<PathStat, ContainerError> {
    let no_path = || ContainerError::NoPath { path: path.to_owned(), container: container.to_owned() };
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match Path::new(trimmed).file_name() {
        Some(name) => (Path::new(trimmed).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into()), Some(name.to_owned())),
        None => ("/".to_owned(), None),
    };
    let real_parent = rootfs::resolve_in_root(root, &parent).map_err(|_| no_path())?;
    let real = match &name {
        Some(name) => real_parent.join(name),
        None => real_parent,
    };
    let meta = std::fs::symlink_metadata(&real).map_err(|_| no_path())?;
    let link_target = if meta.file_type().is_symlink() { std::fs::read_link(&real).map(|t| t.display().to_string()).unwrap_or_default() } else { String::new() };
    let mtime = meta.modified().ok().map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()).unwrap_or_default();
    Ok(PathStat {
        name: name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into()),
        size: meta.len(),
        mode: go_file_mode(&meta),
        mtime,
        link_target,
    })
}

impl Containers {
    /// `path`'s facts inside the container (its root mounted for the look if it runs
    /// not). A symlink is described, not followed, as docker does.
    pub async fn stat_path(self: &Arc<Self>, key: &str, path: &str) -> Result<PathStat, ContainerError> {
        self.with_root(key, |root, record| stat_in_root(root, &record.name, path)).await
    }

    /// `archive` and `stat_path` under one lock and one mount (docker's `cp` out wants
    /// both).
    pub async fn archive_with_stat(self: &Arc<Self>, key: &str, path: &str, out: &Path) -> Result<PathStat, ContainerError> {
        self.with_root(key, |root, record| {
            let stat = stat_in_root(root, &record.name, path)?;
            write_tar(root, path, out).map_err(|e| match e {
                ContainerError::NotFound(_) => ContainerError::NoPath { path: path.to_owned(), container: record.name.clone() },
                other => other,
            })?;
            Ok(stat)
        })
        .await
    }

    /// Sizes a running container's terminal (`rows` x `cols`) through its monitor.
    pub async fn resize(&self, key: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        use std::io::Write;
        let record = self.find(key)?;
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", record.name)));
        }
        if !record.config.tty {
            return Ok(());
        }
        let mut socket = self.connect_attach(&record.id).map_err(ContainerError::Runtime)?;
        let mut size = Vec::with_capacity(4);
        size.extend_from_slice(&rows.to_be_bytes());
        size.extend_from_slice(&cols.to_be_bytes());
        socket.write_all(&super::attach::frame(super::attach::RESIZE, &size)).map_err(ContainerError::io("resize the terminal"))
    }
}
