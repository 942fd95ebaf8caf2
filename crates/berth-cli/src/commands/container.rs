//! `berth container <verb>`: the same commands as the top-level ones, plus ls,
//! inspect and prune.

use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::PruneContainersRequest;
use clap::Subcommand;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create a container.
    Create(super::create::ContainerArgs),
    /// Create and start a container.
    Run(super::run::Args),
    /// Start containers.
    Start(super::start::Args),
    /// Stop containers.
    Stop(super::stop::Args),
    /// Restart containers.
    Restart(super::stop::Args),
    /// Send a signal to containers.
    Kill(super::kill::Args),
    /// Remove containers.
    Rm(super::rm::Args),
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(super::ps::Args),
    /// Show containers in docker's JSON shape.
    Inspect(super::inspect::Args),
    /// Fetch a container's logs.
    Logs(super::logs::Args),
    /// Run a command in a running container.
    Exec(super::exec::Args),
    /// Wait for containers to stop; print their exit codes.
    Wait(super::wait::Args),
    /// Rename a container.
    Rename(super::rename::Args),
    /// Pause containers.
    Pause(super::pause::Args),
    /// Unpause containers.
    Unpause(super::pause::Args),
    /// A container's processes.
    Top(super::top::Args),
    /// Live resource usage.
    Stats(super::stats::Args),
    /// Change limits or the restart policy.
    Update(super::update::Args),
    /// What the container changed in its filesystem.
    Diff(super::diff::Args),
    /// The filesystem as a tar.
    Export(super::export::Args),
    /// Copy files out of a container.
    Cp(super::cp::Args),
    /// Attach to a running container.
    Attach(super::attach::Args),
    /// Remove all stopped containers.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (berth never prompts).
    #[arg(long, short)]
    force: bool,
    /// Only containers with these labels: `label=KEY` or `label=KEY=VALUE` (repeatable).
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
}

pub async fn run(ctx: &Context, command: ContainerCommand) -> CommandResult {
    match command {
        ContainerCommand::Create(args) => super::create::run(ctx, args).await,
        ContainerCommand::Run(args) => super::run::run(ctx, args).await,
        ContainerCommand::Start(args) => super::start::run(ctx, args).await,
        ContainerCommand::Stop(args) => super::stop::stop(ctx, args).await,
        ContainerCommand::Restart(args) => super::stop::restart(ctx, args).await,
        ContainerCommand::Kill(args) => super::kill::run(ctx, args).await,
        ContainerCommand::Rm(args) => super::rm::run(ctx, args).await,
        ContainerCommand::Ls(args) => super::ps::run(ctx, args).await,
        ContainerCommand::Inspect(args) => super::inspect::run(ctx, args).await,
        ContainerCommand::Logs(args) => super::logs::run(ctx, args).await,
        ContainerCommand::Exec(args) => super::exec::run(ctx, args).await,
        ContainerCommand::Wait(args) => super::wait::run(ctx, args).await,
        ContainerCommand::Rename(args) => super::rename::run(ctx, args).await,
        ContainerCommand::Pause(args) => super::pause::pause(ctx, args).await,
        ContainerCommand::Unpause(args) => super::pause::unpause(ctx, args).await,
        ContainerCommand::Top(args) => super::top::run(ctx, args).await,
        ContainerCommand::Stats(args) => super::stats::run(ctx, args).await,
        ContainerCommand::Update(args) => super::update::run(ctx, args).await,
        ContainerCommand::Diff(args) => super::diff::run(ctx, args).await,
        ContainerCommand::Export(args) => super::export::run(ctx, args).await,
        ContainerCommand::Cp(args) => super::cp::run(ctx, args).await,
        ContainerCommand::Attach(args) => super::attach::run(ctx, args).await,
        ContainerCommand::Prune(args) => {
            let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
            let pruned = agent
                .containers()
                .prune(PruneContainersRequest { filters: args.filters })
                .await
                .map_err(|s| CallError::from_status("container prune", s))?
                .into_inner();
            println!("Deleted Containers:");
            for id in pruned.deleted {
                println!("{id}");
            }
            println!("\nTotal reclaimed space: {}", super::stats::bytes(pruned.reclaimed_bytes));
            Ok(ExitCode::SUCCESS)
        }
    }
}
