use berth_proto::v1::ContainerRef;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn pause(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    super::each(&args.containers, "pause", |id| {
        let mut client = agent.containers();
        async move { client.pause(ContainerRef { id }).await.map(|_| ()) }
    })
    .await
}

pub async fn unpause(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    super::each(&args.containers, "unpause", |id| {
        let mut client = agent.containers();
        async move { client.unpause(ContainerRef { id }).await.map(|_| ()) }
    })
    .await
}
