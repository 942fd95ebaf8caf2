//! `history`, `prune` and `import`.

use serde_json::json;

use super::manifest::{self, Manifest};
use super::{ArchiveError, ImageRecord, Images, RemoveError};
use crate::content::Digest;
use crate::registry::Reference;
use crate::snapshot::chain_id;

/// One step of an image's history, newest first as docker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStep {
    pub created: String,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
    /// Compressed size of the layer this step made (0 for empty steps).
    pub size: u64,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub untagged: Vec<String>,
    pub reclaimed_bytes: u64,
}

impl Images {
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryStep>, RemoveError> {
        let image = self.resolve(name)?.ok_or_else(|| RemoveError::NotFound(name.to_owned()))?;
        let config: serde_json::Value = serde_json::from_slice(&self.content.read(&image.id).await?).unwrap_or_default();
        let manifest: Option<Manifest> = self.content.read(&image.manifest_digest).await.ok().and_then(|b| serde_json::from_slice(&b).ok());
        let mut sizes = manifest.map(|m| m.layers.into_iter().map(|l| l.size).collect::<Vec<_>>()).unwrap_or_default().into_iter();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let mut steps: Vec<HistoryStep> = config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|h| {
                let empty_layer = h["empty_layer"].as_bool().unwrap_or(false);
                HistoryStep {
                    created: text(&h["created"]),
                    created_by: text(&h["created_by"]),
                    comment: text(&h["comment"]),
                    empty_layer,
                    size: if empty_layer { 0 } else { sizes.next().unwrap_or(0) },
                }
            })
            .collect();
        steps.reverse();
        Ok(steps)
    }

    /// Removes images without a name (`all`: every image; no container uses one yet).
    pub fn prune(&self, all: bool) -> Result<Pruned, RemoveError> {
        self.prune_matching(all, &|_| true)
    }

    /// `prune`, of the images `wanted` also accepts (docker's label filters).
    /// Publishes docker's `untag` and `delete` events for what went.
    pub fn prune_matching(&self, all: bool, wanted: &dyn Fn(&ImageRecord) -> bool) -> Result<Pruned, RemoveError> {
        let pruned = self.prune_unannounced(all, wanted)?;
        self.announce_removed(&pruned.untagged, &pruned.deleted, None);
        Ok(pruned)
    }

    fn prune_unannounced(&self, all: bool, wanted: &dyn Fn(&ImageRecord) -> bool) -> Result<Pruned, RemoveError> {
        let size = |list: &[Digest]| list.iter().filter_map(|d| self.content.size(d).ok()).sum::<u64>();
        let before = size(&self.content.list()?);
        let mut pruned = Pruned::default();
        // The build cache's steps are not dangling (dockerd's intermediate images are not).
        let steps = if all { Default::default() } else { self.catalog.build_steps()? };
        for image in self.catalog.list()? {
            if steps.contains(&image.id.to_string()) {
                continue;
            }
            if (all || image.tags.is_empty()) && self.used_by(&image.id.to_string()).is_none() && wanted(&image) {
                pruned.untagged.extend(image.tags.iter().chain(&image.repo_digests).cloned());
                self.catalog.delete(&image.id)?;
                pruned.deleted.push(image.id.to_string());
            }
        }
        self.collect_garbage()?;
        pruned.reclaimed_bytes = before.saturating_sub(size(&self.content.list()?));
        Ok(pruned)
    }

    /// `builder prune`: forgets the build cache and deletes its steps' images that have
    /// no name and no container; reports the bytes freed.
    pub fn prune_build_cache(&self) -> Result<Pruned, RemoveError> {
        let size = |list: &[Digest]| list.iter().filter_map(|d| self.content.size(d).ok()).sum::<u64>();
        let before = size(&self.content.list()?);
        let mut pruned = Pruned::default();
        for id in self.catalog.forget_build_steps()? {
            let Some(image) = self.catalog.find(&id)? else { continue };
            if image.tags.is_empty() && self.used_by(&id).is_none() {
                self.catalog.delete(&image.id)?;
                pruned.deleted.push(id);
            }
        }
        self.collect_garbage()?;
        pruned.reclaimed_bytes = before.saturating_sub(size(&self.content.list()?));
        Ok(pruned)
    }

    /// Makes a one-layer image from a root filesystem tarball (plain, gzip or zstd).
    pub async fn import(&self, tarball: &std::path::Path, name: Option<&str>) -> Result<ImageRecord, ArchiveError> {
        self.import_with(tarball, name, &[], "").await
    }

    /// `import` with docker's `--change` instructions for the config and `--message`
    /// for its history (checked before anything is stored).
    pub async fn import_with(&self, tarball: &std::path::Path, name: Option<&str>, changes: &[String], message: &str) -> Result<ImageRecord, ArchiveError> {
        let tag = match name.filter(|n| !n.is_empty()) {
            Some(n) => Some(n.parse::<Reference>().map_err(|e| ArchiveError::Invalid(e.to_string()))?.to_string()),
            None => None,
        };
        let mut image_config = serde_json::Map::new();
        super::changes::apply(&mut image_config, changes).map_err(ArchiveError::Invalid)?;
        // Streamed from the file: the tarball is never held in memory whole.
        let read_err = |source| ArchiveError::Io { what: "read the tarball".into(), source };
        let mut magic = [0u8; 4];
        let head = std::fs::File::open(tarball).and_then(|mut f| std::io::Read::read(&mut f, &mut magic)).map_err(read_err)?;
        let (compression, media_type) = match &magic[..head] {
            [0x1f, 0x8b, _, _] => (manifest::Compression::Gzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
            [0x28, 0xb5, 0x2f, 0xfd] => (manifest::Compression::Zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
            _ => (manifest::Compression::None, "application/vnd.oci.image.layer.v1.tar"),
        };
        let layer_size = std::fs::metadata(tarball).map_err(read_err)?.len();
        // The diff ID is the digest of the uncompressed tar.
        let diff_id = {
            let path = tarball.to_owned();
            tokio::task::spawn_blocking(move || std::fs::File::open(&path).and_then(|f| uncompressed_digest(std::io::BufReader::new(f), compression)))
                .await
                .map_err(|_| ArchiveError::Invalid("import was interrupted".into()))?
                .map_err(|e| ArchiveError::Invalid(format!("the tarball cannot be decompressed: {e}")))?
        };
        // Until the image is recorded, what the import writes is kept from collection.
        let lease = self.leases.take();
        let layer_digest = self.content.put_file(None, tarball).await?;
        lease.protect(&layer_digest);
        lease.protect(&chain_id(None, &diff_id));
        // Again, in case collection took it between the write and the lease.
        self.content.put_file(Some(layer_digest.clone()), tarball).await?;
        // The import's time, as docker records it: two imports are two images.
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let created = created.as_str();
        let platform = manifest::Platform::host();
        let config = json!({
            "created": created,
            "architecture": platform.architecture,
            "os": "linux",
            "config": image_config,
            "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
            "history": [{ "created": created, "created_by": "berth import", "comment": if message.is_empty() { "Imported from a tarball" } else { message } }],
        });
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let config_digest = Digest::of(&config_bytes);
        lease.protect(&config_digest);
        self.content.put(config_digest.clone(), &config_bytes).await?;
        let manifest_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len() },
            "layers": [{ "mediaType": media_type, "digest": layer_digest.to_string(), "size": layer_size }],
        }))
        .unwrap_or_default();
        let manifest_digest = Digest::of(&manifest_bytes);
        lease.protect(&manifest_digest);
        self.content.put(manifest_digest.clone(), &manifest_bytes).await?;
        let chain = chain_id(None, &diff_id);
        let (snapshots, blob, d, c) = (self.snapshots.clone(), self.content.path(&layer_digest), diff_id.clone(), chain);
        tokio::task::spawn_blocking(move || snapshots.unpack(&blob, compression, &d, &c))
            .await
            .map_err(|_| ArchiveError::Invalid("import was interrupted".into()))??;
        let record = ImageRecord {
            id: config_digest,
            manifest_digest,
            tags: tag.iter().cloned().collect(),
            repo_digests: vec![],
            size: layer_size,
            created: created.to_owned(),
            architecture: platform.architecture,
            os: "linux".to_owned(),
            layers: vec![diff_id],
        };
        self.catalog.put(&record, tag.as_deref(), None)?;
        if let Some(tag) = &tag {
            self.announce_tag(&record.id.to_string(), tag);
        }
        self.announce_image("import", &record.id.to_string());
        Ok(record)
    }
}

fn uncompressed_digest(data: impl std::io::Read + 'static, compression: manifest::Compression) -> std::io::Result<Digest> {
    use sha2::Digest as _;
    use std::io::Read;
    let mut reader: Box<dyn Read> = match compression {
        manifest::Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        manifest::Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(data)?),
        manifest::Compression::None => Box::new(data),
    };
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_hash(&hasher.finalize()))
}
