//! Applying one layer tarball to a directory, refusing anything that would write
//! outside it.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_proto::ErrorKind;
use sha2::Digest as _;

use super::Compression;
use crate::content::Digest;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("hostile layer {diff_id}: entry {entry:?} {reason}")]
    Hostile { diff_id: Digest, entry: String, reason: &'static str },
    #[error("layer {expected} does not match its diff ID (got {actual})")]
    DiffId { expected: Digest, actual: Digest },
    #[error("layer {diff_id} is not a valid tar stream")]
    Corrupt { diff_id: Digest, source: io::Error },
    #[error("cannot unpack {entry:?} of layer {diff_id}")]
    Io { diff_id: Digest, entry: String, source: io::Error },
    #[error("layer {diff_id} decompresses to more than {budget} bytes, the unpack budget ({why}); refused before it fills the disk")]
    OverBudget { diff_id: Digest, budget: u64, why: String },
}

impl UnpackError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UnpackError::Hostile { .. } | UnpackError::DiffId { .. } | UnpackError::Corrupt { .. } | UnpackError::OverBudget { .. } => {
                ErrorKind::InvalidArgument
            }
            UnpackError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Counts what is read through it and fails past `left` bytes: a small compressed layer
/// may expand without bound (a decompression bomb).
struct Budget<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => self.left = left,
            None => {
                self.exceeded = true;
                return Err(io::Error::other("the layer is over its unpack budget"));
            }
        }
        Ok(n)
    }
}

/// Space kept free for the engine and its containers when a layer unpacks: an eighth of
/// the free space, at most this (a VM without a data disk has a few hundred MiB).
pub const DISK_RESERVE: u64 = 1 << 30;

/// The reserve kept out of `free` bytes.
fn reserve_of(free: u64) -> u64 {
    (free / 8).min(DISK_RESERVE)
}

/// The decompressed bytes a layer unpacked into `root` may take, and why: the bytes
/// `BERTH_UNPACK_BUDGET` says, else the file system's free space less [`DISK_RESERVE`].
pub fn budget_for(root: &Path) -> (u64, String) {
    if let Some(bytes) = std::env::var("BERTH_UNPACK_BUDGET").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        return (bytes, "BERTH_UNPACK_BUDGET".to_owned());
    }
    match free_bytes(root) {
        Some(free) => {
            let reserve = reserve_of(free);
            (free - reserve, format!("the store's free space, {free} bytes, less a {reserve}-byte reserve"))
        }
        None => (u64::MAX, "no limit: the free space is unknown".to_owned()),
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value to be overwritten.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a live statvfs for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

pub fn unpack(blob: fs::File, compression: Compression, diff_id: &Digest, root: &Path) -> Result<(), UnpackError> {
    let (budget, why) = budget_for(root);
    unpack_within(blob, compression, diff_id, root, budget, why)
}

/// [`unpack`] with the budget given.
pub fn unpack_within(blob: fs::File, compression: Compression, diff_id: &Digest, root: &Path, budget: u64, why: String) -> Result<(), UnpackError> {
    let buffered = io::BufReader::with_capacity(256 << 10, blob);
    let decompressed: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(buffered).map_err(|source| UnpackError::Corrupt { diff_id: diff_id.clone(), source })?),
        Compression::None => Box::new(buffered),
    };
    let mut reader = HashingReader { inner: Budget { inner: decompressed, left: budget, exceeded: false }, hasher: sha2::Sha256::new() };
    let over = |reader: &HashingReader<Budget<Box<dyn Read>>>| reader.inner.exceeded;
    let result = (|| {
        {
            let mut archive = tar::Archive::new(&mut reader);
            for entry in archive.entries().map_err(|source| UnpackError::Corrupt { diff_id: diff_id.clone(), source })? {
                let mut entry = entry.map_err(|source| UnpackError::Corrupt { diff_id: diff_id.clone(), source })?;
                apply(&mut entry, diff_id, root)?;
            }
        }
        // Whatever follows the end-of-archive marker is part of the diff ID too.
        io::copy(&mut reader, &mut io::sink()).map_err(|source| UnpackError::Corrupt { diff_id: diff_id.clone(), source })?;
        Ok(())
    })();
    if over(&reader) {
        return Err(UnpackError::OverBudget { diff_id: diff_id.clone(), budget, why });
    }
    result?;
    let actual = Digest::from_hash(&reader.hasher.finalize());
    if &actual != diff_id {
        return Err(UnpackError::DiffId { expected: diff_id.clone(), actual });
    }
    Ok(())
}

/// The entry's path inside the layer, or why it is hostile.
fn clean_path(raw: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err("climbs out with `..`"),
            Component::Prefix(_) => return Err("has a path prefix"),
        }
    }
    Ok(out)
}

/// Refuses a path whose parent directories pass through a symlink (writing through it
/// could land anywhere); creates missing parents as directories.
fn safe_parent(root: &Path, rel: &Path) -> Result<(), &'static str> {
    let mut current = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => return Err("is written through a symlink"),
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err("has a parent that is not a directory"),
                Err(_) => {
                    if fs::create_dir(&current).is_err() {
                        return Err("has a parent that cannot be created");
                    }
                }
            }
        }
    }
    Ok(())
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_opaque(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: valid NUL-terminated strings and a 1-byte value buffer.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn lchown(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let (uid, gid) = (u32::try_from(uid).unwrap_or(0), u32::try_from(gid).unwrap_or(0));
    // SAFETY: a valid NUL-terminated path; lchown does not follow symlinks.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn apply<R: Read>(entry: &mut tar::Entry<R>, diff_id: &Digest, root: &Path) -> Result<(), UnpackError> {
    let raw = entry.path().map_err(|source| UnpackError::Corrupt { diff_id: diff_id.clone(), source })?.into_owned();
    let name = raw.display().to_string();
    let hostile = |reason| UnpackError::Hostile { diff_id: diff_id.clone(), entry: name.clone(), reason };
    let io_err = |source| UnpackError::Io { diff_id: diff_id.clone(), entry: name.clone(), source };
    let rel = clean_path(&raw).map_err(hostile)?;
    if rel.as_os_str().is_empty() {
        return Ok(()); // the root itself
    }
    safe_parent(root, &rel).map_err(hostile)?;
    let path = root.join(&rel);
    let file_name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    // Whiteouts become overlayfs's own markers.
    if file_name == OPAQUE_WHITEOUT {
        let dir = path.parent().unwrap_or(root);
        return set_opaque(dir).map_err(io_err);
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(hostile("is a malformed whiteout"));
        }
        let target = path.with_file_name(hidden);
        let _ = fs::remove_dir_all(&target);
        let _ = fs::remove_file(&target);
        return mknod(&target, libc::S_IFCHR, 0).map_err(io_err);
    }

    // Extended attributes ride in PAX records as SCHILY.xattr.<name>; only the ones an
    // image may set (see `allowed_xattr`) are kept, the rest said and dropped.
    let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Ok(Some(records)) = entry.pax_extensions() {
        for record in records.flatten() {
            let Ok(key) = record.key() else { continue };
            if key.starts_with("GNU.sparse.") {
                // PAX sparse files (GNU tar's --sparse with --format=pax): the tar reader
                // would write their map as data. Refused rather than unpacked wrong.
                return Err(hostile("is a PAX-format sparse file, which Berth does not unpack"));
            }
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if allowed_xattr(name) {
                    xattrs.push((name.to_owned(), record.value_bytes().to_vec()));
                } else {
                    tracing::info!(%diff_id, entry = %name, xattr = %name, "dropped an extended attribute an image may not set");
                }
            }
        }
    }
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let mtime = header.mtime().unwrap_or(0);
    let kind = header.entry_type();
    // A later entry replaces an earlier one, but never merges into a directory by type change.
    if !kind.is_dir() {
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if meta.is_dir() {
                fs::remove_dir_all(&path).map_err(io_err)?;
            } else {
                fs::remove_file(&path).map_err(io_err)?;
            }
        }
    }
    match kind {
        tar::EntryType::Directory => match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                fs::remove_file(&path).map_err(io_err)?;
                fs::create_dir(&path).map_err(io_err)?;
            }
            Err(_) => fs::create_dir(&path).map_err(io_err)?,
        },
        // GNU sparse files: the tar reader gives their data with the holes filled in.
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let mut out = fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(io_err)?;
            io::copy(entry, &mut out).map_err(io_err)?;
        }
        tar::EntryType::Symlink => {
            let target = entry.link_name().map_err(io_err)?.ok_or_else(|| hostile("is a symlink without a target"))?;
            symlink(&*target, &path).map_err(io_err)?;
        }
        tar::EntryType::Link => {
            let target = entry.link_name().map_err(io_err)?.ok_or_else(|| hostile("is a hard link without a target"))?;
            let target_rel = clean_path(&target).map_err(|_| hostile("hard-links outside the layer"))?;
            safe_parent(root, &target_rel).map_err(hostile)?;
            let source = root.join(&target_rel);
            match fs::symlink_metadata(&source) {
                Ok(meta) if meta.file_type().is_symlink() || meta.is_file() => {}
                _ => return Err(hostile("hard-links to something that is not a file of this layer")),
            }
            fs::hard_link(&source, &path).map_err(io_err)?;
            return Ok(());
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let kind_bits = match kind {
                tar::EntryType::Char => libc::S_IFCHR,
                tar::EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            mknod(&path, kind_bits | (mode & 0o777), libc::makedev(major, minor)).map_err(io_err)?;
        }
        // PAX / GNU long-name headers are consumed by the tar reader; others carry nothing to write.
        _ => return Ok(()),
    }
    // Ownership as the layer says (root-owned engines only), then the mode: chown
    // clears setuid and setgid, so the other order would strip `su`, `ping` and
    // `passwd` of theirs. Extended attributes last (chown drops security.capability).
    if let Err(err) = lchown(&path, uid, gid) {
        if err.raw_os_error() != Some(libc::EPERM) {
            return Err(io_err(err));
        }
    }
    if matches!(kind, tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse) {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err)?;
    }
    for (name, value) in &xattrs {
        // Where the filesystem or our privileges do not allow one, it is skipped: an
        // image must still run without, say, a security.capability the VM cannot set.
        if let Err(err) = set_xattr(&path, name, value) {
            tracing::debug!(entry = %name, error = %err, "xattr not applied");
        }
    }
    if kind != tar::EntryType::Symlink {
        let time = filetime_of(mtime);
        let _ = set_times(&path, time);
    }
    Ok(())
}

/// The extended attributes a layer may carry: `user.*`, file capabilities
/// (`security.capability`, which `ping` needs) and POSIX ACLs. Not `trusted.*` (overlayfs
/// keeps its own metadata there: an opaque or redirect marker from an image would
/// change what the layers below show) nor other `security.*` labels (SELinux, IMA/EVM,
/// AppArmor), which are the host's to set.
fn allowed_xattr(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability" || name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let n = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: valid NUL-terminated strings and a value buffer of the given length.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn filetime_of(secs: u64) -> libc::timespec {
    libc::timespec { tv_sec: secs.try_into().unwrap_or(0), tv_nsec: 0 }
}

fn set_times(path: &Path, time: libc::timespec) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let times = [time, time];
    // SAFETY: valid path and a two-element timespec array, as utimensat requires.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unpacks a plain `layer` into `<tmp>/berth-unpack-<name>-<pid>/root`; returns the
    /// folder (the caller removes it) and the outcome.
    fn unpack_in(name: &str, layer: &[u8]) -> (PathBuf, Result<(), UnpackError>) {
        let dir = std::env::temp_dir().join(format!("berth-unpack-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).expect("mkdir");
        fs::write(dir.join("layer.tar"), layer).expect("write layer");
        let diff_id = Digest::from_hash(&sha2::Sha256::digest(layer));
        let outcome = unpack(fs::File::open(dir.join("layer.tar")).expect("open"), Compression::None, &diff_id, &dir.join("root"));
        (dir, outcome)
    }

    /// A gzip layer whose 8 MiB of zeros compress to a few KiB: refused past a 1 MiB
    /// budget with the reason, unpacked within 16 MiB.
    #[test]
    fn a_decompression_bomb_is_refused_by_the_budget() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(8 << 20);
        header.set_mode(0o644);
        builder.append_data(&mut header, "zeros", io::repeat(0).take(8 << 20)).expect("append");
        let layer = builder.into_inner().expect("tar");
        let diff_id = Digest::from_hash(&sha2::Sha256::digest(&layer));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut gz, &layer).expect("gzip");
        let compressed = gz.finish().expect("gzip");
        assert!(compressed.len() < 64 << 10, "{}", compressed.len());
        let dir = std::env::temp_dir().join(format!("berth-unpack-bomb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).expect("mkdir");
        fs::write(dir.join("layer.tar.gz"), &compressed).expect("write");
        let open = || fs::File::open(dir.join("layer.tar.gz")).expect("open");
        let err = unpack_within(open(), Compression::Gzip, &diff_id, &dir.join("root"), 1 << 20, "a test's".into()).expect_err("over budget");
        assert!(matches!(err, UnpackError::OverBudget { budget: 1048576, .. }) && err.to_string().contains("a test's"), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        fs::remove_dir_all(dir.join("root")).expect("clean");
        fs::create_dir_all(dir.join("root")).expect("mkdir");
        unpack_within(open(), Compression::Gzip, &diff_id, &dir.join("root"), 16 << 20, "a test's".into()).expect("within budget");
        assert_eq!(fs::metadata(dir.join("root/zeros")).expect("stat").len(), 8 << 20);
        // A small store (a VM without a data disk) keeps most of its space usable.
        assert_eq!(reserve_of(240 << 20), 30 << 20);
        assert_eq!(reserve_of(100 << 30), DISK_RESERVE);
        // The default budget is the store's free space less the reserve.
        let (budget, why) = budget_for(&dir);
        assert!(budget > 0 && why.contains("free space"), "{budget} {why}");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path(Path::new("./a/b")), Ok(PathBuf::from("a/b")));
        assert_eq!(clean_path(Path::new("/etc/passwd")), Ok(PathBuf::from("etc/passwd")));
        assert!(clean_path(Path::new("a/../../b")).is_err());
    }

    /// A root-owned setuid binary keeps its bit (chown, which clears it, comes first),
    /// and a setgid directory its own.
    #[test]
    fn setuid_and_setgid_bits_survive_unpacking() {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, mode, kind) in [
            ("bin/", 0o755, tar::EntryType::Directory),
            ("bin/su", 0o4755, tar::EntryType::Regular),
            ("bin/wall", 0o2755, tar::EntryType::Regular),
            ("shared/", 0o2775, tar::EntryType::Directory),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(if kind.is_dir() { 0 } else { 3 });
            let data: &[u8] = if kind.is_dir() { b"" } else { b"elf" };
            builder.append_data(&mut header, path, data).expect("append");
        }
        let layer = builder.into_inner().expect("tar");
        let (dir, unpacked) = unpack_in("setuid", &layer);
        unpacked.expect("unpack");
        let mode = |p: &str| fs::metadata(dir.join("root").join(p)).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode("bin/su"), 0o4755);
        assert_eq!(mode("bin/wall"), 0o2755);
        assert_eq!(mode("shared"), 0o2775);
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn only_the_extended_attributes_an_image_may_set_are_applied() {
        for ok in ["user.note", "security.capability", "system.posix_acl_access"] {
            assert!(allowed_xattr(ok), "{ok}");
        }
        for refused in ["trusted.overlay.opaque", "trusted.overlay.redirect", "security.selinux", "security.ima", "system.nfs4_acl"] {
            assert!(!allowed_xattr(refused), "{refused}");
        }
        // A layer that marks a folder opaque by xattr: dropped (a whiteout file is the
        // layer format's way), the folder unpacked plainly.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder.append_pax_extensions([("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]), ("SCHILY.xattr.user.kept", &b"1"[..])]).expect("pax");
        builder.append_data(&mut header, "etc/", &b""[..]).expect("append");
        let layer = builder.into_inner().expect("tar");
        let (dir, unpacked) = unpack_in("xattr", &layer);
        unpacked.expect("unpack");
        let get = |name: &str| {
            let path = CString::new(dir.join("root/etc").as_os_str().as_bytes()).expect("path");
            let name = CString::new(name).expect("name");
            let mut buf = [0u8; 16];
            // SAFETY: valid NUL-terminated strings and a buffer of the length given.
            unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
        };
        assert!(get("trusted.overlay.opaque") < 0, "an image's trusted.overlay.opaque was applied");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A PAX sparse file is refused by name instead of being written wrong (GNU sparse
    /// entries, which the tar reader expands, are unpacked as regular files).
    #[test]
    fn pax_sparse_files_are_refused_by_name() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(3);
        builder.append_pax_extensions([("GNU.sparse.major", &b"1"[..]), ("GNU.sparse.minor", &b"0"[..])]).expect("pax");
        builder.append_data(&mut header, "data.bin", &b"abc"[..]).expect("append");
        let layer = builder.into_inner().expect("tar");
        let (dir, unpacked) = unpack_in("sparse", &layer);
        let err = unpacked.expect_err("refused");
        assert!(err.to_string().contains("PAX-format sparse file"), "{err}");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
