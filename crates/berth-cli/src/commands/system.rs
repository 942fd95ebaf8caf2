use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::CheckRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    /// Facts about the engine and its machine (same as `berth info`).
    Info(super::info::Args),
    /// Remove unused data (images so far: unnamed ones; -a every unused image).
    Prune {
        #[arg(long, short)]
        all: bool,
        #[arg(long, short)]
        force: bool,
    },
    /// Verify every blob, snapshot and image reference of the store.
    Check {
        /// Delete what is provably garbage (corrupt blobs, unreferenced content).
        #[arg(long)]
        repair: bool,
    },
}

pub async fn run(ctx: &Context, cmd: SystemCommand) -> CommandResult {
    match cmd {
        SystemCommand::Info(args) => super::info::run(ctx, args).await,
        SystemCommand::Prune { all, .. } => super::image::prune(ctx, all).await,
        SystemCommand::Check { repair } => {
            let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
            let report = agent.images().check(CheckRequest { repair }).await.map_err(|s| CallError::from_status("check", s))?.into_inner();
            println!("checked {} blobs, {} images, {} snapshots", report.blobs, report.images, report.snapshots);
            for problem in &report.problems {
                println!("problem: {problem}");
            }
            for done in &report.repaired {
                println!("repaired: {done}");
            }
            if report.problems.is_empty() {
                println!("the store is consistent");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
