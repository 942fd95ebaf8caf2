//! New images from old: a parent image (or none), at most one new layer (an uncompressed
//! tar), a config and one more history entry. What `docker commit` makes of a container,
//! and what each step of a build makes.

use std::io::Read;
use std::path::Path;

use berth_proto::ErrorKind;
use serde_json::{json, Map, Value};

use super::manifest::{self, Manifest};
use super::{ImageRecord, Images};
use crate::content::{ContentError, Digest};
use crate::registry::Reference;
use crate::snapshot::chain_id;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{0}")]
    Invalid(String),
    #[error("the parent image {0} is incomplete: {1}")]
    Parent(String, String),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

impl CommitError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommitError::Invalid(_) => ErrorKind::InvalidArgument,
            CommitError::Content(e) => e.kind(),
            CommitError::Snapshot(e) => e.kind(),
            CommitError::Parent(..) | CommitError::Io { .. } | CommitError::Catalog(_) => ErrorKind::Internal,
        }
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> CommitError + '_ {
    move |source| CommitError::Io { what: what.to_owned(), source }
}

/// What the new image is made of.
#[derive(Debug, Default)]
pub struct NewImage<'a> {
    pub parent: Option<&'a ImageRecord>,
    /// The new layer, an uncompressed tar (whiteouts as `.wh.` files); `None` for a step
    /// that changes only the config (its history entry says `empty_layer`).
    pub layer: Option<&'a Path>,
    /// The image config's `config` object (Cmd, Env, ...).
    pub config: Map<String, Value>,
    pub created_by: String,
    pub comment: String,
    pub author: String,
    /// `repo:tag` to give it, if any.
    pub tag: Option<String>,
    /// The layer's files already laid out as a snapshot (a stopped container's upper
    /// folder, which `layer` was made from): moved into place rather than unpacking
    /// `layer` again. Left where it is when the snapshot exists.
    pub unpacked: Option<&'a Path>,
}

/// The sha256 and size of a file, read once.
fn digest_file(path: &Path) -> Result<(Digest, u64), CommitError> {
    use sha2::Digest as _;
    let mut file = std::fs::File::open(path).map_err(io("open the new layer"))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io("read the new layer"))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((Digest::from_hash(&hasher.finalize()), size))
}

impl Images {
    /// Records a new image; its layer (if any) is stored and unpacked into a snapshot
    /// before the image is named, so a failure leaves no half-made image.
    pub async fn create_image(&self, new: NewImage<'_>) -> Result<ImageRecord, CommitError> {
        // Until the image is recorded, what it writes is kept from collection.
        let lease = self.leases.take();
        let tag = match new.tag.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => Some(n.parse::<Reference>().map_err(|e| CommitError::Invalid(e.to_string()))?.to_string()),
            None => None,
        };
        // The parent's config and layers.
        let (mut config, mut layers, mut descriptors): (Value, Vec<Digest>, Vec<Value>) = match new.parent {
            Some(parent) => {
                let name = parent.id.to_string();
                let config: Value =
                    serde_json::from_slice(&self.content.read(&parent.id).await?).map_err(|e| CommitError::Parent(name.clone(), format!("config: {e}")))?;
                let manifest: Manifest = serde_json::from_slice(&self.content.read(&parent.manifest_digest).await?)
                    .map_err(|e| CommitError::Parent(name.clone(), format!("manifest: {e}")))?;
                let descriptors = manifest.layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect();
                (config, parent.layers.clone(), descriptors)
            }
            None => (json!({"architecture": manifest::Platform::host().architecture, "os": "linux"}), Vec::new(), Vec::new()),
        };
        let mut size: u64 = descriptors.iter().filter_map(|d| d["size"].as_u64()).sum();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);

        if let Some(layer) = new.layer {
            let (diff_id, layer_size) = {
                let path = layer.to_owned();
                tokio::task::spawn_blocking(move || digest_file(&path)).await.map_err(|_| CommitError::Invalid("the commit was interrupted".into()))??
            };
            lease.protect(&diff_id);
            if !self.content.contains(&diff_id) {
                let mut writer = self.content.writer(diff_id.clone(), Some(layer_size)).await?;
                let mut file = tokio::fs::File::open(layer).await.map_err(io("open the new layer"))?;
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    use tokio::io::AsyncReadExt;
                    let n = file.read(&mut buf).await.map_err(io("read the new layer"))?;
                    if n == 0 {
                        break;
                    }
                    writer.write(&buf[..n]).await?;
                }
                writer.commit().await?;
            }
            let mut parent_chain = None;
            for diff in &layers {
                parent_chain = Some(chain_id(parent_chain.as_ref(), diff));
            }
            let chain = chain_id(parent_chain.as_ref(), &diff_id);
            lease.protect(&chain);
            if !self.snapshots.contains(&chain) {
                let (snapshots, blob, d, c) = (self.snapshots.clone(), self.content.path(&diff_id), diff_id.clone(), chain);
                let unpacked = new.unpacked.map(Path::to_owned);
                tokio::task::spawn_blocking(move || match unpacked {
                    Some(dir) => snapshots.adopt(&dir, &c),
                    None => snapshots.unpack(&blob, manifest::Compression::None, &d, &c),
                })
                .await
                .map_err(|_| CommitError::Invalid("the commit was interrupted".into()))??;
            }
            descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id.to_string(), "size": layer_size}));
            size += layer_size;
            layers.push(diff_id);
        }

        // The config: the parent's, with this step's `config`, time, author and history.
        let object = config.as_object_mut().ok_or_else(|| CommitError::Invalid("the parent's config is not an object".into()))?;
        object.insert("config".into(), Value::Object(new.config));
        object.insert("created".into(), json!(created));
        for (key, value) in [("author", &new.author), ("comment", &new.comment)] {
            if value.is_empty() {
                object.remove(key);
            } else {
                object.insert(key.into(), json!(value));
            }
        }
        object.insert("rootfs".into(), json!({"type": "layers", "diff_ids": layers.iter().map(ToString::to_string).collect::<Vec<_>>()}));
        let mut step = Map::new();
        step.insert("created".into(), json!(created));
        if !new.author.is_empty() {
            step.insert("author".into(), json!(new.author));
        }
        step.insert("created_by".into(), json!(new.created_by));
        if !new.comment.is_empty() {
            step.insert("comment".into(), json!(new.comment));
        }
        if new.layer.is_none() {
            step.insert("empty_layer".into(), json!(true));
        }
        let history = object.entry("history").or_insert_with(|| json!([]));
        if let Some(steps) = history.as_array_mut() {
            steps.push(Value::Object(step));
        }
        let platform = (text(&config["architecture"]), text(&config["os"]));

        let config_bytes = serde_json::to_vec(&config).map_err(|e| CommitError::Invalid(e.to_string()))?;
        let config_digest = Digest::of(&config_bytes);
        lease.protect(&config_digest);
        self.content.put(config_digest.clone(), &config_bytes).await?;
        let manifest_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len() },
            "layers": descriptors,
        }))
        .map_err(|e| CommitError::Invalid(e.to_string()))?;
        let manifest_digest = Digest::of(&manifest_bytes);
        lease.protect(&manifest_digest);
        self.content.put(manifest_digest.clone(), &manifest_bytes).await?;
        let record = ImageRecord {
            id: config_digest,
            manifest_digest,
            tags: tag.iter().cloned().collect(),
            repo_digests: vec![],
            size,
            created,
            architecture: platform.0,
            os: platform.1,
            layers,
        };
        self.catalog.put(&record, tag.as_deref(), None)?;
        Ok(self.catalog.find(&record.id.to_string())?.unwrap_or(record))
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
