use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::RenameContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    new_name: String,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    agent.containers().rename(RenameContainerRequest { id: args.container, new_name: args.new_name }).await.map_err(|s| CallError::from_status("rename", s))?;
    Ok(ExitCode::SUCCESS)
}
