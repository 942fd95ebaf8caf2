//! The host's local endpoints (the session's gRPC and Docker API sockets, QEMU's QMP and
//! serial-mux sockets) behind one seam: a unix socket on Linux and macOS, a named pipe
//! on Windows. Callers name an endpoint by a path in the data folder either way; on
//! Windows the path maps to a pipe name (`pipe_name`), or is one already
//! (`\\.\pipe\berth_engine`).
//!
//! Both sides are private to the user: unix sockets are bound 0600 (`socket::bind_unix`);
//! pipes carry a security descriptor that grants the creating user (and SYSTEM) alone,
//! and refuse remote clients.

use std::io;
use std::path::Path;

use crate::socket::BindError;

/// Where Windows keeps named pipes, as a path.
pub const PIPE_PREFIX: &str = r"\\.\pipe\";

/// The pipe a path stands for on Windows. A pipe path (`\\.\pipe\NAME`, or `//./pipe/NAME`
/// as docker's `npipe://` URLs write it) is itself; any other path becomes
/// `\\.\pipe\berth-<hash of the path>-<file stem>`, so two data folders never share a pipe
/// and the name still says what it is. Defined on every host, so it is tested here.
pub fn pipe_name(path: &Path) -> String {
    let text = path.to_string_lossy().replace('/', "\\");
    if let Some(name) = text.strip_prefix(PIPE_PREFIX).filter(|n| !n.is_empty()) {
        return format!("{PIPE_PREFIX}{name}");
    }
    // Windows paths are case-insensitive: `C:\Users\A` and `c:\users\a` are one folder.
    let hash = fnv1a64(text.to_lowercase().as_bytes());
    // The file name's stem, read from the text so a Windows path reads the same here.
    let file = text.rsplit('\\').next().unwrap_or_default();
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(32).collect();
    format!("{PIPE_PREFIX}berth-{hash:016x}-{stem}")
}

/// The name QEMU's `pipe:` chardev takes for a path: the pipe name without its prefix
/// (QEMU adds `\\.\pipe\` itself on Windows).
pub fn qemu_pipe_name(path: &Path) -> String {
    pipe_name(path).trim_start_matches(PIPE_PREFIX).to_owned()
}

/// The `DOCKER_HOST` URL of the Docker API endpoint at `path`: `unix://PATH`, or on
/// Windows (`windows`) `npipe:////./pipe/NAME`, as the docker CLI and SDKs write it.
pub fn docker_host(path: &Path, windows: bool) -> String {
    if windows {
        format!("npipe://{}", pipe_name(path).replace('\\', "/"))
    } else {
        format!("unix://{}", path.display())
    }
}

/// FNV-1a: stable across builds and hosts (unlike std's hasher), which a pipe name must be.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
pub use windows::*;

#[cfg(unix)]
mod unix {
    use super::*;

    /// A connection on a local endpoint.
    pub type LocalStream = tokio::net::UnixStream;

    /// A bound local endpoint.
    #[derive(Debug)]
    pub struct LocalListener(tokio::net::UnixListener);

    impl LocalListener {
        pub async fn accept(&mut self) -> io::Result<LocalStream> {
            self.0.accept().await.map(|(stream, _)| stream)
        }
    }

    /// Binds `path` for the user alone; a live endpoint there is `BindError::InUse`.
    /// `message_mode` matters only for Windows pipes.
    pub async fn bind(path: &Path, _message_mode: bool) -> Result<LocalListener, BindError> {
        crate::socket::bind_unix(path).await.map(LocalListener)
    }

    pub async fn connect(path: &Path) -> io::Result<LocalStream> {
        tokio::net::UnixStream::connect(path).await
    }

    /// Removes what a bound endpoint leaves behind (a socket file; a pipe leaves nothing).
    pub fn remove(path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(windows)]
mod windows {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient, NamedPipeServer, PipeMode, ServerOptions};

    use super::*;

    /// A connection on a local endpoint: the server's or the client's end of a pipe.
    #[derive(Debug)]
    pub enum LocalStream {
        Server(NamedPipeServer),
        Client(NamedPipeClient),
    }

    /// A bound pipe: one instance waits for the next client at all times.
    #[derive(Debug)]
    pub struct LocalListener {
        name: String,
        message_mode: bool,
        next: NamedPipeServer,
    }

    impl LocalListener {
        pub async fn accept(&mut self) -> io::Result<LocalStream> {
            self.next.connect().await?;
            let fresh = create(&self.name, self.message_mode, false)?;
            Ok(LocalStream::Server(std::mem::replace(&mut self.next, fresh)))
        }
    }

    const ERROR_PIPE_BUSY: i32 = 231;

    /// Owner and SYSTEM, nobody else (SDDL; `P`: not inherited from anything).
    const OWNER_ONLY: &str = "D:P(A;;GA;;;OW)(A;;GA;;;SY)";

    fn create(name: &str, message_mode: bool, first: bool) -> io::Result<NamedPipeServer> {
        use windows_sys::Win32::Foundation::LocalFree;
        use windows_sys::Win32::Security::Authorization::{ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1};
        use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;

        let sddl: Vec<u16> = OWNER_ONLY.encode_utf16().chain(Some(0)).collect();
        let mut descriptor = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; the descriptor is freed below.
        if unsafe { ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.as_ptr(), SDDL_REVISION_1, &mut descriptor, std::ptr::null_mut()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut attributes =
            SECURITY_ATTRIBUTES { nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32, lpSecurityDescriptor: descriptor, bInheritHandle: 0 };
        let mut options = ServerOptions::new();
        options.first_pipe_instance(first).reject_remote_clients(true);
        // Message mode, as dockerd's pipe: the docker CLI then half-closes with an empty
        // message, which reads here as end of input.
        if message_mode {
            options.pipe_mode(PipeMode::Message);
        }
        // SAFETY: `attributes` and the descriptor it points to outlive the call.
        let created = unsafe { options.create_with_security_attributes_raw(name, (&mut attributes as *mut SECURITY_ATTRIBUTES).cast()) };
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(descriptor) };
        created
    }

    /// Creates the pipe for `path` as its first instance: a pipe of that name that
    /// already exists (another session's) is `BindError::InUse`.
    pub async fn bind(path: &Path, message_mode: bool) -> Result<LocalListener, BindError> {
        let name = pipe_name(path);
        // A server answers there (or all its instances are busy): as a unix socket that
        // still answers. Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE, so this is asked first.
        match ClientOptions::new().open(&name) {
            Ok(_) => return Err(BindError::InUse { path: name.into() }),
            Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY) => return Err(BindError::InUse { path: name.into() }),
            Err(_) => {}
        }
        match create(&name, message_mode, true) {
            Ok(next) => Ok(LocalListener { name, message_mode, next }),
            // FILE_FLAG_FIRST_PIPE_INSTANCE on a name in use fails with access denied.
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => Err(BindError::InUse { path: name.into() }),
            Err(source) => Err(BindError::Bind { path: name.into(), source }),
        }
    }

    /// Opens the pipe for `path`, waiting while every instance is busy (a server makes
    /// the next one as soon as it accepts).
    pub async fn connect(path: &Path) -> io::Result<LocalStream> {
        let name = pipe_name(path);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match ClientOptions::new().open(&name) {
                Ok(client) => return Ok(LocalStream::Client(client)),
                Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// A pipe goes with its last handle: nothing to remove.
    pub fn remove(_path: &Path) {}

    impl AsyncRead for LocalStream {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                LocalStream::Server(s) => Pin::new(s).poll_read(cx, buf),
                LocalStream::Client(s) => Pin::new(s).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for LocalStream {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            match self.get_mut() {
                LocalStream::Server(s) => Pin::new(s).poll_write(cx, buf),
                LocalStream::Client(s) => Pin::new(s).poll_write(cx, buf),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                LocalStream::Server(s) => Pin::new(s).poll_flush(cx),
                LocalStream::Client(s) => Pin::new(s).poll_flush(cx),
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                LocalStream::Server(s) => Pin::new(s).poll_shutdown(cx),
                LocalStream::Client(s) => Pin::new(s).poll_shutdown(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_names() {
        // A pipe path is itself, in either slash.
        assert_eq!(pipe_name(Path::new(r"\\.\pipe\berth_engine")), r"\\.\pipe\berth_engine");
        assert_eq!(pipe_name(Path::new("//./pipe/berth_engine")), r"\\.\pipe\berth_engine");
        // A file path: its stem, after a hash of the whole path.
        let docker = pipe_name(Path::new(r"C:\Users\ann\AppData\Local\berth\run\docker.sock"));
        assert!(docker.starts_with(r"\\.\pipe\berth-") && docker.ends_with("-docker"), "{docker}");
        assert_eq!(docker.len(), PIPE_PREFIX.len() + "berth-".len() + 16 + "-docker".len());
        // Case and slashes do not matter (one folder on Windows); the folder does.
        assert_eq!(docker, pipe_name(Path::new("c:/users/ann/appdata/local/berth/run/docker.sock")));
        assert_ne!(docker, pipe_name(Path::new(r"C:\Users\bob\AppData\Local\berth\run\docker.sock")));
        // Nothing a pipe name cannot hold.
        let odd = pipe_name(Path::new("/tmp/a b/q m,p.sock"));
        assert!(odd.ends_with("-q_m_p"), "{odd}");
        assert_eq!(qemu_pipe_name(Path::new(r"\\.\pipe\berth-x-qmp")), "berth-x-qmp");
        assert_eq!(docker_host(Path::new(r"\\.\pipe\berth_engine"), true), "npipe:////./pipe/berth_engine");
        assert_eq!(docker_host(Path::new("/r/docker.sock"), false), "unix:///r/docker.sock");
    }

    fn temp_endpoint(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("berth-ipc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("e.sock");
        (dir, path)
    }

    /// A unix socket here; a named pipe under Wine (`cargo xtask cross-check`).
    #[tokio::test]
    async fn bind_connect_and_in_use() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (dir, path) = temp_endpoint("use");
        let mut listener = bind(&path, true).await.expect("bind");
        let server = tokio::spawn(async move {
            // Two clients, one after the other: a pipe server makes a new instance for each.
            for _ in 0..2 {
                let mut conn = listener.accept().await.expect("accept");
                let mut got = [0u8; 5];
                conn.read_exact(&mut got).await.expect("read");
                conn.write_all(&got.to_ascii_uppercase()).await.expect("write");
            }
            listener
        });
        for _ in 0..2 {
            let mut client = connect(&path).await.expect("connect");
            client.write_all(b"hello").await.expect("write");
            let mut answer = String::new();
            // The server's end going away is the end of the answer.
            client.read_to_string(&mut answer).await.expect("read");
            assert_eq!(answer, "HELLO");
        }
        let listener = server.await.expect("server");
        // Probing it connects, so it comes after the exchange.
        let again = bind(&path, true).await;
        assert!(matches!(again, Err(BindError::InUse { .. })), "a live endpoint is not taken over: {again:?}");
        drop(listener);
        remove(&path);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A unix client half-closes with shutdown(2); the docker CLI on Windows half-closes
    /// a message-mode pipe with an empty message (go-winio's CloseWrite), which must read
    /// as the end of input while the answer still goes back.
    #[tokio::test]
    async fn a_half_close_ends_the_input_and_the_answer_still_flows() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (dir, path) = temp_endpoint("half");
        let mut listener = bind(&path, true).await.expect("bind");
        let server = tokio::spawn(async move {
            let mut conn = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            conn.read_to_end(&mut got).await.expect("read to the end of input");
            conn.write_all(&got.to_ascii_uppercase()).await.expect("write");
        });
        #[cfg(unix)]
        let answer = {
            let mut client = connect(&path).await.expect("connect");
            client.write_all(b"hello").await.expect("write");
            client.shutdown().await.expect("half-close");
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.expect("read");
            answer
        };
        #[cfg(windows)]
        let answer = {
            let name = pipe_name(&path);
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                // A plain (blocking) client, writing as go-winio does: the bytes, then an
                // empty message.
                let mut client = std::fs::OpenOptions::new().read(true).write(true).open(&name).expect("open the pipe");
                client.write_all(b"hello").expect("write");
                assert_eq!(client.write(&[]).expect("empty message"), 0);
                let mut answer = String::new();
                client.read_to_string(&mut answer).expect("read");
                answer
            })
            .await
            .expect("client")
        };
        assert_eq!(answer, "HELLO");
        server.await.expect("server");
        remove(&path);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
