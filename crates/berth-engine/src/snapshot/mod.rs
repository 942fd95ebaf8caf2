//! Snapshots: each layer unpacked into its own directory, keyed by its chain ID, in the
//! form overlayfs stacks (whiteouts as 0/0 character devices, opaque directories as
//! `trusted.overlay.opaque`). A layer is unpacked into a temp directory and renamed into
//! place when whole and verified against its diff ID; a hostile layer is refused and
//! nothing is written outside the snapshot.

mod unpack;

use std::path::{Path, PathBuf};

use berth_proto::ErrorKind;
use sha2::Digest as _;

pub use unpack::UnpackError;

use crate::content::Digest;
use crate::image::manifest::Compression;

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
        Ok(Snapshots { root: root.to_owned() })
    }

    /// The directory of a snapshot (whether or not it exists).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    /// Every snapshot's chain ID.
    pub fn list(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = std::fs::read_dir(&self.root)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Unpacks the layer blob at `blob` (compressed as `compression`) as snapshot
    /// `chain_id`, checking that its uncompressed bytes hash to `diff_id`.
    pub fn unpack(&self, blob: &Path, compression: Compression, diff_id: &Digest, chain_id: &Digest) -> Result<(), SnapshotError> {
        let target = self.path(chain_id);
        if target.is_dir() {
            return Ok(());
        }
        let temp = self.root.join(format!("{}.tmp", chain_id.hex()));
        let _ = std::fs::remove_dir_all(&temp);
        std::fs::create_dir(&temp).map_err(|source| SnapshotError::Io { what: "create a snapshot".into(), source })?;
        let file = std::fs::File::open(blob).map_err(|source| SnapshotError::Io { what: format!("open layer {diff_id}"), source })?;
        let result = unpack::unpack(file, compression, diff_id, &temp);
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(err.into());
        }
        std::fs::rename(&temp, &target).map_err(|source| SnapshotError::Io { what: "move a snapshot into place".into(), source })
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
}
