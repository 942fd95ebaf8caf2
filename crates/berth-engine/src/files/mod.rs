//! Files the engine handles on behalf of containers and volumes alike: mount points
//! (is one there, unmount it), paths opened or resolved inside a root with
//! `openat2(RESOLVE_IN_ROOT)` (an image's symlink never leads to a host file), tree
//! copies that keep owners and setuid bits, and `helper`, the chrooted copy helper that
//! `cp`, `export` and volume export and import run in.

pub mod helper;

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A file operation that failed, and what it was.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what}")]
pub struct FsError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FsError {
    let what = what.into();
    move |source| FsError { what, source }
}

fn cstring(path: &Path) -> Result<CString, FsError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| FsError { what: format!("use path {}", path.display()), source: std::io::ErrorKind::InvalidInput.into() })
}

/// Whether something is mounted exactly at `path`.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let wanted = path.to_string_lossy();
    info.lines().any(|line| line.split(' ').nth(4).is_some_and(|mp| unescape_mountinfo(mp) == wanted))
}

/// The mount points at or under `dir`, deepest first (so each can be unmounted in turn).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut found: Vec<PathBuf> =
        info.lines().filter_map(|line| line.split(' ').nth(4)).map(|mp| PathBuf::from(unescape_mountinfo(mp))).filter(|mp| mp.starts_with(dir)).collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

fn unescape_mountinfo(field: &str) -> String {
    field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// Unmounts `path` if mounted (lazily if busy).
pub fn unmount(path: &Path) -> Result<(), FsError> {
    if !is_mounted(path) {
        return Ok(());
    }
    let target = cstring(path)?;
    // SAFETY: target is a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // SAFETY: as above; MNT_DETACH finishes once the last user lets go.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(FsError { what: format!("unmount {}", path.display()), source: std::io::Error::last_os_error() })
}

/// Opens `path` as if `root` were `/`: `..` and symlinks stay inside.
pub fn open_in_root(root: &Path, path: &str) -> std::io::Result<std::fs::File> {
    open_with(root, path, libc::O_RDONLY | libc::O_CLOEXEC)
}

pub fn open_with(root: &Path, path: &str, flags: libc::c_int) -> std::io::Result<std::fs::File> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: root_c is a valid path; the fd is checked before use.
    let dirfd = unsafe { libc::open(root_c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if dirfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: dirfd is a fresh descriptor we own.
    let dir = unsafe { OwnedFd::from_raw_fd(dirfd) };
    let rel = match path.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    };
    let rel = CString::new(rel).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: open_how is plain data; all-zero is its "nothing requested" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 with a valid dirfd, NUL-terminated path and a correctly sized open_how.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), rel.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a fresh descriptor we now own.
    Ok(unsafe { std::fs::File::from_raw_fd(fd as i32) })
}

/// The host path `path` names inside `root` (symlinks resolved as if `root` were `/`).
pub fn resolve_in_root(root: &Path, path: &str) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let file = open_with(root, path, libc::O_PATH | libc::O_CLOEXEC)?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    if !real.starts_with(root) {
        return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "path resolves outside the container"));
    }
    Ok(real)
}

/// Copies a directory tree (files, directories, symlinks as links; modes and owners
/// kept) into `to`, which exists. Used to fill a new volume from the image.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), FsError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    let top = std::fs::symlink_metadata(from).map_err(io(format!("stat {}", from.display())))?;
    // Owner before mode throughout: chown clears setuid and setgid.
    std::os::unix::fs::lchown(to, Some(top.uid()), Some(top.gid())).map_err(io("set a volume's owner"))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(top.mode() & 0o7777)).map_err(io("set a volume's mode"))?;
    while let Some((src, dst)) = stack.pop() {
        for entry in std::fs::read_dir(&src).map_err(io(format!("read {}", src.display())))?.flatten() {
            let path = entry.path();
            let target = dst.join(entry.file_name());
            let meta = std::fs::symlink_metadata(&path).map_err(io(format!("stat {}", path.display())))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let link = std::fs::read_link(&path).map_err(io(format!("read link {}", path.display())))?;
                std::os::unix::fs::symlink(&link, &target).map_err(io(format!("create link {}", target.display())))?;
            } else if kind.is_dir() {
                std::fs::create_dir(&target).map_err(io(format!("create {}", target.display())))?;
                stack.push((path, target.clone()));
            } else if kind.is_file() {
                std::fs::copy(&path, &target).map_err(io(format!("copy {}", path.display())))?;
            } else {
                // Devices, fifos and sockets are not copied into volumes.
                continue;
            }
            std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid())).map_err(io(format!("chown {}", target.display())))?;
            if !kind.is_symlink() {
                // set_permissions follows links; a link has no mode of its own anyway.
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io("set a mode"))?;
            }
        }
    }
    Ok(())
}
