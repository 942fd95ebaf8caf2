//! `berth compose`: compose files read on this side, as docker compose does. So far:
//! `config` (the resolved project). Bringing stacks up comes with networks.

use std::process::ExitCode;

use berth_compose::project::{load_project, LoadOptions};

use super::{CommandResult, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Compose files, merged in order (default: compose.yaml or docker-compose.yml here).
    #[arg(long = "file", short = 'f')]
    files: Vec<std::path::PathBuf>,
    /// Project name.
    #[arg(long = "project-name", short = 'p')]
    project_name: Option<String>,
    /// Variables for interpolation, instead of the project's .env.
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Project directory (default: the current one).
    #[arg(long)]
    project_directory: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: ComposeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ComposeCommand {
    /// Print the resolved project: files merged, variables interpolated.
    Config {
        /// Only the service names.
        #[arg(long)]
        services: bool,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
    },
}

pub async fn run(_ctx: &Context, args: Args) -> CommandResult {
    let working_dir = match args.project_directory {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    let options = LoadOptions {
        files: args.files,
        project_name: args.project_name,
        env_files: args.env_file,
        working_dir,
        environ: std::env::vars().collect(),
    };
    let project = load_project(&options)?;
    match args.command {
        ComposeCommand::Config { services: true, .. } => {
            for name in project.model.services.keys() {
                println!("{name}");
            }
        }
        ComposeCommand::Config { format, .. } => match format.as_str() {
            "json" => println!("{}", serde_json::to_string_pretty(&serde_json::to_value(&project.resolved)?)?),
            "yaml" => print!("{}", serde_norway::to_string(&project.resolved)?),
            other => return Err(format!("unknown format {other:?}: yaml or json").into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}
