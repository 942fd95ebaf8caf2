//! QEMU's control API (QMP) over its unix socket (a named pipe on Windows), with the
//! `qapi` crate.

use std::io;
use std::path::Path;
use std::time::Duration;

use berth_proto::ipc::LocalStream;
use futures::StreamExt;
use qapi::futures::{QapiService, QmpStreamTokio};
use qapi::{qmp, ExecuteError};
use tokio::io::WriteHalf;
use tokio::sync::mpsc;

type QmpWriter = QmpStreamTokio<WriteHalf<LocalStream>>;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to QMP socket {path}")]
    Connect { path: String, source: io::Error },
    #[error("QMP command {command} failed")]
    Command { command: &'static str, source: ExecuteError },
    #[error("QMP command {command} got no answer within {timeout:?}")]
    Timeout { command: &'static str, timeout: Duration },
}

/// The VM's run state as QMP reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStatus {
    pub running: bool,
    /// QEMU's RunState name, e.g. "running", "paused", "shutdown".
    pub status: String,
}

/// A QMP connection: commands on one side, asynchronous events on the other.
pub struct Qmp {
    service: QapiService<QmpWriter>,
    events: mpsc::UnboundedReceiver<qmp::Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").finish_non_exhaustive()
    }
}

impl Qmp {
    /// Connects and negotiates capabilities.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let connect_err = |source| QmpError::Connect { path: path.display().to_string(), source };
        let negotiate = async {
            let greeting = QmpStreamTokio::open(berth_proto::ipc::connect(path).await?).await?;
            greeting.negotiate().await
        };
        let stream = tokio::time::timeout(timeout, negotiate)
            .await
            .map_err(|_| connect_err(io::Error::new(io::ErrorKind::TimedOut, "no QMP greeting")))?
            .map_err(connect_err)?;
        let (service, mut events) = stream.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        // Polling the read half routes command replies as well as events: it must run.
        let reader = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        let _ = tx.send(event);
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "QMP stream ended");
                        break;
                    }
                }
            }
        });
        Ok(Qmp { service, events: rx, reader })
    }

    pub async fn query_status(&self) -> Result<RunStatus, QmpError> {
        let info = self.run("query-status", qmp::query_status {}).await?;
        let status = serde_json::to_value(info.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{:?}", info.status));
        Ok(RunStatus { running: info.running, status })
    }

    /// Presses the ACPI power button.
    pub async fn system_powerdown(&self) -> Result<(), QmpError> {
        self.run("system_powerdown", qmp::system_powerdown {}).await.map(drop)
    }

    /// Asks QEMU to exit now. The socket closing before the reply counts as success.
    pub async fn quit(&self) -> Result<(), QmpError> {
        match self.run("quit", qmp::quit {}).await {
            Ok(_) => Ok(()),
            Err(QmpError::Command { source: ExecuteError::Io(_), .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Waits for QEMU's SHUTDOWN event; `None` when the stream ended first.
    pub async fn wait_shutdown(&mut self, timeout: Duration) -> Option<bool> {
        let wait = async {
            while let Some(event) = self.events.recv().await {
                if let qmp::Event::SHUTDOWN { data, .. } = event {
                    return Some(data.guest);
                }
            }
            None
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    async fn run<C: qmp::QmpCommand>(&self, command: &'static str, cmd: C) -> Result<C::Ok, QmpError> {
        let timeout = Duration::from_secs(5);
        match tokio::time::timeout(timeout, self.service.execute(cmd)).await {
            Ok(result) => result.map_err(|source| QmpError::Command { command, source }),
            Err(_) => Err(QmpError::Timeout { command, timeout }),
        }
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
