//! `berth.v1.System`: version, info, the event stream and the guest's clock.

use std::pin::Pin;

use berth_proto::v1::{
    system_server::System, Event, EventsRequest, InfoRequest, InfoResponse, SyncClockRequest, SyncClockResponse, VersionRequest, VersionResponse,
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use crate::system::{version, MachineFacts};
use crate::Engine;

/// The System service over an [`Engine`].
#[derive(Debug)]
pub struct SystemApi {
    engine: Engine,
}

impl SystemApi {
    pub fn new(engine: Engine) -> SystemApi {
        SystemApi { engine }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send + 'static>>;

fn now_nanos() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn set_clock(unix_nanos: i128) -> std::io::Result<()> {
    let secs = i64::try_from(unix_nanos.div_euclid(1_000_000_000)).map_err(std::io::Error::other)?;
    // `as _`: time_t is i64 on every target Berth's guest runs on.
    let ts = libc::timespec { tv_sec: secs as _, tv_nsec: unix_nanos.rem_euclid(1_000_000_000) as _ };
    // SAFETY: a valid timespec for the duration of the call.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[tonic::async_trait]
impl System for SystemApi {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(version()))
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let facts = MachineFacts::read();
        let config = self.engine.config();
        Ok(Response::new(InfoResponse {
            hostname: facts.hostname,
            cpus: facts.cpus,
            memory_bytes: facts.memory_bytes,
            kernel_version: facts.kernel_release,
            operating_system: facts.os_pretty_name,
            arch: std::env::consts::ARCH.to_owned(),
            uptime_seconds: facts.uptime_seconds,
            placement: config.placement.as_str().to_owned(),
            root_dir: config.root_dir.display().to_string(),
            pid: std::process::id(),
        }))
    }

    async fn sync_clock(&self, request: Request<SyncClockRequest>) -> Result<Response<SyncClockResponse>, Status> {
        if self.engine.config().placement != crate::Placement::Vm {
            return Err(Status::failed_precondition("the engine sets the clock only in Berth's VM"));
        }
        let host = i128::from(request.into_inner().unix_nanos);
        let guest = now_nanos();
        let offset = guest - host;
        // A tenth of a second: more than a round trip over vsock, less than the second
        // `docker events --since` and file times are read to.
        let corrected = offset.abs() > 100_000_000;
        if corrected {
            set_clock(host).map_err(|e| Status::internal(format!("cannot set the clock: {e}")))?;
            tracing::info!(offset_ms = i64::try_from(offset / 1_000_000).unwrap_or(i64::MAX), "the guest clock followed the host's");
        }
        Ok(Response::new(SyncClockResponse { offset_nanos: i64::try_from(offset).unwrap_or(i64::MAX), corrected }))
    }

    type EventsStream = EventStream;

    async fn events(&self, request: Request<EventsRequest>) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        let (backlog, mut live) = self.engine.events().subscribe(request.replay);
        let types = request.types;
        let wanted = move |kind: &str| types.is_empty() || types.iter().any(|t| t == kind);
        let stream = async_stream(move |tx| async move {
            for event in backlog {
                if wanted(&event.kind) && tx.send(Ok(event.into())).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if wanted(&event.kind) && tx.send(Ok(event.into())).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let status = Status::data_loss(format!("event subscriber fell behind and missed {missed} events"));
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task through a small channel; the task ends when the client goes.
fn async_stream<F, Fut>(body: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
