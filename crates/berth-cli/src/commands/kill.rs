use berth_proto::v1::KillContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal to send (name or number).
    #[arg(long, short, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    super::each(&args.containers, "kill", |id| {
        let mut client = agent.containers();
        let signal = args.signal.clone();
        async move { client.kill(KillContainerRequest { id, signal }).await.map(|_| ()) }
    })
    .await
}
