//! A build's context: the tar the client sends, unpacked into a folder of the build's own
//! and nothing outside it. Symlinks are kept as links (never followed, whatever they point
//! at); a context over the size budget is refused; gzip is accepted as the CLI's
//! `--compress` sends it. Checksums of context files key the build cache.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use berth_proto::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("the build context is larger than the limit of {limit} bytes (BERTH_BUILD_CONTEXT_LIMIT)")]
    TooLarge { limit: u64 },
    #[error("the build context holds {0:?}, a path outside the context")]
    Hostile(String),
    #[error("the build context is not a tar archive: {0}")]
    Invalid(String),
    #[error("cannot {what}")]
    Io { what: String, source: std::io::Error },
}

impl ContextError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContextError::Io { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io { what: what.to_owned(), source }
}

/// A reader that fails once more than `limit` bytes came through, and says so in
/// `exceeded` (the tar reader may wrap its error).
struct Budget<R> {
    inner: R,
    left: u64,
    exceeded: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = match self.left.checked_sub(n as u64) {
            Some(left) => left,
            None => {
                self.exceeded.set(true);
                return Err(std::io::Error::other("the build context is over its size limit"));
            }
        };
        Ok(n)
    }
}

/// A relative path with no `..` or root in it, or the entry's name as the error.
fn inside(path: &Path) -> Result<PathBuf, ContextError> {
    let mut clean = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            _ => return Err(ContextError::Hostile(path.display().to_string())),
        }
    }
    Ok(clean)
}

/// The process's umask, read once (from /proc: setting it to read it would race with
/// other threads making files). Unknown, every bit counts as masked.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_owned())))
            .and_then(|v| u32::from_str_radix(&v, 8).ok())
            .unwrap_or(0o7777)
    })
}

/// Unpacks the context tar (plain or gzip) from `reader` into `into` (which exists and is
/// empty). Reads at most `limit` bytes of (uncompressed) tar.
pub fn unpack(reader: impl Read, into: &Path, limit: u64) -> Result<(), ContextError> {
    let mut buffered = BufReader::new(reader);
    let gzip = buffered.fill_buf().map_err(io("read the build context"))?.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(buffered)) } else { Box::new(buffered) };
    let exceeded = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut archive = tar::Archive::new(Budget { inner: stream, left: limit, exceeded: exceeded.clone() });
    let over = |_: &std::io::Error| exceeded.get();
    let entries = archive.entries().map_err(|e| ContextError::Invalid(e.to_string()))?;
    let mut buffer = vec![0u8; 64 << 10];
    // Folders already made or checked in this unpack (thousands of files share a few).
    let mut known: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| if over(&e) { ContextError::TooLarge { limit } } else { ContextError::Invalid(e.to_string()) })?;
        let raw = entry.path().map_err(|e| ContextError::Invalid(e.to_string()))?.into_owned();
        let rel = inside(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&rel);
        // Parents are made as plain folders; one that is a link is refused, so nothing is
        // ever written through a link.
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty() && !known.contains(*p)) {
            let mut at = into.to_path_buf();
            for part in parent.components() {
                at.push(part);
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(ContextError::Hostile(raw.display().to_string())),
                    Err(_) => std::fs::create_dir(&at).map_err(io("make a folder of the build context"))?,
                }
            }
            known.insert(parent.to_path_buf());
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(ContextError::Hostile(raw.display().to_string())),
                    Err(_) => std::fs::create_dir(&target).map_err(io("make a folder of the build context"))?,
                }
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o700)).map_err(io("set a folder's mode"))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(|e| ContextError::Invalid(e.to_string()))?.unwrap_or_default().into_owned();
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(&link, &target).map_err(io("make a link of the build context"))?;
            }
            tar::EntryType::Link => {
                let source = inside(&entry.link_name().map_err(|e| ContextError::Invalid(e.to_string()))?.unwrap_or_default())?;
                let _ = std::fs::remove_file(&target);
                // A hard link to a file already unpacked: copied, so it cannot reach out.
                match std::fs::symlink_metadata(into.join(&source)) {
                    Ok(m) if m.is_file() => {
                        std::fs::copy(into.join(&source), &target).map_err(io("copy a hard-linked file of the build context"))?;
                    }
                    _ => return Err(ContextError::Hostile(raw.display().to_string())),
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                use std::os::unix::fs::OpenOptionsExt;
                let create = || std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&target);
                // A name the tar gave before is replaced (never written through).
                let file = match create() {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let _ = std::fs::remove_file(&target);
                        create()
                    }
                    other => other,
                };
                let mut file = file.map_err(io("write a file of the build context"))?;
                // Through a buffer of its own: std's copy into a file asks the file's kind
                // each time, a call per file that thousands of small files feel.
                loop {
                    let n = entry.read(&mut buffer).map_err(|e| {
                        if over(&e) {
                            ContextError::TooLarge { limit }
                        } else {
                            ContextError::Io { what: "read the build context".into(), source: e }
                        }
                    })?;
                    if n == 0 {
                        break;
                    }
                    std::io::Write::write_all(&mut file, &buffer[..n]).map_err(io("write a file of the build context"))?;
                }
                // The mode was asked at create; only what the umask took needs setting.
                if mode & umask() != 0 {
                    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io("set a file's mode"))?;
                }
            }
            // Devices, fifos and the PAX/GNU bookkeeping entries: nothing a build copies.
            _ => {}
        }
    }
    Ok(())
}

/// The checksum of what `paths` (relative to `root`) hold: for files their mode and
/// bytes, for links their target, for folders all they hold, sorted. Names count; times
/// and owners do not (the cache stays valid across a checkout).
pub fn checksum(root: &Path, paths: &[PathBuf]) -> Result<String, ContextError> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(io("read a file of the build context"))?;
        hasher.update(rel.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        if meta.file_type().is_symlink() {
            hasher.update(b"L");
            hasher.update(std::fs::read_link(&path).map_err(io("read a link of the build context"))?.as_os_str().as_encoded_bytes());
        } else if meta.is_dir() {
            hasher.update(format!("D{:o}", meta.permissions().mode() & 0o7777));
            let mut children: Vec<PathBuf> =
                std::fs::read_dir(&path).map_err(io("read a folder of the build context"))?.flatten().map(|e| rel.join(e.file_name())).collect();
            children.sort();
            stack.extend(children.into_iter().rev());
        } else {
            hasher.update(format!("F{:o}:{}:", meta.permissions().mode() & 0o7777, meta.len()));
            let mut file = std::fs::File::open(&path).map_err(io("read a file of the build context"))?;
            std::io::copy(&mut file, &mut hasher).map_err(io("read a file of the build context"))?;
        }
        hasher.update([0xff]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-ctx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            // Written raw: the tar crate refuses to *write* `..`, which hostile tars have.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if !link.is_empty() {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn a_context_unpacks_with_links_kept_as_links() {
        let d = dir("ok");
        let tar = tar_of(&[
            ("app/", tar::EntryType::Directory, b"", ""),
            ("app/main.sh", tar::EntryType::Regular, b"echo hi\n", ""),
            ("app/passwd", tar::EntryType::Symlink, b"", "/etc/passwd"),
            ("Dockerfile", tar::EntryType::Regular, b"FROM scratch\n", ""),
        ]);
        unpack(&tar[..], &d, 1 << 20).expect("unpack");
        assert_eq!(std::fs::read_to_string(d.join("app/main.sh")).expect("file"), "echo hi\n");
        assert_eq!(std::fs::read_link(d.join("app/passwd")).expect("link"), PathBuf::from("/etc/passwd"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn paths_out_of_the_context_and_writes_through_links_are_refused() {
        let d = dir("hostile");
        let up = tar_of(&[("../evil", tar::EntryType::Regular, b"x", "")]);
        assert!(matches!(unpack(&up[..], &d, 1 << 20), Err(ContextError::Hostile(_))));
        let through = tar_of(&[("out", tar::EntryType::Symlink, b"", "/tmp"), ("out/evil", tar::EntryType::Regular, b"x", "")]);
        assert!(matches!(unpack(&through[..], &d, 1 << 20), Err(ContextError::Hostile(_))));
        let hard = tar_of(&[("h", tar::EntryType::Link, b"", "/etc/passwd")]);
        assert!(matches!(unpack(&hard[..], &d, 1 << 20), Err(ContextError::Hostile(_))));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_context_over_the_budget_is_refused() {
        let d = dir("big");
        let data = vec![7u8; 64 << 10];
        let tar = tar_of(&[("big.bin", tar::EntryType::Regular, &data, "")]);
        let err = unpack(&tar[..], &d, 16 << 10).expect_err("over the budget");
        assert!(matches!(err, ContextError::TooLarge { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn checksums_follow_content_and_mode_not_time() {
        let d = dir("sum");
        std::fs::create_dir_all(d.join("src")).expect("dir");
        std::fs::write(d.join("src/a"), "one").expect("write");
        let first = checksum(&d, &[PathBuf::from("src")]).expect("sum");
        std::fs::write(d.join("src/a"), "one").expect("rewrite");
        assert_eq!(checksum(&d, &[PathBuf::from("src")]).expect("sum"), first, "a rewrite with the same bytes changed it");
        std::fs::write(d.join("src/a"), "two").expect("write");
        let changed = checksum(&d, &[PathBuf::from("src")]).expect("sum");
        assert_ne!(changed, first);
        std::fs::set_permissions(d.join("src/a"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_ne!(checksum(&d, &[PathBuf::from("src")]).expect("sum"), changed);
        let _ = std::fs::remove_dir_all(&d);
    }
}
