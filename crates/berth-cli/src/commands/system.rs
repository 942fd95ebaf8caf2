use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::CheckRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    /// Facts about the engine and its machine (same as `berth info`).
    Info(super::info::Args),
    /// Remove stopped containers and unnamed images (-a: every unused image;
    /// --volumes: unused anonymous volumes too).
    Prune {
        #[arg(long, short)]
        all: bool,
        /// Prune anonymous volumes no container uses.
        #[arg(long)]
        volumes: bool,
        /// Do not prompt (berth never prompts).
        #[arg(long, short)]
        force: bool,
    },
    /// Disk use of images, containers and volumes.
    Df,
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
        SystemCommand::Prune { all, volumes, .. } => {
            let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
            let containers = agent
                .containers()
                .prune(berth_proto::v1::PruneContainersRequest { filters: Vec::new() })
                .await
                .map_err(|s| CallError::from_status("system prune", s))?
                .into_inner();
            println!("Deleted Containers:");
            for id in &containers.deleted {
                println!("{id}");
            }
            if volumes {
                let pruned = agent
                    .volumes()
                    .prune(berth_proto::v1::PruneVolumesRequest { all: false, filters: Vec::new() })
                    .await
                    .map_err(|s| CallError::from_status("system prune", s))?
                    .into_inner();
                println!("\nDeleted Volumes:");
                for name in &pruned.deleted {
                    println!("{name}");
                }
            }
            println!();
            // Images last: the containers just removed no longer hold theirs.
            super::image::prune(ctx, all).await
        }
        SystemCommand::Df => {
            let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
            let images =
                agent.images().list(berth_proto::v1::ListImagesRequest {}).await.map_err(|s| CallError::from_status("system df", s))?.into_inner().images;
            let containers = agent
                .containers()
                .list(berth_proto::v1::ListContainersRequest { all: true, filters: Vec::new() })
                .await
                .map_err(|s| CallError::from_status("system df", s))?
                .into_inner()
                .containers;
            let volumes = agent
                .volumes()
                .list(berth_proto::v1::ListVolumesRequest { filters: Vec::new(), size: true })
                .await
                .map_err(|s| CallError::from_status("system df", s))?
                .into_inner()
                .volumes;
            let used_images: std::collections::BTreeSet<&str> = containers.iter().map(|c| c.image_id.as_str()).collect();
            let image_bytes: u64 = images.iter().map(|i| i.size).sum();
            let active_images = images.iter().filter(|i| used_images.contains(i.id.as_str())).count();
            let running = containers.iter().filter(|c| c.state == "running" || c.state == "paused").count();
            let volume_bytes: u64 = volumes.iter().map(|v| v.size.max(0) as u64).sum();
            let active_volumes = volumes.iter().filter(|v| !v.used_by.is_empty()).count();
            let titles: Vec<String> = ["TYPE", "TOTAL", "ACTIVE", "SIZE"].map(str::to_owned).to_vec();
            let rows = vec![
                vec!["Images".into(), images.len().to_string(), active_images.to_string(), super::stats::bytes(image_bytes)],
                vec!["Containers".into(), containers.len().to_string(), running.to_string(), "-".into()],
                vec!["Local Volumes".into(), volumes.len().to_string(), active_volumes.to_string(), super::stats::bytes(volume_bytes)],
            ];
            super::ps::print_table(&titles, &rows);
            Ok(ExitCode::SUCCESS)
        }
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
