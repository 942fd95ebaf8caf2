//! What a container changed (`diff`: its writable layer against the image) and its whole
//! filesystem as a tar (`export`). `cp` is in `copy`.

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

    /// `export`: the container's own filesystem (without its volumes and binds, as
    /// docker exports it) as a tar into `out`. The root filesystem is mounted for the
    /// duration if the container is stopped.
    pub async fn export(self: &Arc<Self>, key: &str, out: &Path) -> Result<(), ContainerError> {
        self.with_root(key, |root, _| write_tar(root, out)).await
    }

    /// Runs `look` on the container's root filesystem, under the container's lock; the
    /// root is mounted for the duration if the container is stopped.
    pub(super) async fn with_root<T>(self: &Arc<Self>, key: &str, look: impl FnOnce(&Path, &super::ContainerRecord) -> Result<T, ContainerError>) -> Result<T, ContainerError> {
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
}

/// A container's root filesystem as `root_mount` gave it.
pub(super) struct RootMount {
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
fn write_tar(root: &Path, out: &Path) -> Result<(), ContainerError> {
    let file = std::fs::File::create(out).map_err(ContainerError::io("create the archive"))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    builder.append_dir_all(".", root).map_err(ContainerError::io("archive the container"))?;
    builder.into_inner().map_err(ContainerError::io("archive the container"))?;
    Ok(())
}

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
