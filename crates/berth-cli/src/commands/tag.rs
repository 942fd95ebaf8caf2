use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::TagImageRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    source: String,
    target: String,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    agent.images().tag(TagImageRequest { source: args.source, target: args.target }).await.map_err(|s| CallError::from_status("tag", s))?;
    Ok(ExitCode::SUCCESS)
}
