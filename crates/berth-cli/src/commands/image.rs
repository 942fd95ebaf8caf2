use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::PruneImagesRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// List images.
    Ls(super::images::Args),
    /// Show images in Docker's JSON shape.
    Inspect(super::images::InspectArgs),
    /// The steps that made an image.
    History(super::history::Args),
    /// Make an image from a root filesystem tarball.
    Import(super::import::Args),
    /// Remove unnamed images (-a: every unused image) and what only they used.
    Prune {
        #[arg(long, short)]
        all: bool,
        /// Do not ask (there is no prompt yet; accepted for docker's habits).
        #[arg(long, short)]
        force: bool,
    },
}

pub async fn run(ctx: &Context, cmd: ImageCommand) -> CommandResult {
    match cmd {
        ImageCommand::Ls(args) => super::images::run(ctx, args).await,
        ImageCommand::Inspect(args) => super::images::inspect(ctx, args).await,
        ImageCommand::History(args) => super::history::run(ctx, args).await,
        ImageCommand::Import(args) => super::import::run(ctx, args).await,
        ImageCommand::Prune { all, .. } => prune(ctx, all).await,
    }
}

pub async fn prune(ctx: &Context, all: bool) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let pruned = agent.images().prune(PruneImagesRequest { all }).await.map_err(|s| CallError::from_status("prune", s))?.into_inner();
    for name in &pruned.untagged {
        println!("untagged: {}", super::images::familiar(name));
    }
    for id in &pruned.deleted {
        println!("deleted: {id}");
    }
    println!("Total reclaimed space: {} bytes", pruned.reclaimed_bytes);
    Ok(ExitCode::SUCCESS)
}
