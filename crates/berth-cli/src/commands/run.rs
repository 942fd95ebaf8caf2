//! `run`: create (pulling the image if needed), attach, start, wait; the exit code is
//! the container's. With `-d`, start and print the id.

use std::io::Write;
use std::process::ExitCode;

use berth_host::agent::{AgentClient, CallError};
use berth_proto::v1::{AttachInput, ContainerRef, WaitContainerRequest};
use futures::StreamExt;

use super::create::{create_container, ContainerArgs};
use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background and print the container's id.
    #[arg(long, short)]
    detach: bool,
    #[command(flatten)]
    container: ContainerArgs,
}

use crate::terminal::{forward_resizes, terminal_size, RawTerminal};

/// Sends our stdin as messages (on a thread: reading stdin blocks), then the end.
pub fn forward_stdin<T: Send + 'static>(
    sender: tokio::sync::mpsc::Sender<T>,
    data: impl Fn(Vec<u8>) -> T + Send + 'static,
    end: impl Fn() -> T + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            use std::io::Read;
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = sender.blocking_send(end());
                    return;
                }
                Ok(n) => {
                    if sender.blocking_send(data(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Streams the container's output to ours (and our stdin to it) until it ends.
pub async fn attach_streams(agent: &AgentClient, id: &str, stdin: bool, tty: bool) -> Result<tokio::task::JoinHandle<()>, CallError> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<AttachInput>(16);
    let (rows, cols) = if tty { terminal_size() } else { (0, 0) };
    sender.send(AttachInput { id: id.to_owned(), stdin: Vec::new(), close_stdin: false, rows, cols }).await.map_err(|_| CallError {
        operation: "attach",
        kind: berth_proto::ErrorKind::Internal,
        message: "closed".into(),
    })?;
    let mut output =
        agent.containers().attach(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.map_err(|s| CallError::from_status("attach", s))?.into_inner();
    if tty {
        forward_resizes(sender.clone(), |rows, cols| AttachInput { rows, cols, ..Default::default() });
    }
    if stdin {
        forward_stdin(sender.clone(), |data| AttachInput { stdin: data, ..Default::default() }, || AttachInput { close_stdin: true, ..Default::default() });
    }
    Ok(tokio::spawn(async move {
        // Keeps the request stream open while output flows.
        let _sender = sender;
        while let Some(Ok(chunk)) = output.next().await {
            if chunk.stream == 2 {
                let _ = std::io::stderr().write_all(&chunk.data);
                let _ = std::io::stderr().flush();
            } else {
                let _ = std::io::stdout().write_all(&chunk.data);
                let _ = std::io::stdout().flush();
            }
        }
    }))
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let id = create_container(&agent, &args.container).await?;
    let mut containers = agent.containers();
    if args.detach {
        containers.start(ContainerRef { id: id.clone() }).await.map_err(|s| CallError::from_status("start", s))?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let interactive = args.container.interactive;
    let tty = args.container.tty;
    let attached = attach_streams(&agent, &id, interactive, tty).await?;
    // Waiting starts before the start, so a fast exit is not missed.
    let condition = if args.container.rm { "removed" } else { "next-exit" };
    let mut waiter = agent.containers();
    let wait_id = id.clone();
    let wait = tokio::spawn(async move { waiter.wait(WaitContainerRequest { id: wait_id, condition: condition.to_owned() }).await });
    let _raw = (tty && interactive && std::io::IsTerminal::is_terminal(&std::io::stdin())).then(RawTerminal::enable);
    if let Err(status) = containers.start(ContainerRef { id: id.clone() }).await {
        attached.abort();
        // docker run's codes: the engine's record of why the command could not start
        // (127 not found, 126 not runnable), else 125. Removed (`--rm`), the record is
        // what the removal's waiter is told.
        let recorded = if args.container.rm {
            let _ = containers.remove(berth_proto::v1::RemoveContainerRequest { id: id.clone(), force: true, volumes: true }).await;
            match tokio::time::timeout(std::time::Duration::from_secs(5), wait).await {
                Ok(Ok(Ok(response))) => Some(response.into_inner().exit_code),
                _ => None,
            }
        } else {
            wait.abort();
            containers.inspect(ContainerRef { id: id.clone() }).await.ok().and_then(|details| {
                let json: serde_json::Value = serde_json::from_str(&details.into_inner().inspect_json).ok()?;
                json["State"]["ExitCode"].as_i64().and_then(|c| i32::try_from(c).ok())
            })
        };
        let code: u8 = match recorded {
            Some(126) => 126,
            Some(127) => 127,
            _ => 125,
        };
        let error = CallError::from_status("start", status);
        eprintln!("berth: {error}");
        return Ok(ExitCode::from(code));
    }
    let code = match wait.await {
        Ok(Ok(response)) => response.into_inner().exit_code,
        Ok(Err(status)) => return Err(CallError::from_status("wait", status).into()),
        Err(e) => return Err(format!("wait: {e}").into()),
    };
    // The monitor ends the stream once it has sent everything.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), attached).await;
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)))
}
