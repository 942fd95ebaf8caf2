//! Images: pull from registries into the content store, recorded in the catalog.

pub mod api;
mod archive;
pub mod catalog;
mod check;
mod history;
pub mod manifest;
mod pull;
mod push;
mod remove;

use std::path::Path;

use berth_proto::ErrorKind;

pub use archive::ArchiveError;
pub use check::CheckReport;
pub use history::{HistoryStep, Pruned};
pub use catalog::{Catalog, CatalogError, ImageRecord};
pub use pull::{PullError, PullProgress};
pub use push::{PushError, Pushed};
pub use remove::{RemoveError, Removed};

use crate::content::{ContentError, ContentStore};
use crate::registry::{RegistryClient, RegistryConfig};

/// The engine's images: blobs, the catalog of names, and the registry client.
#[derive(Debug)]
pub struct Images {
    pub content: ContentStore,
    pub catalog: Catalog,
    pub snapshots: crate::snapshot::Snapshots,
    pub registry: RegistryClient,
    root: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Config(#[from] crate::registry::ConfigError),
}

impl OpenError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpenError::Config(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

impl Images {
    /// Opens the stores under `root` (`content/`, `images.db`, `snapshots/`).
    pub fn open(root: &Path, registries: RegistryConfig) -> Result<Images, OpenError> {
        std::fs::create_dir_all(root).map_err(|source| ContentError::Io { what: format!("create {}", root.display()), source })?;
        // Temporary files of interrupted saves and loads.
        let _ = std::fs::remove_dir_all(root.join("tmp"));
        Ok(Images {
            content: ContentStore::open(&root.join("content"))?,
            catalog: Catalog::open(&root.join("images.db"))?,
            snapshots: crate::snapshot::Snapshots::open(&root.join("snapshots"))?,
            registry: RegistryClient::new(registries),
            root: root.to_owned(),
        })
    }

    /// A fresh path for a temporary file of the engine (removed by its user).
    pub fn scratch_file(&self, what: &str) -> std::path::PathBuf {
        let dir = self.root.join("tmp");
        let _ = std::fs::create_dir_all(&dir);
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        dir.join(format!("{what}-{n}.tar"))
    }
}
