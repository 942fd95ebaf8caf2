use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::ContainerRef;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
}

/// Prints `A /path`, `C /path`, `D /path` as docker does.
pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let changes = agent.containers().changes(ContainerRef { id: args.container }).await.map_err(|s| CallError::from_status("diff", s))?.into_inner().changes;
    for change in changes {
        let letter = match change.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        };
        println!("{letter} {}", change.path);
    }
    Ok(ExitCode::SUCCESS)
}
