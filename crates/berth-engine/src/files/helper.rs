//! The copy helper behind `cp`, `export` and volume export and import: a path's facts,
//! a path out as a tar, a tar in. Each runs in the engine's own
//! binary in a hidden mode (`--in-container-root`, one child process per request) that
//! sees the container as docker's `cp` does: its root filesystem with its volumes and
//! binds mounted at their targets (in a private mount namespace that dies with the
//! child, so nothing can leak into the engine's), then chroots there. Every path, of the
//! request, the archive or the container, is resolved inside that root, so a symlink
//! swapped in mid-copy still cannot lead to a host file (the CVE-2018-15664 class).

use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::resolve_in_root;

/// The hidden mode's flag: `<engine> --in-container-root JOB-JSON`.
pub const HELPER_FLAG: &str = "--in-container-root";

/// What the helper does, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The directory to chroot into.
    pub root: PathBuf,
    /// Host directories (or files) mounted at targets inside `root` first.
    pub binds: Vec<Bind>,
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// The path's facts as JSON on stdout.
    Stat { path: String },
    /// The path as a tar into `out` (opened before the chroot); its facts on stdout.
    Archive { path: String, out: PathBuf },
    /// The tar on stdin unpacked at `dest`: into it when it is a directory, else as
    /// that name in its (existing) parent. Owners as the archive says, or all `owner`
    /// (uid, gid) when given (docker's `cp -a` into a container with a user).
    Extract { dest: String, owner: Option<(u32, u32)> },
}

/// Exit codes of the helper that carry a kind; anything else is internal.
pub const EXIT_NO_PATH: i32 = 3;
pub const EXIT_CONFLICT: i32 = 4;
pub const EXIT_INVALID: i32 = 5;

/// A failure inside the helper: its exit code and what it says on stderr.
#[derive(Debug)]
pub struct HelperError {
    pub code: i32,
    pub message: String,
}

impl HelperError {
    fn new(code: i32, message: impl Into<String>) -> HelperError {
        HelperError { code, message: message.into() }
    }
    fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> HelperError {
        let what = what.to_string();
        move |e| HelperError::new(1, format!("{what}: {e}"))
    }
}

/// A path's facts inside a container, as docker's `X-Docker-Container-Path-Stat` gives
/// them (`mode` in Go's `os.FileMode` bits, which the docker CLI decodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

/// Go's `os.FileMode` for a file's metadata.
fn go_file_mode(meta: &std::fs::Metadata) -> u32 {
    let mode = meta.mode();
    let kind = meta.file_type();
    let mut out = mode & 0o777;
    if kind.is_dir() {
        out |= 1 << 31;
    } else if kind.is_symlink() {
        out |= 1 << 27;
    } else if kind.is_fifo() {
        out |= 1 << 25;
    } else if kind.is_socket() {
        out |= 1 << 24;
    } else if kind.is_char_device() {
        out |= (1 << 26) | (1 << 21);
    } else if kind.is_block_device() {
        out |= 1 << 26;
    }
    if mode & 0o4000 != 0 {
        out |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        out |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        out |= 1 << 20;
    }
    out
}

/// The helper's entry point (single-threaded, before any runtime starts). Returns the
/// process's exit code.
pub fn helper_main(job_json: &str) -> i32 {
    let job: Job = match serde_json::from_str(job_json) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("bad job: {e}");
            return 2;
        }
    };
    match run_job(job) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", e.message);
            e.code
        }
    }
}

fn run_job(job: Job) -> Result<(), HelperError> {
    // Files named by the engine are opened before the chroot hides them.
    let out = match &job.op {
        Op::Archive { out, .. } => Some(std::fs::File::create(out).map_err(HelperError::io(format!("create {}", out.display())))?),
        _ => None,
    };
    if !job.binds.is_empty() {
        private_mount_namespace()?;
        let mut binds = job.binds.clone();
        // Outer targets first, so a nested one lands on top.
        binds.sort_by_key(|b| Path::new(&b.target).components().count());
        for bind in &binds {
            mount_bind(&job.root, bind)?;
        }
    }
    chroot(&job.root)?;
    match job.op {
        Op::Stat { path } => {
            let stat = stat(&path)?;
            println!("{}", serde_json::to_string(&stat).unwrap_or_default());
            Ok(())
        }
        Op::Archive { path, .. } => {
            let stat = stat(&path)?;
            write_tar(&path, out.expect("opened above"))?;
            println!("{}", serde_json::to_string(&stat).unwrap_or_default());
            Ok(())
        }
        Op::Extract { dest, owner } => extract(&dest, owner, std::io::stdin().lock()),
    }
}

fn cstring(path: &Path) -> Result<std::ffi::CString, HelperError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| HelperError::new(EXIT_INVALID, format!("bad path {}", path.display())))
}

fn private_mount_namespace() -> Result<(), HelperError> {
    // SAFETY: plain syscalls with constant arguments; this process is single-threaded
    // and nothing else shares its mount namespace after the unshare.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(HelperError::io("unshare the mount namespace")(std::io::Error::last_os_error()));
        }
        if libc::mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
            return Err(HelperError::io("make the mounts private")(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Mounts `bind.source` at its target inside `root`, the target resolved inside the
/// root (made when missing, as the runtime makes it at start). A source that is gone
/// is skipped: there is nothing to copy to or from.
fn mount_bind(root: &Path, bind: &Bind) -> Result<(), HelperError> {
    let Ok(source_meta) = std::fs::metadata(&bind.source) else { return Ok(()) };
    let target = match resolve_in_root(root, &bind.target) {
        Ok(real) => real,
        Err(_) => {
            make_in_root(root, &bind.target, source_meta.is_dir())?;
            resolve_in_root(root, &bind.target).map_err(HelperError::io(format!("resolve {}", bind.target)))?
        }
    };
    let (source_c, target_c) = (cstring(&bind.source)?, cstring(&target)?);
    // SAFETY: valid NUL-terminated paths; the mount lives in this process's private
    // namespace only.
    unsafe {
        if libc::mount(source_c.as_ptr(), target_c.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
            return Err(HelperError::io(format!("mount {} at {}", bind.source.display(), bind.target))(std::io::Error::last_os_error()));
        }
        if bind.read_only {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            if libc::mount(std::ptr::null(), target_c.as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
                return Err(HelperError::io(format!("make {} read-only", bind.target))(std::io::Error::last_os_error()));
            }
        }
    }
    Ok(())
}

/// Makes `path` inside `root` (its missing parents as directories), each step
/// resolved inside the root.
fn make_in_root(root: &Path, path: &str, dir: bool) -> Result<(), HelperError> {
    let mut done = PathBuf::from("/");
    let parts: Vec<Component> = Path::new(path).components().filter(|c| matches!(c, Component::Normal(_))).collect();
    for (i, part) in parts.iter().enumerate() {
        let next = done.join(part);
        if resolve_in_root(root, &next.to_string_lossy()).is_err() {
            let parent = resolve_in_root(root, &done.to_string_lossy()).map_err(HelperError::io(format!("resolve {}", done.display())))?;
            let here = parent.join(part);
            let last = i + 1 == parts.len();
            let made = if last && !dir { std::fs::OpenOptions::new().write(true).create_new(true).open(&here).map(|_| ()) } else { std::fs::create_dir(&here) };
            made.map_err(HelperError::io(format!("create {} in the container", next.display())))?;
        }
        done = next;
    }
    Ok(())
}

fn chroot(root: &Path) -> Result<(), HelperError> {
    let root_c = cstring(root)?;
    // SAFETY: chroot and chdir take valid NUL-terminated paths; this process is a
    // single-threaded helper that does nothing else.
    unsafe {
        if libc::chroot(root_c.as_ptr()) != 0 {
            return Err(HelperError::io(format!("chroot {}", root.display()))(std::io::Error::last_os_error()));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(HelperError::io("chdir /")(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// `path`'s facts (in the chroot): the parent is followed, the last part looked at as
/// it is (a symlink is described, not followed), as docker does.
fn stat(path: &str) -> Result<PathStat, HelperError> {
    let no_path = || HelperError::new(EXIT_NO_PATH, format!("no such path {path}"));
    let trimmed = path.trim_end_matches('/');
    let (real, name) = match Path::new(trimmed).file_name() {
        Some(name) => {
            let parent = Path::new(trimmed).parent().unwrap_or(Path::new("/"));
            let parent = std::fs::canonicalize(if parent.as_os_str().is_empty() { Path::new("/") } else { parent }).map_err(|_| no_path())?;
            (parent.join(name), name.to_string_lossy().into_owned())
        }
        None => (PathBuf::from("/"), "/".to_owned()),
    };
    // "dir/" must be a directory: follow it.
    let meta = if path.ends_with('/') { std::fs::metadata(&real) } else { std::fs::symlink_metadata(&real) }.map_err(|_| no_path())?;
    let link_target =
        if meta.file_type().is_symlink() { std::fs::read_link(&real).map(|t| t.display().to_string()).unwrap_or_default() } else { String::new() };
    let mtime = meta.modified().ok().map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()).unwrap_or_default();
    Ok(PathStat { name, size: meta.len(), mode: go_file_mode(&meta), mtime, link_target })
}

/// Tars `path` (in the chroot; symlinks on the way followed, stored when inside).
fn write_tar(path: &str, out: std::fs::File) -> Result<(), HelperError> {
    let real = std::fs::canonicalize(path).map_err(|_| HelperError::new(EXIT_NO_PATH, format!("no such path {path}")))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(out));
    builder.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(&real).map_err(HelperError::io(format!("stat {path}")))?;
    let name = Path::new(path.trim_end_matches('/')).file_name().map(|n| n.to_owned());
    let io = HelperError::io(format!("archive {path}"));
    let written = match (meta.is_dir(), name) {
        // The whole root: its contents at the top of the archive.
        (true, None) => append_tree(&mut builder, &real, Path::new(".")),
        (true, Some(name)) => append_tree(&mut builder, &real, Path::new(&name)),
        (false, Some(name)) => builder.append_path_with_name(&real, name),
        (false, None) => return Err(HelperError::new(EXIT_INVALID, format!("cannot archive {path}"))),
    };
    written.and_then(|()| builder.into_inner().map(|_| ())).map_err(io)
}

/// Appends the tree at `path` as `name`, in name order, symlinks stored. What vanishes
/// mid-walk (a running container's files change) is left out, as docker leaves it,
/// rather than failing the whole archive. Run in the chroot: whatever a swapped symlink
/// points at is inside it.
fn append_tree<W: std::io::Write>(builder: &mut tar::Builder<W>, path: &Path, name: &Path) -> std::io::Result<()> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if gone(&e) => return Ok(()),
        other => other?,
    };
    if !meta.is_dir() {
        return match builder.append_path_with_name(path, name) {
            Err(e) if gone(&e) => Ok(()),
            other => other,
        };
    }
    let mut children: Vec<std::ffi::OsString> = match std::fs::read_dir(path) {
        Err(e) if gone(&e) => return Ok(()),
        other => other?.filter_map(|entry| entry.ok().map(|e| e.file_name())).collect(),
    };
    children.sort();
    match builder.append_dir(name, path) {
        Err(e) if gone(&e) => return Ok(()),
        other => other?,
    }
    for child in children {
        append_tree(builder, &path.join(&child), &name.join(&child))?;
    }
    Ok(())
}

/// An archive entry's name as a relative path: `/www/x` is `www/x` under the
/// destination, as docker reads it (testcontainers writes such names); `..` is refused.
fn entry_relative(path: &Path, rename: Option<&str>) -> Result<PathBuf, HelperError> {
    let mut parts: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::Normal(_) => parts.push(part),
            Component::CurDir | Component::RootDir => {}
            _ => return Err(HelperError::new(EXIT_INVALID, format!("refusing archive entry {}", path.display()))),
        }
    }
    let relative: PathBuf = parts.iter().collect();
    match rename {
        Some(name) if !relative.as_os_str().is_empty() => {
            let rest: PathBuf = parts.iter().skip(1).collect();
            Ok(if rest.as_os_str().is_empty() { PathBuf::from(name) } else { Path::new(name).join(rest) })
        }
        _ => Ok(relative),
    }
}

/// Unpacks the tar on `input` at `dest` (in the chroot).
fn extract(dest: &str, owner: Option<(u32, u32)>, input: impl std::io::Read) -> Result<(), HelperError> {
    let no_path = || HelperError::new(EXIT_NO_PATH, format!("no such directory {dest}"));
    let (into, rename) = match std::fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => (PathBuf::from(dest), None),
        Ok(_) => return Err(HelperError::new(EXIT_CONFLICT, format!("{dest} exists and is not a directory"))),
        // "dir/" must name an existing directory (docker's rule).
        Err(_) if dest.ends_with('/') => return Err(no_path()),
        Err(_) => {
            let path = Path::new(dest);
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(no_path)?;
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => (parent.to_path_buf(), Some(file)),
                _ => return Err(no_path()),
            }
        }
    };
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    let bad = |e: std::io::Error| HelperError::new(EXIT_INVALID, format!("read the archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let relative = entry_relative(&path, rename.as_deref())?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(HelperError::io(format!("create {}", parent.display())))?;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            // A hard link names another entry of the same archive: under the
            // destination too, renamed the same way.
            let link = entry.link_name().map_err(bad)?.ok_or_else(|| HelperError::new(EXIT_INVALID, format!("hard link {} has no target", path.display())))?;
            let source = into.join(entry_relative(&link, rename.as_deref())?);
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(&source, &target).map_err(HelperError::io(format!("link {}", target.display())))?;
            continue;
        }
        entry.unpack(&target).map_err(HelperError::io(format!("write {}", target.display())))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(HelperError::io(format!("chown {}", target.display())))?;
            // chown cleared setuid and setgid: the archive's mode again.
            if entry.header().entry_type() != tar::EntryType::Symlink {
                let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
                std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(HelperError::io(format!("chmod {}", target.display())))?;
            }
        }
    }
    Ok(())
}

/// The helper run from the engine: `job` as its argument, `input` on its stdin; its
/// stdout back, or its failure with a kind.
pub async fn run_helper(job: &Job, input: Option<&Path>) -> Result<Vec<u8>, HelperError> {
    let exe = std::env::current_exe().map_err(HelperError::io("find the engine's binary"))?;
    let stdin = match input {
        Some(path) => std::process::Stdio::from(std::fs::File::open(path).map_err(HelperError::io("open the archive"))?),
        None => std::process::Stdio::null(),
    };
    let output = tokio::process::Command::new(exe)
        .arg(HELPER_FLAG)
        .arg(serde_json::to_string(job).unwrap_or_default())
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .map_err(HelperError::io("run the copy helper"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let mut message = String::new();
    let _ = (&output.stderr[..]).take(64 << 10).read_to_string(&mut message);
    Err(HelperError { code: output.status.code().unwrap_or(1), message: message.trim().to_owned() })
}

/// Unpacks the tar at `archive` into a plain directory (a volume's data), chrooted
/// there, ownership kept.
pub async fn extract_into_dir(dir: &Path, archive: &Path) -> Result<(), HelperError> {
    let job = Job { root: dir.to_path_buf(), binds: Vec::new(), op: Op::Extract { dest: "/".to_owned(), owner: None } };
    run_helper(&job, Some(archive)).await.map(|_| ())
}

/// Tars the whole of `dir` into `out`, walked by the chrooted helper: a container that
/// swaps a folder for a symlink mid-walk (it may run with `dir` mounted) gets the link
/// stored, or followed only within `dir`, never to the host's files.
pub async fn archive_dir(dir: &Path, out: &Path) -> Result<(), HelperError> {
    let job = Job { root: dir.to_path_buf(), binds: Vec::new(), op: Op::Archive { path: "/".to_owned(), out: out.to_path_buf() } };
    run_helper(&job, None).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_stay_under_the_destination() {
        assert_eq!(entry_relative(Path::new("/www/index.html"), None).unwrap(), PathBuf::from("www/index.html"));
        assert_eq!(entry_relative(Path::new("./a/b"), Some("c")).unwrap(), PathBuf::from("c/b"));
        assert_eq!(entry_relative(Path::new("a"), Some("c")).unwrap(), PathBuf::from("c"));
        assert_eq!(entry_relative(Path::new("a/../../etc"), None).unwrap_err().code, EXIT_INVALID);
    }
}
