use berth_proto::v1::StopContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait before killing the container.
    #[arg(long, short = 't', alias = "time", allow_hyphen_values = true)]
    timeout: Option<i32>,
    /// Signal to send (default: the container's stop signal).
    #[arg(long, short)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn stop(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let signal = args.signal.clone().unwrap_or_default();
    let timeout = args.timeout.unwrap_or(-1);
    super::each(&args.containers, "stop", |id| {
        let mut client = agent.containers();
        let signal = signal.clone();
        async move { client.stop(StopContainerRequest { id, timeout, signal }).await.map(|_| ()) }
    })
    .await
}

pub async fn restart(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let timeout = args.timeout.unwrap_or(-1);
    super::each(&args.containers, "restart", |id| {
        let mut client = agent.containers();
        async move { client.restart(StopContainerRequest { id, timeout, signal: String::new() }).await.map(|_| ()) }
    })
    .await
}
