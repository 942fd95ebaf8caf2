//! `pull`: resolve a reference (choosing a platform from an index), fetch the manifest,
//! config and layers (in parallel, skipping blobs already held, each verified while it
//! streams), then record the image. Until the record is written nothing names the
//! image, so an interrupted pull leaves only verified blobs, which the next one reuses.

use std::sync::Arc;

use berth_proto::ErrorKind;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::manifest::{self, Index, Manifest, Platform};
use super::{ImageRecord, Images};
use crate::content::{Digest, InvalidDigest};
use crate::registry::{InvalidReference, Reference, RegistryError};

/// How many layers download at once.
const PARALLEL_LAYERS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    Platform(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{reference} has no image for {wanted} (it offers: {offered})")]
    NoMatchingPlatform { reference: String, wanted: String, offered: String },
    #[error("invalid manifest for {reference}: {detail}")]
    InvalidManifest { reference: String, detail: String },
    #[error("layer {digest} of {reference} has unsupported media type {media_type:?}")]
    UnsupportedLayer { reference: String, digest: String, media_type: String },
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error("unpacking was interrupted")]
    Interrupted,
    #[error(transparent)]
    Trust(#[from] super::TrustError),
}

impl PullError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PullError::Reference(_) | PullError::Platform(_) | PullError::Digest(_) => ErrorKind::InvalidArgument,
            PullError::Registry(e) => e.kind(),
            PullError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            PullError::InvalidManifest { .. } | PullError::UnsupportedLayer { .. } => ErrorKind::InvalidArgument,
            PullError::Content(e) => e.kind(),
            PullError::Catalog(e) => e.kind(),
            PullError::Snapshot(e) => e.kind(),
            PullError::Interrupted => ErrorKind::Internal,
            PullError::Trust(e) => e.kind(),
        }
    }
}

/// What a pull reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// The reference resolved to this manifest.
    Resolved { manifest: Digest, layers: usize },
    /// Bytes of one layer so far.
    Layer { digest: Digest, done: u64, total: u64 },
    /// A layer is complete; `cached` when it was already held.
    LayerDone { digest: Digest, cached: bool },
}

impl Images {
    /// Pulls `reference` for `platform` (default: this machine's), and announces the
    /// `pull`.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        creds: Option<&crate::registry::Credentials>,
        progress: mpsc::UnboundedSender<PullProgress>,
    ) -> Result<ImageRecord, PullError> {
        self.pull_signed(reference, platform, creds, progress, false).await
    }

    /// [`Images::pull`], asking for a signature by a key of the trust policy even where
    /// no rule of it covers the repository (`DOCKER_CONTENT_TRUST=1`).
    pub async fn pull_signed(
        &self,
        reference: &str,
        platform: Option<&str>,
        creds: Option<&crate::registry::Credentials>,
        progress: mpsc::UnboundedSender<PullProgress>,
        require_signature: bool,
    ) -> Result<ImageRecord, PullError> {
        let record = self.fetch(reference, platform, creds, progress, require_signature).await?;
        self.announce_reference("pull", reference);
        Ok(record)
    }

    async fn fetch(
        &self,
        reference: &str,
        platform: Option<&str>,
        creds: Option<&crate::registry::Credentials>,
        progress: mpsc::UnboundedSender<PullProgress>,
        require_signature: bool,
    ) -> Result<ImageRecord, PullError> {
        let reference: Reference = reference.parse()?;
        let wanted = match platform.filter(|p| !p.is_empty()) {
            Some(p) => Platform::parse(p).ok_or_else(|| PullError::Platform(p.to_owned()))?,
            None => Platform::host(),
        };
        let invalid = |detail: String| PullError::InvalidManifest { reference: reference.to_string(), detail };
        // Until the image is recorded, what this pull writes is kept from collection.
        let lease = self.leases.take();

        let mut top = self.registry.manifest(&reference, creds).await?;
        let repo_digest = top.digest.clone();
        // The trust policy decides before anything is downloaded.
        let verified_by = self.enforce_on_pull(&reference, &repo_digest, require_signature, creds).await?;
        if manifest::is_index(&top.media_type, &top.bytes) {
            let index: Index = serde_json::from_slice(&top.bytes).map_err(|e| invalid(e.to_string()))?;
            let chosen =
                index.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| wanted.accepts(p))).ok_or_else(|| PullError::NoMatchingPlatform {
                    reference: reference.to_string(),
                    wanted: wanted.to_string(),
                    offered: index.manifests.iter().filter_map(|d| d.platform.as_ref().map(Platform::to_string)).collect::<Vec<_>>().join(", "),
                })?;
            lease.protect(&top.digest);
            self.content.put(top.digest.clone(), &top.bytes).await?;
            top = self.registry.manifest(&reference.with_digest(chosen.digest()?), creds).await?;
        }
        let manifest: Manifest = serde_json::from_slice(&top.bytes).map_err(|e| invalid(e.to_string()))?;
        for layer in &manifest.layers {
            if manifest::layer_compression(&layer.media_type).is_none() {
                return Err(PullError::UnsupportedLayer {
                    reference: reference.to_string(),
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
        }
        lease.protect(&top.digest);
        self.content.put(top.digest.clone(), &top.bytes).await?;
        let _ = progress.send(PullProgress::Resolved { manifest: top.digest.clone(), layers: manifest.layers.len() });

        // The config: small, fetched first, read for the record.
        let config_digest = manifest.config.digest()?;
        lease.protect(&config_digest);
        self.registry.blob(&reference, &config_digest, manifest.config.size, &self.content, creds, |_| {}).await?;
        let config: serde_json::Value = serde_json::from_slice(&self.content.read(&config_digest).await?).map_err(|e| invalid(format!("config: {e}")))?;
        let diff_ids = config["rootfs"]["diff_ids"].as_array().map(Vec::len).unwrap_or(0);
        if diff_ids != manifest.layers.len() {
            return Err(invalid(format!("{} layers but {diff_ids} diff_ids in the config", manifest.layers.len())));
        }

        // The layers, a few at a time.
        let progress = Arc::new(progress);
        let mut jobs = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            let digest = layer.digest()?;
            lease.protect(&digest);
            let total = layer.size;
            let progress = progress.clone();
            let reference = &reference;
            jobs.push(async move {
                let cached = self.content.contains(&digest);
                let on_bytes = |done: u64| {
                    let _ = progress.send(PullProgress::Layer { digest: digest.clone(), done, total });
                };
                self.registry.blob(reference, &digest, total, &self.content, creds, on_bytes).await?;
                let _ = progress.send(PullProgress::LayerDone { digest: digest.clone(), cached });
                Ok::<Digest, PullError>(digest)
            });
        }
        let layers = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| ids.iter().map(|d| d.as_str().unwrap_or_default().parse::<Digest>()).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();

        // Downloads run a few at a time and finish in layer order; each finished layer is
        // unpacked (bottom-up, into a snapshot named by its chain ID) while the later
        // ones still download. The first failure on either side stops both.
        let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<Digest>();
        let download = async move {
            let mut downloads = futures::stream::iter(jobs).buffered(PARALLEL_LAYERS);
            while let Some(done) = downloads.next().await {
                let _ = finished_tx.send(done?);
            }
            Ok::<(), PullError>(())
        };
        let unpack = async {
            let mut parent: Option<Digest> = None;
            for (layer, diff_id) in manifest.layers.iter().zip(&layers) {
                let Some(blob_digest) = finished_rx.recv().await else {
                    return Ok(()); // the download side failed and says why
                };
                let chain = crate::snapshot::chain_id(parent.as_ref(), diff_id);
                lease.protect(&chain);
                if !self.snapshots.contains(&chain) {
                    let compression = manifest::layer_compression(&layer.media_type).unwrap_or(manifest::Compression::None);
                    let blob = self.content.path(&blob_digest);
                    let snapshots = self.snapshots.clone();
                    let (diff_id, chain_for_task) = (diff_id.clone(), chain.clone());
                    tokio::task::spawn_blocking(move || snapshots.unpack(&blob, compression, &diff_id, &chain_for_task))
                        .await
                        .map_err(|_| PullError::Interrupted)??;
                }
                parent = Some(chain);
            }
            Ok::<(), PullError>(())
        };
        futures::future::try_join(download, unpack).await?;

        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let record = ImageRecord {
            id: config_digest,
            manifest_digest: top.digest.clone(),
            tags: reference.tag.iter().map(|t| format!("{}:{t}", reference.name())).collect(),
            repo_digests: vec![format!("{}@{repo_digest}", reference.name())],
            size: manifest.layers.iter().map(|l| l.size).sum(),
            created: text(&config["created"]),
            architecture: text(&config["architecture"]),
            os: text(&config["os"]),
            layers,
        };
        let tag = record.tags.first().cloned();
        self.catalog.put(&record, tag.as_deref(), record.repo_digests.first().map(String::as_str))?;
        self.record_verified(&reference.name(), &repo_digest, &verified_by)?;
        Ok(self.catalog.find(&record.id.to_string())?.unwrap_or(record))
    }
}
