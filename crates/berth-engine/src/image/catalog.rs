//! The image catalog: which images the engine holds and by which names, in SQLite.
//! Every change is one transaction, so a crash never leaves half an image record.

use std::path::Path;
use std::sync::Mutex;

use berth_proto::ErrorKind;
use rusqlite::{params, Connection, OptionalExtension};

use crate::content::Digest;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("image catalog: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("image catalog holds a bad digest {0:?}")]
    Corrupt(String),
}

impl CatalogError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// One image: identified by its config digest, as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest_digest: Digest,
    /// Names that point here (`registry/repo:tag`).
    pub tags: Vec<String>,
    /// `registry/repo@sha256:...` it was pulled as.
    pub repo_digests: Vec<String>,
    /// Sum of the compressed layer sizes.
    pub size: u64,
    pub created: String,
    pub architecture: String,
    pub os: String,
    /// The uncompressed layers' digests (the config's `rootfs.diff_ids`), bottom first.
    pub layers: Vec<Digest>,
}

#[derive(Debug)]
pub struct Catalog {
    db: Mutex<Connection>,
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS images (
                 id TEXT PRIMARY KEY,
                 manifest_digest TEXT NOT NULL,
                 size INTEGER NOT NULL,
                 created TEXT NOT NULL,
                 architecture TEXT NOT NULL,
                 os TEXT NOT NULL,
                 layers TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS names (
                 name TEXT PRIMARY KEY,
                 kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
                 image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
             );
             CREATE TABLE IF NOT EXISTS signatures (
                 repository TEXT NOT NULL,
                 digest TEXT NOT NULL,
                 key TEXT NOT NULL,
                 PRIMARY KEY (repository, digest, key)
             );
             CREATE TABLE IF NOT EXISTS build_cache (
                 key TEXT PRIMARY KEY,
                 image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
             );",
        )?;
        Ok(Catalog { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an image and points `tag` (if any) and `repo_digest` at it, in one
    /// transaction. A tag that pointed elsewhere moves.
    pub fn put(&self, image: &ImageRecord, tag: Option<&str>, repo_digest: Option<&str>) -> Result<(), CatalogError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let layers: Vec<String> = image.layers.iter().map(Digest::to_string).collect();
        tx.execute(
            "INSERT INTO images (id, manifest_digest, size, created, architecture, os, layers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest",
            params![image.id.to_string(), image.manifest_digest.to_string(), image.size as i64, image.created, image.architecture, image.os, layers.join(","),],
        )?;
        for (name, kind) in [(tag, "tag"), (repo_digest, "digest")] {
            if let Some(name) = name {
                tx.execute(
                    "INSERT INTO names (name, kind, image_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                    params![name, kind, image.id.to_string()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Points `name` (a tag) at an image; a tag that pointed elsewhere moves.
    pub fn tag(&self, image: &Digest, name: &str) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO names (name, kind, image_id) VALUES (?1, 'tag', ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, kind = 'tag'",
            params![name, image.to_string()],
        )?;
        Ok(())
    }

    /// Removes one name; whether it existed.
    pub fn untag(&self, name: &str) -> Result<bool, CatalogError> {
        Ok(self.db().execute("DELETE FROM names WHERE name = ?1", [name])? > 0)
    }

    /// Deletes an image and every name of it, in one transaction.
    pub fn delete(&self, image: &Digest) -> Result<(), CatalogError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute("DELETE FROM names WHERE image_id = ?1", [image.to_string()])?;
        tx.execute("DELETE FROM images WHERE id = ?1", [image.to_string()])?;
        tx.commit()?;
        Ok(())
    }

    /// The image a build step made before with this cache key, if it is still here.
    pub fn cached(&self, key: &str) -> Result<Option<ImageRecord>, CatalogError> {
        let id = self.db().query_row("SELECT image_id FROM build_cache WHERE key = ?1", [key], |r| r.get::<_, String>(0)).optional()?;
        match id {
            Some(id) => Ok(self.select(Some(&id))?.into_iter().next()),
            None => Ok(None),
        }
    }

    /// Remembers the image a build step made, under its cache key.
    pub fn remember(&self, key: &str, image: &Digest) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO build_cache (key, image_id) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id",
            params![key, image.to_string()],
        )?;
        Ok(())
    }

    /// The images build steps made (the build cache): hidden from the list unless named.
    pub fn build_steps(&self) -> Result<std::collections::HashSet<String>, CatalogError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT DISTINCT image_id FROM build_cache")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Forgets the build cache; returns the images it held.
    pub fn forget_build_steps(&self) -> Result<Vec<String>, CatalogError> {
        let ids: Vec<String> = self.build_steps()?.into_iter().collect();
        self.db().execute("DELETE FROM build_cache", [])?;
        Ok(ids)
    }

    /// Every image, by id.
    /// Records that the key with this fingerprint verified a signature of `digest` in
    /// `repository` (`registry/path`).
    pub fn record_signature(&self, repository: &str, digest: &Digest, key: &str) -> Result<(), CatalogError> {
        self.db().execute("INSERT OR IGNORE INTO signatures (repository, digest, key) VALUES (?1, ?2, ?3)", params![repository, digest.to_string(), key])?;
        Ok(())
    }

    /// [`Catalog::record_signature`] for each of `keys`.
    pub fn record_signatures(&self, repository: &str, digest: &Digest, keys: &[String]) -> Result<(), CatalogError> {
        keys.iter().try_for_each(|key| self.record_signature(repository, digest, key))
    }

    /// The (repository, key) pairs recorded for any of `repo_digests`
    /// (`registry/path@sha256:...`).
    pub fn signatures_of(&self, repo_digests: &[String]) -> Result<Vec<(String, String)>, CatalogError> {
        let db = self.db();
        let mut query = db.prepare("SELECT key FROM signatures WHERE repository = ?1 AND digest = ?2")?;
        let mut found = Vec::new();
        for name in repo_digests {
            let Some((repository, digest)) = name.split_once('@') else { continue };
            for key in query.query_map(params![repository, digest], |row| row.get::<_, String>(0))? {
                found.push((repository.to_owned(), key?));
            }
        }
        Ok(found)
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>, CatalogError> {
        self.select(None)
    }

    /// The images with `id` (one at most), or all of them.
    fn select(&self, id: Option<&str>) -> Result<Vec<ImageRecord>, CatalogError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, manifest_digest, size, created, architecture, os, layers FROM images
             WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut images = Vec::new();
        for row in rows {
            let (id, manifest, size, created, architecture, os, layers) = row?;
            let parse = |s: &str| s.parse::<Digest>().map_err(|_| CatalogError::Corrupt(s.to_owned()));
            let mut record = ImageRecord {
                id: parse(&id)?,
                manifest_digest: parse(&manifest)?,
                tags: Vec::new(),
                repo_digests: Vec::new(),
                size: u64::try_from(size).unwrap_or(0),
                created,
                architecture,
                os,
                layers: layers.split(',').filter(|s| !s.is_empty()).map(parse).collect::<Result<_, _>>()?,
            };
            let mut names = db.prepare_cached("SELECT name, kind FROM names WHERE image_id = ?1 ORDER BY name")?;
            for name in names.query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (name, kind) = name?;
                if kind == "tag" {
                    record.tags.push(name);
                } else {
                    record.repo_digests.push(name);
                }
            }
            images.push(record);
        }
        Ok(images)
    }

    /// The image a name (`registry/repo:tag`, `repo@digest`) or an id (full or a unique
    /// prefix of at least 4 hex digits) stands for.
    pub fn find(&self, name_or_id: &str) -> Result<Option<ImageRecord>, CatalogError> {
        let id: Option<String> = {
            let db = self.db();
            let by_name = db.query_row("SELECT image_id FROM names WHERE name = ?1", [name_or_id], |r| r.get::<_, String>(0)).optional()?;
            match by_name {
                Some(id) => Some(id),
                None => {
                    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
                    if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        let mut stmt = db.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
                        let ids: Vec<String> = stmt.query_map([format!("sha256:{hex}%")], |r| r.get(0))?.collect::<Result<_, _>>()?;
                        if ids.len() == 1 {
                            ids.into_iter().next()
                        } else {
                            None
                        }
                    } else {
                        None
                    }
                }
            }
        };
        let Some(id) = id else { return Ok(None) };
        Ok(self.select(Some(&id))?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8) -> ImageRecord {
        ImageRecord {
            id: Digest::of(&[n]),
            manifest_digest: Digest::of(&[n, n]),
            tags: vec![],
            repo_digests: vec![],
            size: 1000 + u64::from(n),
            created: "1970-01-01T00:00:00Z".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            layers: vec![Digest::of(b"l1"), Digest::of(b"l2")],
        }
    }

    #[test]
    fn put_list_find_and_move_a_tag() {
        let dir = std::env::temp_dir().join(format!("berth-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let catalog = Catalog::open(&dir.join("images.db")).expect("open");
        catalog.put(&record(1), Some("r/a:latest"), Some("r/a@sha256:x")).expect("put");
        let all = catalog.list().expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tags, ["r/a:latest"]);
        assert_eq!(all[0].layers.len(), 2);
        let found = catalog.find("r/a:latest").expect("find").expect("some");
        assert_eq!(found.id, record(1).id);
        let first = record(1);
        let prefix = &first.id.hex()[..8];
        assert_eq!(catalog.find(prefix).expect("find").map(|i| i.id), Some(record(1).id));
        // The tag moves to a newer image; the old one keeps its digest name.
        catalog.put(&record(2), Some("r/a:latest"), None).expect("put");
        let old = catalog.find(&record(1).id.to_string()).expect("find").expect("some");
        assert!(old.tags.is_empty());
        assert_eq!(old.repo_digests, ["r/a@sha256:x"]);
        // Reopening keeps everything.
        drop(catalog);
        let catalog = Catalog::open(&dir.join("images.db")).expect("reopen");
        assert_eq!(catalog.list().expect("list").len(), 2);
        assert!(catalog.find("nope:latest").expect("find").is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
