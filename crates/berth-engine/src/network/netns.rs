//! Network namespaces as files: a container's namespace is made by a short-lived
//! thread that unshares its network namespace and bind-mounts it onto a file, so it
//! exists before the runtime starts (crun joins it by path) and after the container
//! ends until the engine unmounts it. Netlink sockets opened inside a namespace stay
//! bound to it, which is how the engine configures a container's interfaces.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A netlink connection inside a container's namespace. Its socket holds the
/// namespace alive, so dropping it ends the connection's task and closes the socket.
#[derive(Debug)]
pub struct NsLink {
    handle: rtnetlink::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for NsLink {
    type Target = rtnetlink::Handle;

    fn deref(&self) -> &rtnetlink::Handle {
        &self.handle
    }
}

impl Drop for NsLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A netlink connection opened by this thread (in its network namespace), driven by
/// a task on `runtime`.
fn connect(runtime: &tokio::runtime::Handle) -> std::io::Result<NsLink> {
    let _entered = runtime.enter();
    let (connection, handle, _) = rtnetlink::new_connection()?;
    let task = runtime.spawn(connection);
    Ok(NsLink { handle, task })
}

fn cstring(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("path holds a NUL byte"))
}

/// Makes a new network namespace pinned at `path` and returns a netlink connection
/// inside it.
pub fn create(path: &Path) -> std::io::Result<NsLink> {
    std::fs::File::create(path)?;
    let target = cstring(path)?;
    let runtime = tokio::runtime::Handle::current();
    let made = std::thread::spawn(move || -> std::io::Result<NsLink> {
        // SAFETY: unshare affects only this thread, which ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: gettid takes no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let source = CString::new(format!("/proc/self/task/{tid}/ns/net")).map_err(std::io::Error::other)?;
        // SAFETY: both paths are valid C strings; a bind mount of an nsfs file.
        if unsafe { libc::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        connect(&runtime)
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?;
    match made {
        Ok(handle) => Ok(handle),
        Err(e) => {
            let _ = remove(path);
            Err(e)
        }
    }
}

/// A netlink connection inside the namespace pinned at `path`.
pub fn enter(path: &Path) -> std::io::Result<NsLink> {
    let ns = std::fs::File::open(path)?;
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || -> std::io::Result<NsLink> {
        // SAFETY: setns affects only this thread, which ends right after.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        connect(&runtime)
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// Unpins and deletes the namespace at `path` (its interfaces go with it once nothing
/// else holds it). Missing is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let target = cstring(path)?;
    // SAFETY: a valid C string; MNT_DETACH never blocks.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
