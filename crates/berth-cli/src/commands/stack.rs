//! `berth stack deploy`: a compose project onto an orchestrator. So far as what would be
//! sent (`--dry-run`): Kubernetes manifests, or the Docker API bodies of a Swarm stack;
//! applying them to a cluster or a Swarm manager is not built yet and says so.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_compose::project::{load_project, LoadOptions};

use super::CommandResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Orchestrator {
    Swarm,
    Kubernetes,
}

#[derive(Debug, clap::Subcommand)]
pub enum StackCommand {
    /// Deploy a compose project as a stack named NAME.
    Deploy {
        /// The compose files (in order, merged as compose merges them).
        #[arg(short = 'c', long = "compose-file", required = true)]
        compose_file: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "swarm")]
        orchestrator: Orchestrator,
        /// Print what would be made (Kubernetes manifests, or a Swarm stack's Docker API
        /// bodies) instead of making it.
        #[arg(long)]
        dry_run: bool,
        /// The stack's name (the project's name).
        name: String,
    },
}

pub async fn run(cmd: StackCommand) -> CommandResult {
    match cmd {
        StackCommand::Deploy { compose_file, orchestrator, dry_run, name } => {
            let options = LoadOptions {
                files: compose_file,
                project_name: Some(name),
                env_files: Vec::new(),
                working_dir: std::env::current_dir()?,
                environ: std::env::vars().collect(),
            };
            let project = load_project(&options)?;
            match orchestrator {
                Orchestrator::Swarm => {
                    let services = berth_compose::plan::enabled_services(&project.model, &[], &[])?;
                    let stack = berth_compose::swarm::render(&project, &project.name, &services)?;
                    if !dry_run {
                        return Err("deploying to a Swarm manager is not built yet: --dry-run prints the Docker API bodies it would send".into());
                    }
                    println!("{}", serde_json::to_string_pretty(&stack.to_dry_run_json())?);
                    Ok(ExitCode::SUCCESS)
                }
                Orchestrator::Kubernetes => {
                    let services = berth_compose::plan::enabled_services(&project.model, &[], &[])?;
                    let rendered = berth_compose::kube::render(&project, &services)?;
                    for warning in &rendered.warnings {
                        eprintln!("warning: {warning}");
                    }
                    if !dry_run {
                        return Err("applying to a cluster is not built yet: use --dry-run, and `kubectl apply --server-side -f -` on its output".into());
                    }
                    print!("{}", rendered.to_yaml());
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}
