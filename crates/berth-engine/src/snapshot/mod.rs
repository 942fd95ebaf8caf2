//! Snapshots: each layer unpacked into its own directory, keyed by its chain ID, in the
//! form overlayfs stacks (whiteouts as 0/0 character devices, opaque directories as
//! `trusted.overlay.opaque`). A layer is unpacked into a temp directory and renamed into
//! place when whole and verified against its diff ID; a hostile layer is refused and
//! nothing is written outside the snapshot.

pub(crate) mod unpack;

use std::path::{Path, PathBuf};

use berth_proto::ErrorKind;
use sha2::Digest as _;

pub use unpack::UnpackError;

use crate::content::Digest;

/// How a layer is compressed (from its media type: `image::manifest::layer_compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// The chain ID of a stack of layers (OCI image spec): the first layer's diff ID, then
/// sha256 of "<parent chain ID> <diff ID>".
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => Digest::from_hash(&sha2::Sha256::digest(format!("{parent} {diff_id}").as_bytes())),
    }
}

/// The unpacked layers on disk.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    /// A turn per layer being unpacked (see [`Snapshots::unpack`]).
    writers: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Digest, std::sync::Arc<std::sync::Mutex<()>>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("snapshots: cannot {what}")]
    Io { what: String, source: std::io::Error },
}

impl SnapshotError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::Unpack(e) => e.kind(),
            SnapshotError::Io { .. } => ErrorKind::Internal,
        }
    }
}

impl Snapshots {
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        std::fs::create_dir_all(root).map_err(|source| SnapshotError::Io { what: format!("create {}", root.display()), source })?;
        // Half-unpacked layers from a crash are provably garbage.
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(Snapshots { root: root.to_owned(), writers: std::sync::Arc::default() })
    }

    /// The directory of a snapshot (whether or not it exists).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    /// Every snapshot's chain ID.
    pub fn list(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = std::fs::read_dir(&self.root)
            .map(|entries| entries.flatten().filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Unpacks the layer blob at `blob` (compressed as `compression`) as snapshot
    /// `chain_id`, checking that its uncompressed bytes hash to `diff_id`.
    ///
    /// One writer per layer: two pulls or loads that share it take turns, and the
    /// second finds it done. Each writes into a temporary folder of its own, so even a
    /// writer outside this process (none should exist: the engine locks its root)
    /// cannot wipe or half-fill another's; whoever renames second discards its copy.
    pub fn unpack(&self, blob: &Path, compression: Compression, diff_id: &Digest, chain_id: &Digest) -> Result<(), SnapshotError> {
        self.in_turn(chain_id, |target| self.unpack_once(blob, compression, diff_id, chain_id, target))
    }

    /// Runs `write` (given the snapshot's path) as the one writer of `chain_id`.
    fn in_turn(&self, chain_id: &Digest, write: impl FnOnce(&Path) -> Result<(), SnapshotError>) -> Result<(), SnapshotError> {
        let turn = {
            let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
            writers.entry(chain_id.clone()).or_default().clone()
        };
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        let result = write(&self.path(chain_id));
        // Forget the writer slot once nobody else waits on it.
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if writers.get(chain_id).is_some_and(|t| std::sync::Arc::strong_count(t) <= 2) {
            writers.remove(chain_id);
        }
        result
    }

    fn unpack_once(&self, blob: &Path, compression: Compression, diff_id: &Digest, chain_id: &Digest, target: &Path) -> Result<(), SnapshotError> {
        if target.is_dir() {
            return Ok(());
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = self.root.join(format!("{}.{}-{unique}.tmp", chain_id.hex(), std::process::id()));
        std::fs::create_dir(&temp).map_err(|source| SnapshotError::Io { what: "create a snapshot".into(), source })?;
        let file = std::fs::File::open(blob).map_err(|source| SnapshotError::Io { what: format!("open layer {diff_id}"), source })?;
        let result = unpack::unpack(file, compression, diff_id, &temp);
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(err.into());
        }
        match std::fs::rename(&temp, target) {
            Ok(()) => Ok(()),
            // Another writer finished first (a folder cannot replace a full one): theirs
            // is the same content, verified the same way.
            Err(_) if target.is_dir() => {
                let _ = std::fs::remove_dir_all(&temp);
                Ok(())
            }
            Err(source) => {
                let _ = std::fs::remove_dir_all(&temp);
                Err(SnapshotError::Io { what: "move a snapshot into place".into(), source })
            }
        }
    }

    /// Makes `dir`, a folder already laid out as a snapshot (a stopped container's
    /// overlay upper folder: whiteouts and opaque folders in overlay's own form), the
    /// snapshot for `chain_id`, by a rename on the same filesystem instead of unpacking
    /// its tar again. When the snapshot is there already, `dir` is left as it is.
    pub fn adopt(&self, dir: &Path, chain_id: &Digest) -> Result<(), SnapshotError> {
        self.in_turn(chain_id, |target| {
            if target.is_dir() {
                return Ok(());
            }
            std::fs::rename(dir, target).map_err(|source| SnapshotError::Io { what: "move a snapshot into place".into(), source })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        let ab = chain_id(Some(&a), &b);
        let expected = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(ab, expected);
    }

    /// Two pulls of images that share a layer unpack it at once: both succeed, the
    /// snapshot is whole, no temporary folder is left. They used to share one `.tmp`
    /// folder, each wiping the other's work.
    #[test]
    fn one_layer_unpacked_by_two_pulls_at_once_is_whole() {
        use sha2::Digest as _;
        let mut builder = tar::Builder::new(Vec::new());
        for i in 0..400 {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            let data = vec![b'x'; 2048];
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, format!("f{i:03}"), &data[..]).expect("append");
        }
        let layer = builder.into_inner().expect("tar");
        let dir = std::env::temp_dir().join(format!("berth-snapshots-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let blob = dir.join("layer.tar");
        std::fs::write(&blob, &layer).expect("write");
        let diff_id = Digest::from_hash(&sha2::Sha256::digest(&layer));
        let snapshots = Snapshots::open(&dir.join("snapshots")).expect("open");
        let chain = chain_id(None, &diff_id);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| snapshots.unpack(&blob, Compression::None, &diff_id, &chain))).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(std::fs::read_dir(snapshots.path(&chain)).expect("snapshot").count(), 400);
        let left: Vec<_> = std::fs::read_dir(dir.join("snapshots")).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
