//! The content store: blobs by sha256 under `blobs/sha256/<hex>`. A blob is written to
//! `ingest/`, hashed while it streams in, and renamed into place only when its digest
//! and size match, so the store never holds a blob that is not what its name says.

mod digest;

use std::io;
use std::path::{Path, PathBuf};

use berth_proto::ErrorKind;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

pub use digest::{Digest, InvalidDigest};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    InvalidDigest(#[from] InvalidDigest),
    #[error("blob {expected} does not match its digest (got {actual})")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    #[error("blob {digest} is not in the store")]
    NotFound { digest: Digest },
    #[error("content store: cannot {what}")]
    Io { what: String, source: io::Error },
}

impl ContentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::InvalidDigest(_) => ErrorKind::InvalidArgument,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => ErrorKind::InvalidArgument,
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
        let what = what.into();
        move |source| ContentError::Io { what, source }
    }
}

/// Blobs by digest, on disk.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store at `root`. Leftovers of interrupted writes in
    /// `ingest/` are provably garbage and are removed.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let store = ContentStore { root: root.to_owned() };
        std::fs::create_dir_all(store.blob_dir()).map_err(ContentError::io("create the blob directory"))?;
        let ingest = store.ingest_dir();
        let _ = std::fs::remove_dir_all(&ingest);
        std::fs::create_dir_all(&ingest).map_err(ContentError::io("create the ingest directory"))?;
        Ok(store)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where a blob lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        match std::fs::metadata(self.path(digest)) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound { digest: digest.clone() }),
            Err(err) => Err(ContentError::Io { what: format!("stat {digest}"), source: err }),
        }
    }

    /// Reads a whole (small) blob.
    pub async fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        match tokio::fs::read(self.path(digest)).await {
            Ok(bytes) => Ok(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound { digest: digest.clone() }),
            Err(err) => Err(ContentError::Io { what: format!("read {digest}"), source: err }),
        }
    }

    /// Starts writing the blob `expected`; `expected_size` is checked on the way.
    pub async fn writer(&self, expected: Digest, expected_size: Option<u64>) -> Result<Writer, ContentError> {
        let unique = format!(
            "{}-{}-{}",
            expected.hex(),
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        );
        let temp = self.ingest_dir().join(unique);
        let file = tokio::fs::File::create(&temp).await.map_err(ContentError::io("create an ingest file"))?;
        Ok(Writer { store: self.clone(), temp, file: Some(file), hasher: sha2::Sha256::new(), written: 0, expected, expected_size })
    }

    /// Writes a whole blob from memory.
    pub async fn put(&self, expected: Digest, data: &[u8]) -> Result<(), ContentError> {
        let mut writer = self.writer(expected, Some(data.len() as u64)).await?;
        writer.write(data).await?;
        writer.commit().await
    }

    /// Writes the blob held in the file at `path`, streamed (never whole in memory).
    /// Without an `expected` digest the file is hashed first (a second read, from the
    /// page cache). Returns the blob's digest.
    pub async fn put_file(&self, expected: Option<Digest>, path: &Path) -> Result<Digest, ContentError> {
        use tokio::io::AsyncReadExt;
        let expected = match expected {
            Some(digest) => digest,
            None => {
                let mut file = tokio::fs::File::open(path).await.map_err(ContentError::io(format!("open {}", path.display())))?;
                let mut hasher = sha2::Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf).await.map_err(ContentError::io(format!("read {}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    sha2::Digest::update(&mut hasher, &buf[..n]);
                }
                Digest::from_hash(&sha2::Digest::finalize(hasher))
            }
        };
        if self.contains(&expected) {
            return Ok(expected);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(ContentError::io(format!("open {}", path.display())))?;
        let size = file.metadata().await.map_err(ContentError::io(format!("stat {}", path.display())))?.len();
        let mut writer = self.writer(expected.clone(), Some(size)).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(ContentError::io(format!("read {}", path.display())))?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]).await?;
        }
        writer.commit().await?;
        Ok(expected)
    }

    /// Re-hashes a stored blob.
    pub async fn verify(&self, digest: &Digest) -> Result<(), ContentError> {
        let data = self.read(digest).await?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(ContentError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(())
    }

    /// Every stored digest, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut digests = Vec::new();
        for entry in std::fs::read_dir(self.blob_dir()).map_err(ContentError::io("list blobs"))? {
            let entry = entry.map_err(ContentError::io("list blobs"))?;
            if let Ok(d) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse::<Digest>() {
                digests.push(d);
            }
        }
        digests.sort();
        Ok(digests)
    }

    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        match std::fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound { digest: digest.clone() }),
            Err(err) => Err(ContentError::Io { what: format!("delete {digest}"), source: err }),
        }
    }
}

/// A blob being written. Dropped without [`Writer::commit`], it leaves nothing behind.
#[derive(Debug)]
pub struct Writer {
    store: ContentStore,
    temp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: sha2::Sha256,
    written: u64,
    expected: Digest,
    expected_size: Option<u64>,
}

impl Writer {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ContentError> {
        self.written += chunk.len() as u64;
        if let Some(size) = self.expected_size {
            if self.written > size {
                return Err(ContentError::SizeMismatch { digest: self.expected.clone(), expected: size, actual: self.written });
            }
        }
        self.hasher.update(chunk);
        let file =
            self.file.as_mut().ok_or_else(|| ContentError::Io { what: "write a finished blob".into(), source: io::Error::other("writer already finished") })?;
        file.write_all(chunk).await.map_err(ContentError::io("write an ingest file"))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks size and digest, then moves the blob into place (atomically).
    pub async fn commit(mut self) -> Result<(), ContentError> {
        if let Some(size) = self.expected_size {
            if self.written != size {
                return Err(ContentError::SizeMismatch { digest: self.expected.clone(), expected: size, actual: self.written });
            }
        }
        let actual = Digest::from_hash(&std::mem::take(&mut self.hasher).finalize());
        if actual != self.expected {
            return Err(ContentError::DigestMismatch { expected: self.expected.clone(), actual });
        }
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(ContentError::io("flush an ingest file"))?;
            file.sync_all().await.map_err(ContentError::io("sync an ingest file"))?;
        }
        let target = self.store.path(&self.expected);
        tokio::fs::rename(&self.temp, &target).await.map_err(ContentError::io(format!("move {} into place", self.expected)))?;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // After a successful commit the temp file is gone and this is a no-op.
        let _ = std::fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (PathBuf, ContentStore) {
        let dir = std::env::temp_dir().join(format!("berth-content-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ContentStore::open(&dir).expect("open");
        (dir, store)
    }

    fn ingest_is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir.join("ingest")).expect("ingest").next().is_none()
    }

    #[tokio::test]
    async fn streamed_blob_is_verified_and_readable() {
        let (dir, store) = store("ok");
        let data = b"hello content store".repeat(1000);
        let digest = Digest::of(&data);
        let mut w = store.writer(digest.clone(), Some(data.len() as u64)).await.expect("writer");
        for chunk in data.chunks(777) {
            w.write(chunk).await.expect("write");
        }
        w.commit().await.expect("commit");
        assert!(store.contains(&digest));
        assert_eq!(store.read(&digest).await.expect("read"), data);
        assert_eq!(store.size(&digest).expect("size"), data.len() as u64);
        store.verify(&digest).await.expect("verify");
        assert_eq!(store.list().expect("list"), vec![digest]);
        assert!(ingest_is_empty(&dir));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn wrong_digest_is_refused_and_leaves_nothing() {
        let (dir, store) = store("bad");
        let claimed = Digest::of(b"what the registry said");
        let err = store.put(claimed.clone(), b"what it sent").await.expect_err("mismatch");
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(!store.contains(&claimed));
        assert!(store.list().expect("list").is_empty());
        assert!(ingest_is_empty(&dir));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn oversize_stream_stops_early() {
        let (dir, store) = store("size");
        let data = vec![7u8; 100];
        let mut w = store.writer(Digest::of(&data), Some(10)).await.expect("writer");
        let err = w.write(&data).await.expect_err("too big");
        assert!(matches!(err, ContentError::SizeMismatch { expected: 10, actual: 100, .. }), "{err}");
        drop(w);
        assert!(ingest_is_empty(&dir));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn abandoned_write_leaves_nothing_and_reopen_clears_ingest() {
        let (dir, store) = store("abandon");
        let mut w = store.writer(Digest::of(b"x"), None).await.expect("writer");
        w.write(b"partial").await.expect("write");
        drop(w);
        assert!(ingest_is_empty(&dir));
        // A crash leaves a file in ingest/: reopening removes it.
        std::fs::write(dir.join("ingest/leftover"), b"junk").expect("write");
        let store = ContentStore::open(&dir).expect("reopen");
        assert!(ingest_is_empty(&dir));
        assert!(store.list().expect("list").is_empty());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn missing_blob_is_not_found() {
        let (dir, store) = store("missing");
        let err = store.read(&Digest::of(b"nope")).await.expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
