use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ContainerRef, WaitContainerRequest};

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach stdout/stderr and wait for the exit (one container).
    #[arg(long, short)]
    attach: bool,
    /// Attach stdin too.
    #[arg(long, short)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    if args.attach {
        if args.containers.len() > 1 {
            return Err("you cannot start and attach multiple containers at once".into());
        }
        let id = &args.containers[0];
        let attached = super::run::attach_streams(&agent, id, args.interactive, false).await?;
        agent.containers().start(ContainerRef { id: id.clone() }).await.map_err(|s| CallError::from_status("start", s))?;
        let code = agent
            .containers()
            .wait(WaitContainerRequest { id: id.clone(), condition: "not-running".into() })
            .await
            .map_err(|s| CallError::from_status("wait", s))?
            .into_inner()
            .exit_code;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), attached).await;
        return Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)));
    }
    super::each(&args.containers, "start", |id| {
        let mut client = agent.containers();
        async move { client.start(ContainerRef { id }).await.map(|_| ()) }
    })
    .await
}
