//! `tag` and `rmi`, with Docker's rules: removing a name untags; removing the last name
//! (or the id) deletes the image; blobs and snapshots nothing else uses go with it.

use std::collections::HashSet;

use berth_proto::ErrorKind;

use super::manifest::Manifest;
use super::{CatalogError, ImageRecord, Images};
use crate::content::{ContentError, Digest};
use crate::registry::{InvalidReference, Reference};
use crate::snapshot::chain_id;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    Ambiguous { id: String },
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("conflict: unable to delete {image} (must be forced) - image is being used by container {container}")]
    InUse { image: String, container: String },
    #[error("conflict: unable to remove repository reference \"{name}\" (must force) - container {container} is using its referenced image {image}")]
    LastNameInUse { name: String, container: String, image: String },
    #[error("cannot remove snapshot {chain}")]
    Snapshot { chain: Digest, source: std::io::Error },
}

impl RemoveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RemoveError::NotFound(_) => ErrorKind::NotFound,
            RemoveError::Ambiguous { .. } | RemoveError::InUse { .. } | RemoveError::LastNameInUse { .. } => ErrorKind::Conflict,
            RemoveError::Reference(_) => ErrorKind::InvalidArgument,
            RemoveError::Catalog(e) => e.kind(),
            RemoveError::Content(e) => e.kind(),
            RemoveError::Snapshot { .. } => ErrorKind::Internal,
        }
    }
}

/// What `rmi` did, as Docker reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

/// The repository a stored name belongs to (`registry/repo` of `registry/repo:tag` or
/// `registry/repo@digest`).
fn repository_of(name: &str) -> Option<String> {
    name.parse::<Reference>().ok().map(|r| r.name())
}

impl Images {
    /// Finds an image by name (as given, then normalised) or id.
    pub fn resolve(&self, name_or_id: &str) -> Result<Option<ImageRecord>, CatalogError> {
        if let Some(found) = self.catalog.find(name_or_id)? {
            return Ok(Some(found));
        }
        match name_or_id.parse::<Reference>() {
            Ok(reference) => self.catalog.find(&reference.to_string()),
            Err(_) => Ok(None),
        }
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, RemoveError> {
        let image = self.resolve(source)?.ok_or_else(|| RemoveError::NotFound(source.to_owned()))?;
        let target: Reference = target.parse()?;
        self.catalog.tag(&image.id, &target.to_string())?;
        self.announce_tag(&image.id.to_string(), &target.to_string());
        self.resolve(&image.id.to_string())?.ok_or_else(|| RemoveError::NotFound(source.to_owned()))
    }

    /// `rmi NAME|ID`, as dockerd does it. By name: only that name goes (with `-f`
    /// too); removing a repository's last tag takes that repository's digests with it;
    /// the image is deleted once no name is left. By id: every name goes, which needs
    /// `-f` when there are several. An image a container uses is never deleted:
    /// forcing takes its names and leaves it to its containers.
    /// Publishes docker's `untag` and `delete` events for what went, whichever API asked.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Removed, RemoveError> {
        let id = self.resolve(name_or_id).ok().flatten().map(|image| image.id.to_string());
        let removed = self.remove_unannounced(name_or_id, force)?;
        // By name, dockerd announces the name's untag alone, not the digests of its
        // repository that go with it; by id, every name's.
        let asked = name_or_id.parse::<Reference>().map(|r| r.to_string()).unwrap_or_else(|_| name_or_id.to_owned());
        let untagged = match removed.untagged.iter().find(|n| **n == name_or_id || **n == asked) {
            Some(name) => std::slice::from_ref(name),
            None => &removed.untagged[..],
        };
        self.announce_removed(untagged, &removed.deleted, id.as_deref());
        Ok(removed)
    }

    fn remove_unannounced(&self, name_or_id: &str, force: bool) -> Result<Removed, RemoveError> {
        let image = self.resolve(name_or_id)?.ok_or_else(|| RemoveError::NotFound(name_or_id.to_owned()))?;
        let names: Vec<String> = image.tags.iter().chain(&image.repo_digests).cloned().collect();
        let by_name = names.iter().find(|n| *n == name_or_id || name_or_id.parse::<Reference>().is_ok_and(|r| r.to_string() == **n)).cloned();
        let user = self.used_by(&image.id.to_string());
        let short = |id: &str| id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
        let mut removed = Removed::default();
        match by_name {
            Some(name) => {
                if names.len() == 1 && !force {
                    if let Some(container) = &user {
                        return Err(RemoveError::LastNameInUse {
                            name: name_or_id.to_owned(),
                            container: short(container),
                            image: short(&image.id.to_string()),
                        });
                    }
                }
                let mut remaining: Vec<String> = names.iter().filter(|n| **n != name).cloned().collect();
                let mut gone = vec![name.clone()];
                if image.tags.contains(&name) {
                    let repository = repository_of(&name);
                    let tag_left = remaining.iter().any(|n| image.tags.contains(n) && repository_of(n) == repository);
                    if !tag_left {
                        gone.extend(image.repo_digests.iter().filter(|d| repository_of(d) == repository).cloned());
                        remaining.retain(|n| !gone.contains(n));
                    }
                }
                for name in gone {
                    self.catalog.untag(&name)?;
                    removed.untagged.push(name);
                }
                if !remaining.is_empty() || user.is_some() {
                    return Ok(removed);
                }
            }
            None => {
                if names.len() > 1 && !force {
                    return Err(RemoveError::Ambiguous { id: short(&image.id.to_string()) });
                }
                if let Some(container) = &user {
                    if !force {
                        return Err(RemoveError::InUse { image: name_or_id.to_owned(), container: short(container) });
                    }
                    for name in &names {
                        self.catalog.untag(name)?;
                        removed.untagged.push(name.clone());
                    }
                    return Ok(removed);
                }
                removed.untagged.extend(names);
            }
        }
        self.catalog.delete(&image.id)?;
        removed.deleted.push(image.id.to_string());
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes blobs and snapshots no remaining image needs.
    pub fn collect_garbage(&self) -> Result<(), RemoveError> {
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut chains: HashSet<Digest> = HashSet::new();
        for image in self.catalog.list()? {
            blobs.insert(image.id.clone());
            blobs.insert(image.manifest_digest.clone());
            for repo_digest in &image.repo_digests {
                if let Some(Ok(d)) = repo_digest.rsplit_once('@').map(|(_, d)| d.parse::<Digest>()) {
                    blobs.insert(d);
                }
            }
            if let Ok(bytes) = std::fs::read(self.content.path(&image.manifest_digest)) {
                if let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) {
                    blobs.extend(manifest.layers.iter().filter_map(|l| l.digest().ok()));
                }
            }
            let mut parent: Option<Digest> = None;
            for diff_id in &image.layers {
                let chain = chain_id(parent.as_ref(), diff_id);
                chains.insert(chain.clone());
                parent = Some(chain);
            }
        }
        // Held while deleting: an ingest cannot lease (and then find) what is going.
        let (_table, leased) = self.leases.for_collection();
        for digest in self.content.list()? {
            if !blobs.contains(&digest) && !leased.contains(&digest) {
                self.content.delete(&digest)?;
            }
        }
        for chain in self.snapshots.list() {
            if !chains.contains(&chain) && !leased.contains(&chain) {
                std::fs::remove_dir_all(self.snapshots.path(&chain)).map_err(|source| RemoveError::Snapshot { chain, source })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod lease_tests {
    use crate::content::Digest;

    /// A blob and a snapshot a pull has written but not yet recorded survive a
    /// collection (an `rmi` or prune meanwhile); once the pull's lease ends, unrecorded
    /// content is garbage. Collection used to delete it under the pull.
    #[tokio::test]
    async fn collection_spares_what_an_ingest_holds() {
        let root = std::env::temp_dir().join(format!("berth-gc-lease-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let images = super::Images::open(&root, crate::registry::RegistryConfig::default()).expect("open");
        let blob = b"a layer still arriving".to_vec();
        let digest = Digest::of(&blob);
        let chain = Digest::of(b"a chain");
        let lease = images.leases.take();
        lease.protect(&digest);
        lease.protect(&chain);
        images.content.put(digest.clone(), &blob).await.expect("put");
        std::fs::create_dir_all(images.snapshots.path(&chain)).expect("snapshot");
        images.collect_garbage().expect("collect");
        assert!(images.content.contains(&digest), "collection deleted a leased blob");
        assert!(images.snapshots.contains(&chain), "collection deleted a leased snapshot");
        drop(lease);
        images.collect_garbage().expect("collect");
        assert!(!images.content.contains(&digest) && !images.snapshots.contains(&chain), "unrecorded content outlived its lease");
        let _ = std::fs::remove_dir_all(&root);
    }
}
