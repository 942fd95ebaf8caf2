//! `push`: the image's blobs (skipped, mounted or uploaded), then its manifest, under
//! the name given; the image then also carries that repository's digest.

use berth_proto::ErrorKind;

use super::manifest::Manifest;
use super::Images;
use crate::content::{ContentError, Digest, InvalidDigest};
use crate::registry::{BlobPush, Credentials, InvalidReference, Reference, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("push needs a tag, not a digest: {0}")]
    NoTag(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    #[error("the stored manifest of {0} is unreadable")]
    Manifest(String),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
}

impl PushError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PushError::Reference(_) | PushError::NoTag(_) | PushError::Digest(_) => ErrorKind::InvalidArgument,
            PushError::NotFound(_) => ErrorKind::NotFound,
            PushError::Registry(e) => e.kind(),
            PushError::Content(e) => e.kind(),
            PushError::Manifest(_) | PushError::Catalog(_) => ErrorKind::Internal,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub blobs: Vec<(Digest, BlobPush)>,
}

impl Images {
    /// Pushes `name` (which needs a tag) and announces the `push`.
    pub async fn push(&self, name: &str, creds: Option<&Credentials>) -> Result<Pushed, PushError> {
        let pushed = self.upload(name, creds).await?;
        self.announce_reference("push", name);
        Ok(pushed)
    }

    async fn upload(&self, name: &str, creds: Option<&Credentials>) -> Result<Pushed, PushError> {
        let reference: Reference = name.parse()?;
        if reference.tag.is_none() {
            return Err(PushError::NoTag(name.to_owned()));
        }
        let image = self.resolve(&reference.to_string())?.ok_or_else(|| PushError::NotFound(name.to_owned()))?;
        let bytes = self.content.read(&image.manifest_digest).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| PushError::Manifest(name.to_owned()))?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| super::manifest::OCI_MANIFEST.to_owned());
        // A repository on the same registry that already holds these blobs.
        let mount_from = image.repo_digests.iter().find_map(|rd| {
            let (name, _) = rd.rsplit_once('@')?;
            let (registry, repository) = name.split_once('/')?;
            (registry == reference.registry).then(|| repository.to_owned())
        });
        let mut blobs = Vec::new();
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let digest = descriptor.digest()?;
            let how = self.registry.push_blob(&reference, &digest, &self.content, mount_from.as_deref(), creds).await?;
            blobs.push((digest, how));
        }
        self.registry.push_manifest(&reference, &media_type, bytes.clone(), creds).await?;
        let repo_digest = format!("{}@{}", reference.name(), image.manifest_digest);
        self.catalog.put(&image, None, Some(&repo_digest))?;
        Ok(Pushed { manifest_digest: image.manifest_digest, manifest_size: bytes.len() as u64, blobs })
    }
}
