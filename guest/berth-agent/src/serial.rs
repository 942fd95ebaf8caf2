//! The serial transport's guest end: the virtio-serial port the host names
//! [`berth_proto::mux::SERIAL_PORT_NAME`], read and written without blocking a thread,
//! carrying the mux that `berth_proto::mux::serve` answers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The device of the port called `name`, from `/sys/class/virtio-ports/*/name`.
pub fn find_port(name: &str) -> Option<PathBuf> {
    let ports = std::fs::read_dir("/sys/class/virtio-ports").ok()?;
    for entry in ports.flatten() {
        let named = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if named.trim() == name {
            return Some(PathBuf::from("/dev").join(entry.file_name()));
        }
    }
    None
}

/// An open port: non-blocking reads and writes, woken by epoll.
pub struct SerialPort {
    fd: AsyncFd<File>,
}

impl SerialPort {
    pub fn open(path: &std::path::Path) -> io::Result<SerialPort> {
        let file = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
        // SAFETY: the File owns its descriptor and is moved into the AsyncFd, which
        // keeps it open, and the same, until it is dropped.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(SerialPort { fd })
    }
}

impl AsyncRead for SerialPort {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for SerialPort {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves the mux on the port for as long as the agent runs: each time the host goes
/// away (the port reads end of file) the port is opened again for the next hello.
pub async fn serve_forever(name: String, ports: Vec<u32>, on_stream: Arc<dyn Fn(u32, tokio_yamux::StreamHandle) + Send + Sync>) {
    let mut said_missing = false;
    loop {
        let port = match find_port(&name).map(|path| SerialPort::open(&path).map(|p| (path, p))) {
            Some(Ok((_, port))) => port,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot open the serial port {name}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            None => {
                if !said_missing {
                    tracing::info!(port = %name, "no virtio-serial port by that name (the host uses vsock)");
                    said_missing = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match berth_proto::mux::serve(port, ports.clone(), on_stream.clone()).await {
            Ok(()) => tracing::info!("the host closed the serial mux"),
            Err(e) => tracing::info!(error = %e, "the serial mux ended"),
        }
        // A port whose host end is closed reads end of file at once: do not spin.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
