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
    /// The lower layers of a container's image, top first.
    fn lowers(&self, image_id: &str) -> Vec<PathBuf> {
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
        let record = self.find(key)?;
        let lock = self.lock_of(&record.id);
        let _guard = lock.lock().await;
        let record = self.store.get(&record.id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        let root = self.dir(&record.id).join("rootfs");
        let mounted_here = !rootfs::is_mounted(&root);
        if mounted_here {
            self.mount_rootfs(&record).await?;
        }
        let result = write_tar(&root, path, out).map_err(|e| match e {
            ContainerError::NotFound(_) => ContainerError::NoPath { path: path.to_owned(), container: record.name.clone() },
            other => other,
        });
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
