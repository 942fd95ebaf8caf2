//! What a container changed (`diff`: its writable layer against the image) and its whole
//! filesystem as a tar (`export`). `cp` is in `copy`.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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

    /// `export`: the container's own filesystem (without its volumes and binds, as
    /// docker exports it) as a tar into `out`. The root filesystem is mounted for the
    /// duration if the container is stopped.
    pub async fn export(self: &Arc<Self>, key: &str, out: &Path) -> Result<(), ContainerError> {
        let record = self.find(key)?;
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.root_mount(&record).await?;
        // Walked in the chrooted helper, as `cp` is: a running container cannot turn
        // the walk towards the host's files.
        super::copy::archive_dir(&root.path, out)
            .await
            .map_err(|e| ContainerError::Io { what: format!("export container {}", record.name), source: std::io::Error::other(e.message) })
    }

    /// Runs `look` on the container's root filesystem, under the container's lock; the
    /// root is mounted for the duration if the container is stopped. (The builder writes
    /// a COPY's files through it.)
    pub async fn with_root<T>(
        self: &Arc<Self>,
        key: &str,
        look: impl FnOnce(&Path, &super::ContainerRecord) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let record = self.find(key)?;
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.root_mount(&record).await?;
        look(&root.path, &record)
    }

    /// The container's root filesystem, mounted for a look if it is not (a stopped
    /// container's); unmounted again when the returned guard goes.
    pub(super) async fn root_mount(&self, record: &super::ContainerRecord) -> Result<RootMount, ContainerError> {
        let path = self.dir(&record.id).join("rootfs");
        let mounted_here = !rootfs::is_mounted(&path);
        if mounted_here {
            self.mount_rootfs(record).await?;
        }
        Ok(RootMount { path, mounted_here })
    }

    /// A never-started container's root, mounted until the guard goes: a RUN's
    /// `--mount=type=bind,from=<stage>` reads the stage's files through it (and its writes,
    /// with `rw`, land in that container's own layer and go with it).
    pub async fn hold_root(&self, key: &str) -> Result<RootMount, ContainerError> {
        let record = self.find(key)?;
        self.root_mount(&record).await
    }

    /// Takes out of a stopped container's writable layer the paths its runtime made as
    /// mount points and nothing filled (a RUN mount's target that the image had not):
    /// each path, then its parents up to `paths`' own, while they are empty. Paths are
    /// relative to the root, links already resolved.
    pub fn remove_stubs(&self, id: &str, paths: &[(PathBuf, PathBuf)]) {
        let upper = self.dir(id).join("upper");
        for (first_missing, target) in paths {
            let mut at = upper.join(target);
            loop {
                let meta = std::fs::symlink_metadata(&at);
                let removed = match meta {
                    Ok(m) if m.is_dir() => std::fs::remove_dir(&at).is_ok(),
                    Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(&at).is_ok(),
                    _ => false,
                };
                if !removed || at == upper.join(first_missing) {
                    break;
                }
                match at.parent() {
                    Some(parent) if parent.starts_with(&upper) && parent != upper => at = parent.to_path_buf(),
                    _ => break,
                }
            }
        }
    }
}

/// A container's root filesystem as `root_mount` gave it.
#[derive(Debug)]
pub struct RootMount {
    pub path: PathBuf,
    mounted_here: bool,
}

impl Drop for RootMount {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = rootfs::unmount(&self.path);
        }
    }
}

/// Tars the whole of `root` into `out`; symlinks are stored, not followed.
impl Containers {
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

impl Containers {
    /// The container's changes as a layer: its writable layer as an uncompressed tar
    /// into `out`, deletions as `.wh.` files and replaced folders with `.wh..wh..opq`
    /// (the OCI layer format). A running container is paused for the duration when
    /// `pause` is set, as `docker commit` does. Also says whether the container changed
    /// anything at all (an empty layer is no layer to docker).
    pub async fn layer_tar(self: &Arc<Self>, key: &str, out: &Path, pause: bool) -> Result<(super::ContainerRecord, bool), ContainerError> {
        let record = self.find(key)?;
        let paused_here = pause && record.state.status == super::record::Status::Running;
        if paused_here {
            self.pause(&record.id, true).await?;
        }
        let upper = self.dir(&record.id).join("upper");
        let out_path = out.to_owned();
        let written =
            tokio::task::spawn_blocking(move || write_layer(&upper, &out_path)).await.map_err(|_| ContainerError::Runtime("the commit was interrupted".into()));
        if paused_here {
            // Resumed whatever the tar came to; a failure to resume is the one to report.
            self.pause(&record.id, false).await?;
        }
        written??;
        let changed = std::fs::read_dir(self.dir(&record.id).join("upper")).is_ok_and(|mut d| d.next().is_some());
        Ok((record, changed))
    }
}

impl Containers {
    /// A stopped container's upper folder, when it can become a snapshot as it is: its
    /// root is not mounted, and overlay writes no metadata-only copies or directory
    /// redirects here (which only the stack that made them could read).
    pub fn upper_as_snapshot(&self, id: &str) -> Option<PathBuf> {
        let dir = self.dir(id);
        (self.facts.plain_overlay_upper && !rootfs::is_mounted(&dir.join("rootfs"))).then(|| dir.join("upper"))
    }
}

/// Tars an overlay upper directory as an OCI layer.
pub fn write_layer(upper: &Path, out: &Path) -> Result<(), ContainerError> {
    let file = std::fs::File::create(out).map_err(ContainerError::io("create the layer"))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    // Files with several names in the layer: the first name written, by inode.
    let mut linked: HashMap<(u64, u64), PathBuf> = HashMap::new();
    // Depth first in name order, each folder's contents right after it (as docker's
    // archives walk): a file's first name is the one that sorts first.
    let sorted = |dir: &Path| -> Result<std::vec::IntoIter<std::fs::DirEntry>, ContainerError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(ContainerError::io("read the container's changes"))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        Ok(entries.into_iter())
    };
    let mut stack = vec![(PathBuf::new(), sorted(upper)?)];
    while let Some((rel, entries)) = stack.last_mut() {
        let Some(entry) = entries.next() else {
            stack.pop();
            continue;
        };
        let rel = rel.clone();
        {
            let child = rel.join(entry.file_name());
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(ContainerError::io("read the container's changes"))?;
            if is_whiteout(&meta) {
                let mut name = std::ffi::OsString::from(".wh.");
                name.push(entry.file_name());
                empty_file(&mut builder, &rel.join(name), &meta)?;
                continue;
            }
            if meta.is_file() && meta.nlink() > 1 {
                // Another name of a file already written: a hard link entry, as docker's
                // layers have them.
                if let Some(first) = linked.get(&(meta.dev(), meta.ino())) {
                    let mut header = tar::Header::new_gnu();
                    header.set_metadata(&meta);
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    builder.append_link(&mut header, &child, first).map_err(ContainerError::io("write the layer"))?;
                    continue;
                }
                linked.insert((meta.dev(), meta.ino()), child.clone());
            }
            let kind = meta.file_type();
            if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
                special(&mut builder, &child, &meta)?;
                continue;
            }
            builder.append_path_with_name(&path, &child).map_err(ContainerError::io("write the layer"))?;
            if meta.is_dir() {
                if is_opaque(&path) {
                    empty_file(&mut builder, &child.join(".wh..wh..opq"), &meta)?;
                }
                stack.push((child, sorted(&path)?));
            }
        }
    }
    builder.into_inner().and_then(|mut w| std::io::Write::flush(&mut w)).map_err(ContainerError::io("write the layer"))?;
    Ok(())
}

/// A fifo or device node, named `name` in the layer (the tar crate's own path for
/// these writes the host path instead of the name).
fn special(builder: &mut tar::Builder<std::io::BufWriter<std::fs::File>>, name: &Path, meta: &std::fs::Metadata) -> Result<(), ContainerError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut header = tar::Header::new_gnu();
    header.set_metadata(meta);
    let kind = meta.file_type();
    header.set_entry_type(if kind.is_fifo() {
        tar::EntryType::Fifo
    } else if kind.is_char_device() {
        tar::EntryType::Char
    } else {
        tar::EntryType::Block
    });
    header.set_size(0);
    let rdev = meta.rdev();
    let write = ContainerError::io("write the layer");
    header.set_device_major(libc::major(rdev)).map_err(ContainerError::io("write the layer"))?;
    header.set_device_minor(libc::minor(rdev)).map_err(ContainerError::io("write the layer"))?;
    builder.append_data(&mut header, name, std::io::empty()).map_err(write)
}

fn empty_file(builder: &mut tar::Builder<std::io::BufWriter<std::fs::File>>, name: &Path, like: &std::fs::Metadata) -> Result<(), ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(0);
    header.set_mode(0o644);
    header.set_mtime(like.mtime().max(0) as u64);
    builder.append_data(&mut header, name, std::io::empty()).map_err(ContainerError::io("write the layer"))
}

/// An overlay folder that hides what is below it.
fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    let mut value = [0u8; 1];
    // SAFETY: both pointers are valid for the lengths given; the kernel writes at most
    // `value.len()` bytes.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    n == 1 && value[0] == b'y'
}
