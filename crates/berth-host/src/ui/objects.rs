//! The views' further actions on images, volumes and networks: history, push, prune;
//! browse, preview, export, import and clone of a volume; connect and disconnect.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_proto::v1::{
    CloneVolumeRequest, ConnectNetworkRequest, DisconnectNetworkRequest, InspectImageRequest, PruneImagesRequest, PruneVolumesRequest, PushRequest,
    SearchImagesRequest, VolumeImportChunk, VolumeRef,
};
use futures::StreamExt;

use super::engine::Engine;
use super::rows::{FileRow, HistoryRow, Pruned, SearchRow};
use super::{status, UiError};
use crate::ErrorKind;

/// How much of a file the preview shows.
const PREVIEW_BYTES: u64 = 64 * 1024;

fn io(what: String) -> impl FnOnce(std::io::Error) -> UiError {
    move |e| UiError::new(ErrorKind::Internal, format!("{what}: {e}"))
}

/// A path inside a volume, as the tar names it: relative, no `..`.
fn inside(path: &str) -> Result<PathBuf, UiError> {
    let mut clean = PathBuf::new();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            _ => return Err(UiError::invalid(format!("{path}: not a path inside the volume"))),
        }
    }
    Ok(clean)
}

/// A temporary file, removed when dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Engine {
    pub async fn image_history(&self, reference: &str) -> Result<Vec<HistoryRow>, UiError> {
        let history = self.client().images().history(InspectImageRequest { reference: reference.to_owned() }).await.map_err(status("history"))?;
        Ok(history
            .into_inner()
            .steps
            .into_iter()
            .map(|s| HistoryRow { created: s.created, created_by: s.created_by, size: s.size, empty_layer: s.empty_layer })
            .collect())
    }

    /// Searches Docker Hub for `term` (or the registry a `host[:port]/words` term names,
    /// with the login stored for it), at most `limit` results, as `docker search` does.
    pub async fn search_images(&self, term: &str, limit: u32) -> Result<Vec<SearchRow>, UiError> {
        let term = term.trim();
        if term.is_empty() {
            return Err(UiError::invalid("type what to search for"));
        }
        let auth = crate::credentials::load(&crate::credentials::registry_of(term))
            .map_err(|e| UiError::new(e.kind(), e.to_string()))?
            .map(|l| berth_proto::v1::RegistryAuth { username: l.username, password: l.password });
        let found =
            self.client().images().search(SearchImagesRequest { term: term.to_owned(), limit, filters: Vec::new(), auth }).await.map_err(status("search"))?;
        Ok(found
            .into_inner()
            .results
            .into_iter()
            .map(|r| SearchRow { name: r.name, description: r.description, stars: r.star_count, official: r.is_official })
            .collect())
    }

    /// Pushes with the login stored for its registry, if any; returns the manifest digest.
    pub async fn push_image(&self, reference: &str) -> Result<String, UiError> {
        let auth = crate::credentials::load(&crate::credentials::registry_of(reference))
            .map_err(|e| UiError::new(e.kind(), e.to_string()))?
            .map(|l| berth_proto::v1::RegistryAuth { username: l.username, password: l.password });
        let pushed = self.client().images().push(PushRequest { reference: reference.to_owned(), auth }).await.map_err(status("push"))?;
        Ok(pushed.into_inner().manifest_digest)
    }

    /// Removes dangling images, or every image no container uses with `all`.
    pub async fn prune_images(&self, all: bool) -> Result<Pruned, UiError> {
        let r = self.client().images().prune(PruneImagesRequest { all }).await.map_err(status("prune images"))?.into_inner();
        let mut removed = r.untagged;
        removed.extend(r.deleted);
        Ok(Pruned { removed, reclaimed_bytes: r.reclaimed_bytes })
    }

    /// Removes every volume no container uses.
    pub async fn prune_volumes(&self) -> Result<Pruned, UiError> {
        let r = self.client().volumes().prune(PruneVolumesRequest { all: true, filters: vec![] }).await.map_err(status("prune volumes"))?.into_inner();
        Ok(Pruned { removed: r.deleted, reclaimed_bytes: r.reclaimed_bytes })
    }

    pub async fn clone_volume(&self, source: &str, target: &str) -> Result<(), UiError> {
        if target.trim().is_empty() {
            return Err(UiError::invalid("the copy needs a name"));
        }
        let request = CloneVolumeRequest { source: source.to_owned(), target: target.trim().to_owned() };
        self.client().volumes().clone_volume(request).await.map(drop).map_err(status("clone volume"))
    }

    pub async fn connect_network(&self, network: &str, container: &str) -> Result<(), UiError> {
        let request = ConnectNetworkRequest { network: network.to_owned(), container: container.trim().to_owned(), ..Default::default() };
        self.client().networks().connect_container(request).await.map(drop).map_err(status("connect"))
    }

    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), UiError> {
        let request = DisconnectNetworkRequest { network: network.to_owned(), container: container.to_owned(), force: false };
        self.client().networks().disconnect_container(request).await.map(drop).map_err(status("disconnect"))
    }

    /// Writes the volume's files as a tar to `path` (a new file); returns its size.
    pub async fn export_volume(&self, name: &str, path: &str) -> Result<u64, UiError> {
        let path = PathBuf::from(path.trim());
        if !path.is_absolute() {
            return Err(UiError::invalid(format!("{}: save to a full path", path.display())));
        }
        let mut stream = self.client().volumes().export(VolumeRef { name: name.to_owned() }).await.map_err(status("export volume"))?.into_inner();
        let mut file = std::fs::File::options().write(true).create_new(true).open(&path).map_err(io(format!("create {}", path.display())))?;
        let mut written = 0u64;
        let result = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(status("export volume"))?;
                file.write_all(&chunk.data).map_err(io(format!("write {}", path.display())))?;
                written += chunk.data.len() as u64;
            }
            file.sync_all().map_err(io(format!("write {}", path.display())))
        }
        .await;
        if let Err(err) = result {
            // No half-written archive left behind.
            let _ = std::fs::remove_file(&path);
            return Err(err);
        }
        Ok(written)
    }

    /// Unpacks a tar file into a volume (made if missing).
    pub async fn import_volume(&self, name: &str, path: &str) -> Result<(), UiError> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(UiError::invalid("the volume needs a name"));
        }
        let mut file = std::fs::File::open(path.trim()).map_err(io(format!("open {}", path.trim())))?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<VolumeImportChunk>(4);
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut first = true;
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                let n = file.read(&mut buf)?;
                if n == 0 && !first {
                    return Ok(());
                }
                buf.truncate(n);
                let chunk = VolumeImportChunk { name: if first { name.clone() } else { String::new() }, data: buf };
                first = false;
                if sender.blocking_send(chunk).is_err() || n == 0 {
                    return Ok(());
                }
            }
        });
        let imported = self.client().volumes().import(tokio_stream::wrappers::ReceiverStream::new(receiver)).await;
        let read = reader.await.map_err(|e| UiError::new(ErrorKind::Internal, e.to_string()))?;
        imported.map_err(status("import volume"))?;
        read.map_err(io(format!("read {}", path.trim())))
    }

    /// The volume's tar, spooled to a temporary file (volumes are read whole, once).
    async fn spool_volume(&self, name: &str) -> Result<Spool, UiError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spool = Spool(std::env::temp_dir().join(format!("berth-volume-{}-{n}.tar", std::process::id())));
        let mut stream = self.client().volumes().export(VolumeRef { name: name.to_owned() }).await.map_err(status("read volume"))?.into_inner();
        let mut file = std::fs::File::create(&spool.0).map_err(io("spool the volume".into()))?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(status("read volume"))?.data).map_err(io("spool the volume".into()))?;
        }
        Ok(spool)
    }

    /// The entries directly inside `dir` of a volume (`""` or `/` for its top).
    pub async fn volume_files(&self, name: &str, dir: &str) -> Result<Vec<FileRow>, UiError> {
        let dir = inside(dir)?;
        let spool = self.spool_volume(name).await?;
        let mut archive = tar::Archive::new(std::fs::File::open(&spool.0).map_err(io("read the volume".into()))?);
        let mut rows: Vec<FileRow> = Vec::new();
        for entry in archive.entries().map_err(io("read the volume".into()))? {
            let entry = entry.map_err(io("read the volume".into()))?;
            let path = entry.path().map_err(io("read the volume".into()))?.into_owned();
            let Ok(path) = inside(&path.display().to_string()) else { continue };
            if path.parent() != Some(dir.as_path()) || path.as_os_str().is_empty() {
                continue;
            }
            let kind = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => "file",
                tar::EntryType::Directory => "dir",
                tar::EntryType::Symlink | tar::EntryType::Link => "link",
                _ => "other",
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !rows.iter().any(|r| r.name == name) {
                rows.push(FileRow { name, kind: kind.to_owned(), size: entry.header().size().unwrap_or(0) });
            }
        }
        rows.sort_by(|a, b| (a.kind != "dir").cmp(&(b.kind != "dir")).then_with(|| a.name.cmp(&b.name)));
        Ok(rows)
    }

    /// The start of a text file in a volume (64 KiB at most); binary files are refused.
    pub async fn volume_preview(&self, name: &str, file: &str) -> Result<String, UiError> {
        let wanted = inside(file)?;
        let spool = self.spool_volume(name).await?;
        let mut archive = tar::Archive::new(std::fs::File::open(&spool.0).map_err(io("read the volume".into()))?);
        for entry in archive.entries().map_err(io("read the volume".into()))? {
            let entry = entry.map_err(io("read the volume".into()))?;
            let path = entry.path().map_err(io("read the volume".into()))?.into_owned();
            if inside(&path.display().to_string()).ok().as_deref() != Some(wanted.as_path()) {
                continue;
            }
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(UiError::invalid(format!("{file} is not a regular file")));
            }
            let mut head = Vec::new();
            entry.take(PREVIEW_BYTES).read_to_end(&mut head).map_err(io("read the volume".into()))?;
            if head.contains(&0) {
                return Err(UiError::invalid(format!("{file} is not text")));
            }
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        Err(UiError::new(ErrorKind::NotFound, format!("no file {file} in volume {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::inside;

    #[test]
    fn paths_stay_inside_the_volume() {
        assert_eq!(inside("/a/b").expect("ok"), std::path::PathBuf::from("a/b"));
        assert_eq!(inside("./a").expect("ok"), std::path::PathBuf::from("a"));
        assert_eq!(inside("").expect("ok"), std::path::PathBuf::new());
        assert!(inside("a/../../etc").is_err());
    }
}
