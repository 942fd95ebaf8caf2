use berth_proto::v1::RemoveContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force the removal of a running container (SIGKILL).
    #[arg(long, short)]
    force: bool,
    /// Remove anonymous volumes too.
    #[arg(long, short)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    super::each(&args.containers, "rm", |id| {
        let mut client = agent.containers();
        async move { client.remove(RemoveContainerRequest { id, force: args.force, volumes: args.volumes }).await.map(|_| ()) }
    })
    .await
}
