//! The host's operating-system seams, each in one place with a Linux, a macOS (any other
//! unix) and a Windows side: process liveness, stopping a process, the exclusive lock a
//! VM start and a session hold, private folders, starting a process in a group of its
//! own, and program names. (The data folder's place per OS is `home::default_root`.)

use std::path::Path;

/// Whether `pid` is a live process whose command line (Windows: image path) contains
/// `needle`, so a pid the system gave to something else is not taken for ours.
pub fn process_alive(pid: u32, needle: &str) -> bool {
    imp::process_alive(pid, needle)
}

/// How to stop a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ask it to end (SIGTERM; Windows has no such request for a process without a
    /// window, so it is ended there as `Force` is).
    Ask,
    /// End it now (SIGKILL; Windows: TerminateProcess).
    Force,
}

/// Stops process `pid` (nothing if it is gone).
pub fn stop_process(pid: u32, how: Stop) {
    imp::stop_process(pid, how)
}

/// An exclusive lock on a file, released on drop (the VM's start, and the session's
/// whole life). Held by the process: a crashed holder leaves no lock behind.
#[derive(Debug)]
pub struct FileLock {
    file: std::fs::File,
}

impl FileLock {
    /// Takes the lock, or fails at once when another process holds it.
    pub fn acquire(path: &Path, held_by_another: &str) -> std::io::Result<FileLock> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        match imp::try_lock(&file) {
            Ok(()) => Ok(FileLock { file }),
            Err(err) => Err(std::io::Error::new(err.kind(), format!("{held_by_another} ({err})"))),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        imp::unlock(&self.file);
    }
}

/// Makes `dir` the user's alone (0700). On Windows a folder under the user's profile
/// (`%LOCALAPPDATA%`) is already: its ACL gives only the user, SYSTEM and
/// Administrators access, so nothing is changed there.
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    imp::make_private(dir)
}

/// Options that create a file only the user can read (0600; on Windows, as for
/// folders, the profile's ACL).
pub fn private_file() -> std::fs::OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes `file` sparse, so the space it has not written takes none on disk. Linux's and
/// macOS's file systems make a file grown with `set_len` sparse by themselves; NTFS
/// allocates the whole length unless the file is marked (`FSCTL_SET_SPARSE`) first.
pub fn make_sparse(file: &std::fs::File) -> std::io::Result<()> {
    imp::make_sparse(file)
}

/// Starts `command` in a process group of its own, so a Ctrl-C meant for the caller
/// does not reach it (QEMU, virtiofsd, the session).
pub fn own_process_group(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
    imp::own_process_group(command)
}

/// The file name of program `name` on this OS (`qemu-system-x86_64.exe` on Windows).
pub fn program_file_name(name: &str) -> String {
    if cfg!(windows) && !name.ends_with(".exe") {
        format!("{name}.exe")
    } else {
        name.to_owned()
    }
}

#[cfg(unix)]
mod imp {
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use super::Stop;

    #[cfg(target_os = "linux")]
    pub fn process_alive(pid: u32, needle: &str) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // The state is the first field after the parenthesised command name.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(state, Some("Z") | Some("X") | None) {
            return false;
        }
        std::fs::read(format!("/proc/{pid}/cmdline")).map(|cmd| String::from_utf8_lossy(&cmd).contains(needle)).unwrap_or(false)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn process_alive(pid: u32, needle: &str) -> bool {
        process_alive_by_ps(pid, needle)
    }

    /// Without /proc (macOS): `kill(pid, 0)` says whether the pid exists, `ps` what it
    /// runs and whether it is a zombie. (Built on Linux too, so its test runs here.)
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub fn process_alive_by_ps(pid: u32, needle: &str) -> bool {
        let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 only checks the pid; nothing is sent.
        let exists = unsafe { libc::kill(raw, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !exists {
            return false;
        }
        let Ok(out) = std::process::Command::new("ps").args(["-o", "stat=", "-o", "command=", "-p", &pid.to_string()]).output() else {
            return false;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.trim();
        !line.is_empty() && !line.starts_with('Z') && line.contains(needle)
    }

    pub fn stop_process(pid: u32, how: Stop) {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return };
        if pid <= 0 {
            return;
        }
        let signal = match how {
            Stop::Ask => libc::SIGTERM,
            Stop::Force => libc::SIGKILL,
        };
        // SAFETY: kill(2) with a positive pid and a valid signal.
        unsafe { libc::kill(pid, signal) };
    }

    pub fn try_lock(file: &std::fs::File) -> std::io::Result<()> {
        // SAFETY: flock on a valid, owned file descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    pub fn unlock(file: &std::fs::File) {
        // SAFETY: unlocking our own valid descriptor.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }

    pub fn make_private(dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }

    pub fn own_process_group(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
        command.process_group(0)
    }

    pub fn make_sparse(_file: &std::fs::File) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(windows)]
mod imp {
    use std::os::windows::io::AsRawHandle;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, STILL_ACTIVE};
    use windows_sys::Win32::Storage::FileSystem::{LockFileEx, UnlockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY};
    use windows_sys::Win32::System::Ioctl::FSCTL_SET_SPARSE;
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, QueryFullProcessImageNameW, TerminateProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE,
    };
    use windows_sys::Win32::System::IO::{DeviceIoControl, OVERLAPPED};

    use super::Stop;

    /// A process handle, closed on drop.
    struct Process(HANDLE);

    impl Process {
        fn open(pid: u32, access: u32) -> Option<Process> {
            // SAFETY: OpenProcess takes plain values; a null handle is a failure.
            let handle = unsafe { OpenProcess(access, 0, pid) };
            (!handle.is_null()).then_some(Process(handle))
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            // SAFETY: a handle this value owns.
            unsafe { CloseHandle(self.0) };
        }
    }

    pub fn process_alive(pid: u32, needle: &str) -> bool {
        let Some(process) = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION) else { return false };
        let mut code = 0u32;
        // SAFETY: a valid process handle and a place for the code.
        if unsafe { GetExitCodeProcess(process.0, &mut code) } == 0 || code != STILL_ACTIVE as u32 {
            return false;
        }
        let mut name = vec![0u16; 1024];
        let mut len = name.len() as u32;
        // SAFETY: the buffer holds `len` UTF-16 units.
        if unsafe { QueryFullProcessImageNameW(process.0, PROCESS_NAME_WIN32, name.as_mut_ptr(), &mut len) } == 0 {
            return false;
        }
        String::from_utf16_lossy(&name[..len as usize]).contains(needle)
    }

    pub fn stop_process(pid: u32, _how: Stop) {
        if let Some(process) = Process::open(pid, PROCESS_TERMINATE) {
            // SAFETY: a valid handle opened with PROCESS_TERMINATE.
            unsafe { TerminateProcess(process.0, 1) };
        }
    }

    pub fn try_lock(file: &std::fs::File) -> std::io::Result<()> {
        // SAFETY: a zeroed OVERLAPPED is the whole file from offset 0.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        // SAFETY: a valid file handle and OVERLAPPED for the call.
        let ok =
            unsafe { LockFileEx(file.as_raw_handle() as HANDLE, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, u32::MAX, u32::MAX, &mut overlapped) };
        if ok != 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    pub fn unlock(file: &std::fs::File) {
        // SAFETY: as in try_lock.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        // SAFETY: unlocking the range this handle locked.
        unsafe { UnlockFileEx(file.as_raw_handle() as HANDLE, 0, u32::MAX, u32::MAX, &mut overlapped) };
    }

    pub fn make_private(_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    pub fn own_process_group(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
        // CREATE_NEW_PROCESS_GROUP: Ctrl-C in the caller's console does not reach it.
        command.creation_flags(0x0000_0200)
    }

    pub fn make_sparse(file: &std::fs::File) -> std::io::Result<()> {
        let mut returned = 0u32;
        // SAFETY: a valid file handle; FSCTL_SET_SPARSE takes no buffers (no input means
        // "set"), and the call is synchronous (no OVERLAPPED).
        let ok = unsafe {
            DeviceIoControl(file.as_raw_handle() as HANDLE, FSCTL_SET_SPARSE, std::ptr::null(), 0, std::ptr::null_mut(), 0, &mut returned, std::ptr::null_mut())
        };
        if ok != 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_missing_pid_or_another_program_is_not() {
        let me = std::process::id();
        let exe = std::env::current_exe().expect("exe");
        let name = exe.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        assert!(process_alive(me, &name));
        assert!(!process_alive(me, "qemu-system-that-is-not-this"));
        assert!(!process_alive(u32::MAX - 3, &name));
    }

    /// macOS's way (kill 0 and ps), checked here on Linux against the same answers.
    #[cfg(unix)]
    #[test]
    fn without_proc_ps_gives_the_same_answers() {
        let me = std::process::id();
        let exe = std::env::current_exe().expect("exe");
        let name = exe.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        assert!(imp::process_alive_by_ps(me, &name));
        assert!(!imp::process_alive_by_ps(me, "qemu-system-that-is-not-this"));
        assert!(!imp::process_alive_by_ps(u32::MAX - 3, &name));
        // A zombie (exited, not yet reaped) is not alive.
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!imp::process_alive_by_ps(pid, "true"));
        assert!(!process_alive(pid, "true"));
        child.wait().expect("reap");
    }

    #[test]
    fn a_lock_is_refused_while_held_and_free_after() {
        let path = std::env::temp_dir().join(format!("berth-os-lock-{}", std::process::id()));
        let held = FileLock::acquire(&path, "held").expect("first");
        // flock is per open file: a second open in this process is refused too.
        let err = FileLock::acquire(&path, "another Berth process holds it").expect_err("second");
        assert!(err.to_string().starts_with("another Berth process holds it"), "{err}");
        drop(held);
        drop(FileLock::acquire(&path, "held").expect("after release"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn program_names() {
        let expected = if cfg!(windows) { "qemu-system-x86_64.exe" } else { "qemu-system-x86_64" };
        assert_eq!(program_file_name("qemu-system-x86_64"), expected);
    }
}
