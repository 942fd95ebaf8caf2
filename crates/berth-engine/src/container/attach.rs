//! Attaching to a container's live stdio through its monitor's `attach.sock` (framing
//! in guest/berth-monitor's `frame.rs`). Attaching to a container that is not running
//! yet waits for its next start, and is connected before the process runs, so no
//! output is missed (docker's attach-then-start, which `run` relies on).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::record::Status;
use super::{ContainerError, Containers};

/// Client-to-monitor frame kinds.
pub const STDIN: u8 = 0;
pub const CLOSE_STDIN: u8 = 1;
pub const RESIZE: u8 = 2;

/// Encodes one client-to-monitor frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads the monitor's output frames, `[stream u8][len u32 BE][data]`, one at a time.
#[derive(Debug)]
pub struct OutputFrames<R> {
    reader: R,
    pending: Vec<u8>,
    chunk: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> OutputFrames<R> {
    pub fn new(reader: R) -> OutputFrames<R> {
        OutputFrames { reader, pending: Vec::new(), chunk: vec![0u8; 32 * 1024] }
    }

    /// The next (stream, data); None once the monitor's side ends.
    pub async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.pending.len() >= 5 {
                let len = u32::from_be_bytes([self.pending[1], self.pending[2], self.pending[3], self.pending[4]]) as usize;
                if self.pending.len() >= 5 + len {
                    let frame = (self.pending[0], self.pending[5..5 + len].to_vec());
                    self.pending.drain(..5 + len);
                    return Some(frame);
                }
            }
            match self.reader.read(&mut self.chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&self.chunk[..n]),
            }
        }
    }
}

/// An attach that is connected, or will be at the container's next start.
#[derive(Debug)]
pub enum PendingAttachment {
    Ready(UnixStream),
    Waiting(tokio::sync::oneshot::Receiver<Result<UnixStream, ContainerError>>),
}

impl PendingAttachment {
    pub async fn connected(self) -> Result<UnixStream, ContainerError> {
        match self {
            PendingAttachment::Ready(stream) => Ok(stream),
            PendingAttachment::Waiting(receiver) => match receiver.await {
                Ok(result) => result,
                Err(_) => Err(ContainerError::Runtime("the container did not start".to_owned())),
            },
        }
    }
}

impl Containers {
    /// Connects to the running container's monitor.
    pub(super) fn connect_attach(&self, id: &str) -> Result<UnixStream, String> {
        // The directory may be deeper than a socket path allows; go through an fd.
        let dir = std::fs::File::open(self.dir(id)).map_err(|e| format!("open the container's directory: {e}"))?;
        let path = format!("/proc/self/fd/{}/attach.sock", dir.as_raw_fd());
        UnixStream::connect(&path).map_err(|e| format!("connect to the container's monitor: {e}"))
    }

    /// A stream of the container's stdio: now if it runs, else from its next start.
    pub async fn attach(self: &Arc<Self>, key: &str) -> Result<UnixStream, ContainerError> {
        self.attach_begin(key).await?.connected().await
    }

    /// The first half of `attach`: once this returns, the container's next start
    /// hands its stdio over (so a caller can answer its client, which then starts it).
    pub async fn attach_begin(self: &Arc<Self>, key: &str) -> Result<PendingAttachment, ContainerError> {
        let id = self.find(key)?.id;
        let lock = self.lock_of(&id);
        let _guard = lock.lock().await;
        let record = self.store.get(&id)?.ok_or_else(|| ContainerError::NotFound(key.to_owned()))?;
        if !matches!(record.state.status, Status::Removing | Status::Dead) {
            self.publish(&record, "attach", &[]);
        }
        match record.state.status {
            Status::Running | Status::Paused => Ok(PendingAttachment::Ready(self.connect_attach(&id).map_err(ContainerError::Runtime)?)),
            Status::Removing | Status::Dead => Err(ContainerError::Conflict(format!("container {} is being removed", record.name))),
            _ => {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                let mut pending = self.pending_attach.lock().unwrap_or_else(|p| p.into_inner());
                pending.entry(id.clone()).or_default().push(sender);
                Ok(PendingAttachment::Waiting(receiver))
            }
        }
    }

    /// A client left an attach with its detach keys: the container runs on (docker's
    /// `detach` event).
    pub fn detached(&self, key: &str) {
        if let Ok(record) = self.find(key) {
            self.publish(&record, "detach", &[]);
        }
    }

    pub(super) fn hand_over_pending_attach(&self, id: &str) {
        let waiting = self.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).remove(id).unwrap_or_default();
        for sender in waiting {
            let _ = sender.send(self.connect_attach(id).map_err(ContainerError::Runtime));
        }
    }

    /// The container did not start: each waiting attach learns why, as the start did.
    pub(super) fn fail_pending_attach(&self, id: &str, err: &ContainerError) {
        let waiting = self.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).remove(id).unwrap_or_default();
        for sender in waiting {
            let _ = sender.send(Err(err.for_waiter()));
        }
    }
}
