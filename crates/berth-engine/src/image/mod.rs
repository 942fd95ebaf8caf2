//! Images: pull from registries into the content store, recorded in the catalog.

mod archive;
pub mod catalog;
pub mod changes;
mod check;
mod commit;
mod distribution;
mod history;
pub mod lease;
pub mod manifest;
mod pull;
mod push;
mod remove;
pub mod signatures;

use std::path::Path;

use berth_proto::ErrorKind;

pub use archive::ArchiveError;
pub use catalog::{Catalog, CatalogError, ImageRecord};
pub use check::CheckReport;
pub use commit::{CommitError, NewImage};
pub use distribution::Distribution;
pub use history::{HistoryStep, Pruned};
pub use pull::{PullError, PullProgress};
pub use push::{PushError, Pushed};
pub use remove::{RemoveError, Removed};
pub use signatures::{Checked, ToSign, TrustError};

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
    /// What ingests in flight hold against garbage collection.
    pub leases: std::sync::Arc<lease::Leases>,
    /// Image id -> the containers made from it (kept by the container store).
    used_by: std::sync::Mutex<std::collections::HashMap<String, std::collections::BTreeSet<String>>>,
    /// Where the store announces what it did (`pull`, `tag`, `untag`, `delete`, ...),
    /// whichever API asked.
    events: Option<std::sync::Arc<crate::EventBus>>,
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
        // Temporary files of interrupted saves, loads and builds (a build's context may
        // be a tmpfs, left mounted by an engine that died).
        for mount in crate::files::mounts_under(&root.join("tmp")) {
            let _ = crate::files::unmount(&mount);
        }
        let _ = std::fs::remove_dir_all(root.join("tmp"));
        Ok(Images {
            content: ContentStore::open(&root.join("content"))?,
            catalog: Catalog::open(&root.join("images.db"))?,
            snapshots: crate::snapshot::Snapshots::open(&root.join("snapshots"))?,
            registry: RegistryClient::new(registries),
            root: root.to_owned(),
            leases: Default::default(),
            used_by: Default::default(),
            events: None,
        })
    }

    /// The image store publishes its events on `events`.
    pub fn publishing_to(mut self, events: std::sync::Arc<crate::EventBus>) -> Images {
        self.events = Some(events);
        self
    }

    /// An image event, as docker names it (`pull`, `push`, `tag`, `untag`, `delete`,
    /// `save`, `load`, `import`), sent by the store whichever API asked.
    pub(crate) fn announce(&self, action: &str, attributes: &[(&str, &str)]) {
        if let Some(events) = &self.events {
            events.publish("image", action, attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        }
    }

    /// docker's `untag` for each name and `delete` for each image that went. dockerd's
    /// untag names the image by its id when it is known (one image's removal).
    pub(crate) fn announce_removed(&self, untagged: &[String], deleted: &[String], image_id: Option<&str>) {
        for name in untagged {
            match image_id {
                Some(id) => self.announce("untag", &[("id", id), ("name", id)]),
                None => self.announce("untag", &[("name", name)]),
            }
        }
        for id in deleted {
            self.announce("delete", &[("id", id), ("name", id)]);
        }
    }

    /// `tag`: dockerd names the tag in its familiar form (`ev-img:1`).
    pub(crate) fn announce_tag(&self, id: &str, tag: &str) {
        self.announce("tag", &[("id", id), ("name", &archive::familiar(tag))]);
    }

    /// An event dockerd names by the image's id alone (`save`, `load`, `import`).
    pub(crate) fn announce_image(&self, action: &str, id: &str) {
        self.announce(action, &[("id", id), ("name", id)]);
    }

    /// An event dockerd names by the reference (`pull`, `push`): the actor is its
    /// familiar form (`busybox:latest`), `name` its repository (`busybox`).
    pub(crate) fn announce_reference(&self, action: &str, reference: &str) {
        let Ok(reference) = reference.parse::<crate::registry::Reference>() else { return };
        let repository = crate::registry::Reference { tag: None, digest: None, ..reference.clone() };
        self.announce(action, &[("id", &reference.familiar()), ("name", &repository.familiar())]);
    }

    /// Records that container `container` was made from image `image_id`.
    pub fn mark_used(&self, image_id: &str, container: &str) {
        let mut used = self.used_by.lock().unwrap_or_else(|p| p.into_inner());
        used.entry(image_id.to_owned()).or_default().insert(container.to_owned());
    }

    pub fn unmark_used(&self, image_id: &str, container: &str) {
        let mut used = self.used_by.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = used.get_mut(image_id) {
            set.remove(container);
            if set.is_empty() {
                used.remove(image_id);
            }
        }
    }

    /// A container using the image, if any.
    pub fn used_by(&self, image_id: &str) -> Option<String> {
        let used = self.used_by.lock().unwrap_or_else(|p| p.into_inner());
        used.get(image_id).and_then(|set| set.iter().next().cloned())
    }

    /// A fresh path for a temporary file of the engine (removed by its user).
    /// A new path under the engine's scratch space (`tmp/`), for a [`Scratch`] file.
    /// The engine's home folder (the store's root).
    pub fn home(&self) -> &Path {
        &self.root
    }

    pub fn scratch_file(&self, what: &str) -> std::path::PathBuf {
        let dir = self.root.join("tmp");
        let _ = std::fs::create_dir_all(&dir);
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        dir.join(format!("{what}-{n}.tar"))
    }
}

/// A scratch file (a path from `scratch_file`), removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
