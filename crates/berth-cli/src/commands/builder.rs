use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::PruneBuildCacheRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache: the steps' images nothing names or uses, and RUN's cache
    /// mounts; prints the bytes freed.
    Prune {
        /// Every cached step (Berth's cache has no other kind; accepted for docker's habits).
        #[arg(long, short)]
        all: bool,
        /// Do not ask (there is no prompt; accepted for docker's habits).
        #[arg(long, short)]
        force: bool,
    },
}

pub async fn run(ctx: &Context, cmd: BuilderCommand) -> CommandResult {
    match cmd {
        BuilderCommand::Prune { .. } => {
            let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
            let pruned =
                agent.images().prune_build_cache(PruneBuildCacheRequest {}).await.map_err(|s| CallError::from_status("builder prune", s))?.into_inner();
            if !pruned.deleted.is_empty() {
                println!("Deleted build cache objects:");
                for id in &pruned.deleted {
                    println!("{id}");
                }
                println!();
            }
            println!("Total reclaimed space: {} bytes", pruned.reclaimed_bytes);
            Ok(ExitCode::SUCCESS)
        }
    }
}
