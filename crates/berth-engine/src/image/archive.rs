//! `save` and `load`: image tarballs that are both an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`) and a docker archive (`manifest.json`), as Docker 25+
//! writes them. `load` reads either form, including plain docker archives with
//! uncompressed layers, and refuses entries that would land outside its scratch folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_proto::ErrorKind;
use serde_json::json;

use super::lease::Lease;
use super::manifest::{self, Manifest};
use super::{ImageRecord, Images};
use crate::content::{ContentError, Digest};
use crate::registry::Reference;
use crate::snapshot::chain_id;

/// The most a manifest or image config may hold (real ones are kilobytes).
const MAX_JSON_BLOB: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("not an image archive: {0}")]
    Invalid(String),
    #[error("image archive entry {0:?} is outside the archive")]
    Hostile(String),
    #[error("image archive: cannot {what}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Catalog(#[from] super::CatalogError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

impl ArchiveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::NotFound(_) => ErrorKind::NotFound,
            ArchiveError::Invalid(_) | ArchiveError::Hostile(_) => ErrorKind::InvalidArgument,
            ArchiveError::Content(e) => e.kind(),
            ArchiveError::Snapshot(e) => e.kind(),
            ArchiveError::Io { .. } | ArchiveError::Catalog(_) => ErrorKind::Internal,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Io { what, source }
}

/// The short name docker writes in RepoTags (`busybox:latest`).
pub(super) fn familiar(name: &str) -> String {
    name.parse::<Reference>().map(|r| r.familiar()).unwrap_or_else(|_| name.to_owned())
}

impl Images {
    /// Writes the images to `out` as one tar.
    pub fn save(&self, names: &[String], out: &Path) -> Result<(), ArchiveError> {
        let mut images = Vec::new();
        for name in names {
            let image = self.resolve(name)?.ok_or_else(|| ArchiveError::NotFound(name.clone()))?;
            // Saved by name: that name; by id: all its names.
            let wanted = name.parse::<Reference>().map(|r| r.to_string()).ok().filter(|n| image.tags.contains(n));
            let tags = match wanted {
                Some(tag) => vec![tag],
                None => image.tags.clone(),
            };
            images.push((image, tags));
        }
        let file = fs::File::create(out).map_err(io(format!("create {}", out.display())))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let mut blobs: BTreeMap<Digest, ()> = BTreeMap::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        for (image, tags) in &images {
            let bytes = fs::read(self.content.path(&image.manifest_digest)).map_err(io("read a manifest"))?;
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|_| ArchiveError::Invalid("a stored manifest is unreadable".into()))?;
            let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
                .unwrap_or_else(|| manifest::OCI_MANIFEST.to_owned());
            blobs.insert(image.manifest_digest.clone(), ());
            blobs.insert(image.id.clone(), ());
            let mut layers = Vec::new();
            for layer in &m.layers {
                let d = layer.digest().map_err(|e| ArchiveError::Invalid(e.to_string()))?;
                layers.push(format!("blobs/sha256/{}", d.hex()));
                blobs.insert(d, ());
            }
            for tag in tags.iter().map(Some).chain(tags.is_empty().then_some(None)) {
                let mut entry = json!({ "mediaType": media_type, "digest": image.manifest_digest.to_string(), "size": bytes.len() });
                if let Some(tag) = tag {
                    let r: Option<Reference> = tag.parse().ok();
                    entry["annotations"] = json!({
                        "io.containerd.image.name": tag,
                        "org.opencontainers.image.ref.name": r.and_then(|r| r.tag).unwrap_or_default(),
                    });
                }
                index.push(entry);
            }
            docker.push(json!({
                "Config": format!("blobs/sha256/{}", image.id.hex()),
                "RepoTags": tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
                "Layers": layers,
            }));
        }
        let mut add = |path: &str, data: &[u8]| -> Result<(), ArchiveError> {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, path, data).map_err(io("write the archive"))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index })).unwrap_or_default())?;
        add("manifest.json", &serde_json::to_vec(&docker).unwrap_or_default())?;
        for digest in blobs.keys() {
            let path = self.content.path(digest);
            let mut file = fs::File::open(&path).map_err(io(format!("open {digest}")))?;
            let size = file.metadata().map_err(io(format!("stat {digest}")))?.len();
            let mut header = tar::Header::new_ustar();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("blobs/sha256/{}", digest.hex()), &mut file).map_err(io("write the archive"))?;
        }
        let mut inner = tar.into_inner().map_err(io("finish the archive"))?;
        inner.flush().map_err(io("finish the archive"))?;
        let mut announced = Vec::new();
        for (image, _) in &images {
            if !announced.contains(&&image.id) {
                self.announce_image("save", &image.id.to_string());
                announced.push(&image.id);
            }
        }
        Ok(())
    }

    /// Reads an image archive; returns the names (or ids) of the images loaded.
    pub async fn load(&self, archive: &Path) -> Result<Vec<String>, ArchiveError> {
        let scratch = archive.with_extension("unpacked");
        let _ = fs::remove_dir_all(&scratch);
        let result = self.load_from(archive, &scratch).await;
        let _ = fs::remove_dir_all(&scratch);
        // One `load` per image, by its id, as dockerd announces it.
        let mut ids = Vec::new();
        for name in result.iter().flatten() {
            if let Ok(Some(image)) = self.resolve(name) {
                if !ids.contains(&image.id) {
                    self.announce_image("load", &image.id.to_string());
                    ids.push(image.id);
                }
            }
        }
        result
    }

    async fn load_from(&self, archive: &Path, scratch: &Path) -> Result<Vec<String>, ArchiveError> {
        let (a, s) = (archive.to_owned(), scratch.to_owned());
        tokio::task::spawn_blocking(move || extract(&a, &s)).await.map_err(|_| ArchiveError::Invalid("extraction was interrupted".into()))??;
        // Until each image is recorded, what the load writes is kept from collection.
        let lease = self.leases.take();
        if scratch.join("index.json").is_file() && scratch.join("blobs").is_dir() {
            self.load_oci(scratch, &lease).await
        } else if scratch.join("manifest.json").is_file() {
            self.load_docker(scratch, &lease).await
        } else {
            Err(ArchiveError::Invalid("neither index.json nor manifest.json".into()))
        }
    }

    async fn import_blob(&self, scratch: &Path, digest: &Digest, lease: &Lease) -> Result<(), ArchiveError> {
        lease.protect(digest);
        if self.content.contains(digest) {
            return Ok(());
        }
        let path = scratch.join("blobs/sha256").join(digest.hex());
        if !path.is_file() {
            return Err(ArchiveError::Invalid(format!("blob {digest} is missing")));
        }
        self.content.put_file(Some(digest.clone()), &path).await?;
        Ok(())
    }

    /// Reads a small JSON blob (a manifest or config) of the store, refusing one past
    /// MAX_JSON_BLOB: a hostile archive's "config" may be gigabytes.
    async fn read_json_blob(&self, digest: &Digest, what: &str) -> Result<serde_json::Value, ArchiveError> {
        if self.content.size(digest)? > MAX_JSON_BLOB {
            return Err(ArchiveError::Invalid(format!("the {what} {digest} is larger than {} MiB", MAX_JSON_BLOB >> 20)));
        }
        serde_json::from_slice(&self.content.read(digest).await?).map_err(|_| ArchiveError::Invalid(format!("the {what} {digest} is not JSON")))
    }

    async fn load_oci(&self, scratch: &Path, lease: &Lease) -> Result<Vec<String>, ArchiveError> {
        let index: serde_json::Value = serde_json::from_slice(&fs::read(scratch.join("index.json")).map_err(io("read index.json"))?)
            .map_err(|_| ArchiveError::Invalid("index.json is not JSON".into()))?;
        let mut loaded = Vec::new();
        for entry in index["manifests"].as_array().cloned().unwrap_or_default() {
            let digest: Digest =
                entry["digest"].as_str().unwrap_or_default().parse().map_err(|e: crate::content::InvalidDigest| ArchiveError::Invalid(e.to_string()))?;
            self.import_blob(scratch, &digest, lease).await?;
            let m: Manifest = serde_json::from_value(self.read_json_blob(&digest, "manifest").await?)
                .map_err(|_| ArchiveError::Invalid(format!("manifest {digest} is unreadable")))?;
            let name = entry["annotations"]["io.containerd.image.name"].as_str().map(str::to_owned);
            let record = self.import_image(scratch, &digest, &m, lease).await?;
            let tag = name.as_deref().and_then(|n| n.parse::<Reference>().ok()).map(|r| r.to_string());
            self.catalog.put(&record, tag.as_deref(), None)?;
            loaded.push(tag.unwrap_or_else(|| record.id.to_string()));
        }
        Ok(loaded)
    }

    async fn load_docker(&self, scratch: &Path, lease: &Lease) -> Result<Vec<String>, ArchiveError> {
        let entries: serde_json::Value = serde_json::from_slice(&fs::read(scratch.join("manifest.json")).map_err(io("read manifest.json"))?)
            .map_err(|_| ArchiveError::Invalid("manifest.json is not JSON".into()))?;
        let mut loaded = Vec::new();
        for entry in entries.as_array().cloned().unwrap_or_default() {
            let file = |rel: &str| -> Result<PathBuf, ArchiveError> {
                let rel = clean(rel).ok_or_else(|| ArchiveError::Hostile(rel.to_owned()))?;
                let path = scratch.join(&rel);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(ArchiveError::Invalid(format!("{} is missing", rel.display())))
                }
            };
            let config_path = file(entry["Config"].as_str().unwrap_or_default())?;
            let config_size = fs::metadata(&config_path).map_err(io("stat the config"))?.len();
            if config_size > MAX_JSON_BLOB {
                return Err(ArchiveError::Invalid(format!("the image config is larger than {} MiB", MAX_JSON_BLOB >> 20)));
            }
            let config = fs::read(&config_path).map_err(io("read the config"))?;
            let config_digest = Digest::of(&config);
            lease.protect(&config_digest);
            self.content.put(config_digest.clone(), &config).await?;
            let mut layers = Vec::new();
            for layer in entry["Layers"].as_array().cloned().unwrap_or_default() {
                // Streamed: a layer is never held in memory whole.
                let path = file(layer.as_str().unwrap_or_default())?;
                let mut magic = [0u8; 4];
                let head = fs::File::open(&path).and_then(|mut f| std::io::Read::read(&mut f, &mut magic)).map_err(io("read a layer"))?;
                let media_type = match &magic[..head] {
                    [0x1f, 0x8b, _, _] => "application/vnd.oci.image.layer.v1.tar+gzip",
                    [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
                    _ => "application/vnd.oci.image.layer.v1.tar",
                };
                let size = fs::metadata(&path).map_err(io("stat a layer"))?.len();
                let digest = self.content.put_file(None, &path).await?;
                lease.protect(&digest);
                // Put again if collection took it between the write and the lease.
                self.content.put_file(Some(digest.clone()), &path).await?;
                layers.push(json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size }));
            }
            let manifest_json = json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_MANIFEST,
                "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len() },
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest_json).unwrap_or_default();
            let digest = Digest::of(&bytes);
            lease.protect(&digest);
            self.content.put(digest.clone(), &bytes).await?;
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|_| ArchiveError::Invalid("manifest".into()))?;
            let record = self.import_image(scratch, &digest, &m, lease).await?;
            let tags: Vec<String> = entry["RepoTags"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t.as_str()?.parse::<Reference>().ok().map(|r| r.to_string())).collect())
                .unwrap_or_default();
            if tags.is_empty() {
                self.catalog.put(&record, None, None)?;
                loaded.push(record.id.to_string());
            }
            for tag in tags {
                self.catalog.put(&record, Some(&tag), None)?;
                loaded.push(tag);
            }
        }
        Ok(loaded)
    }

    /// Imports a manifest's config and layers into the store, unpacks the layers, and
    /// returns the image's record (not yet named).
    async fn import_image(&self, scratch: &Path, manifest_digest: &Digest, m: &Manifest, lease: &Lease) -> Result<ImageRecord, ArchiveError> {
        let invalid = |e: crate::content::InvalidDigest| ArchiveError::Invalid(e.to_string());
        let config_digest = m.config.digest().map_err(invalid)?;
        self.import_blob(scratch, &config_digest, lease).await?;
        for layer in &m.layers {
            self.import_blob(scratch, &layer.digest().map_err(invalid)?, lease).await?;
        }
        let config = self.read_json_blob(&config_digest, "image config").await?;
        let diff_ids: Vec<Digest> =
            config["rootfs"]["diff_ids"].as_array().map(|ids| ids.iter().filter_map(|d| d.as_str()?.parse().ok()).collect()).unwrap_or_default();
        if diff_ids.len() != m.layers.len() {
            return Err(ArchiveError::Invalid("layers and diff_ids differ in number".into()));
        }
        let mut parent: Option<Digest> = None;
        for (layer, diff_id) in m.layers.iter().zip(&diff_ids) {
            let chain = chain_id(parent.as_ref(), diff_id);
            lease.protect(&chain);
            if !self.snapshots.contains(&chain) {
                let compression = manifest::layer_compression(&layer.media_type).unwrap_or(manifest::Compression::None);
                let blob = self.content.path(&layer.digest().map_err(invalid)?);
                let (snapshots, d, c) = (self.snapshots.clone(), diff_id.clone(), chain.clone());
                tokio::task::spawn_blocking(move || snapshots.unpack(&blob, compression, &d, &c))
                    .await
                    .map_err(|_| ArchiveError::Invalid("unpacking was interrupted".into()))??;
            }
            parent = Some(chain);
        }
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Ok(ImageRecord {
            id: config_digest,
            manifest_digest: manifest_digest.clone(),
            tags: vec![],
            repo_digests: vec![],
            size: m.layers.iter().map(|l| l.size).sum(),
            created: text(&config["created"]),
            architecture: text(&config["architecture"]),
            os: text(&config["os"]),
            layers: diff_ids,
        })
    }
}

fn clean(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks the archive's regular files into `scratch`; nothing else is trusted.
fn extract(archive: &Path, scratch: &Path) -> Result<(), ArchiveError> {
    fs::create_dir_all(scratch).map_err(io("create a scratch folder"))?;
    let file = fs::File::open(archive).map_err(io(format!("open {}", archive.display())))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let bad = |e: std::io::Error| ArchiveError::Invalid(e.to_string());
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            continue; // directories are implied; links and devices have no place here
        }
        let raw = entry.path().map_err(bad)?.display().to_string();
        let rel = clean(&raw).ok_or_else(|| ArchiveError::Hostile(raw.clone()))?;
        let path = scratch.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io("create a scratch folder"))?;
        }
        let mut out = fs::File::create(&path).map_err(io("write a scratch file"))?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = entry.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io("write a scratch file"))?;
        }
    }
    Ok(())
}
