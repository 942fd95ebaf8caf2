//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::HashMap;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{CreateVolumeRequest, ListVolumesRequest, PruneVolumesRequest, RemoveVolumeRequest, Volume, VolumeRef};
use clap::Subcommand;
use serde_json::json;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Driver options (KEY=VALUE).
        #[arg(long = "opt", short = 'o')]
        opts: Vec<String>,
        /// Set metadata (KEY=VALUE).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Volume driver (only "local").
        #[arg(long, short, default_value = "local")]
        driver: String,
        /// The name (default: a random one).
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Filter (name, label, dangling, driver).
        #[arg(long, short)]
        filter: Vec<String>,
        /// Only names.
        #[arg(long, short)]
        quiet: bool,
        /// json, or a template such as '{{.Name}}'.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes in docker's JSON shape.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (not while a container uses them).
    Rm {
        /// No error for a volume that does not exist.
        #[arg(long, short)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Write a volume's files as a tar.
    Export {
        /// Write to a file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        name: String,
    },
    /// Unpack a tar (a file, or - for stdin) into a volume, made if missing.
    Import {
        name: String,
        #[arg(default_value = "-")]
        file: String,
    },
    /// Make a new volume with a copy of another's files.
    Clone { source: String, target: String },
    /// Remove unused anonymous volumes (with --all, every unused volume).
    Prune {
        #[arg(long, short)]
        all: bool,
        /// Only volumes with this label (label=KEY[=VALUE]).
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt (berth never prompts).
        #[arg(long, short)]
        force: bool,
    },
}

fn pairs(list: &[String]) -> HashMap<String, String> {
    list.iter().map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((l.clone(), String::new()))).collect()
}

/// docker's `volume inspect` shape.
pub fn volume_json(v: &Volume) -> serde_json::Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    })
}

pub async fn run(ctx: &Context, command: VolumeCommand) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut client = agent.volumes();
    match command {
        VolumeCommand::Create { opts, labels, driver, name } => {
            let request = CreateVolumeRequest { name: name.unwrap_or_default(), driver, labels: pairs(&labels), driver_opts: pairs(&opts) };
            let volume = client.create(request).await.map_err(|s| CallError::from_status("volume create", s))?.into_inner();
            println!("{}", volume.name);
        }
        VolumeCommand::Ls { filter, quiet, format } => {
            let list = client
                .list(ListVolumesRequest { filters: filter, size: false })
                .await
                .map_err(|s| CallError::from_status("volume ls", s))?
                .into_inner()
                .volumes;
            match (quiet, format.as_deref()) {
                (true, _) => list.iter().for_each(|v| println!("{}", v.name)),
                (_, Some("json")) => list.iter().for_each(|v| println!("{}", volume_json(v))),
                (_, Some(template)) => list.iter().for_each(|v| {
                    println!(
                        "{}",
                        template.replace("{{.Name}}", &v.name).replace("{{.Driver}}", &v.driver).replace("{{.Mountpoint}}", &v.mountpoint).replace("\\t", "\t")
                    )
                }),
                _ => {
                    let titles = vec!["DRIVER".to_owned(), "VOLUME NAME".to_owned()];
                    let rows: Vec<Vec<String>> = list.iter().map(|v| vec![v.driver.clone(), v.name.clone()]).collect();
                    super::ps::print_table(&titles, &rows);
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut found = Vec::new();
            let mut failed = false;
            for name in names {
                match client.inspect(VolumeRef { name: name.clone() }).await {
                    Ok(v) => found.push(volume_json(&v.into_inner())),
                    Err(status) => {
                        eprintln!("berth: {}", CallError::from_status("volume inspect", status));
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&found)?);
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        VolumeCommand::Rm { force, names } => {
            return super::each(&names, "volume rm", |name| {
                let mut client = client.clone();
                async move { client.remove(RemoveVolumeRequest { name, force }).await.map(|_| ()) }
            })
            .await;
        }
        VolumeCommand::Export { output, name } => {
            use futures::StreamExt;
            use std::io::Write;
            if output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err("cowardly refusing to write a tar to a terminal: use -o or redirect".into());
            }
            let mut stream = client.export(VolumeRef { name }).await.map_err(|s| CallError::from_status("volume export", s))?.into_inner();
            let mut out: Box<dyn Write> = match output {
                Some(path) => Box::new(std::fs::File::create(path)?),
                None => Box::new(std::io::stdout().lock()),
            };
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk.map_err(|s| CallError::from_status("volume export", s))?.data)?;
            }
            out.flush()?;
        }
        VolumeCommand::Import { name, file } => {
            let data = if file == "-" {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)?;
                data
            } else {
                std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?
            };
            let (sender, receiver) = tokio::sync::mpsc::channel::<berth_proto::v1::VolumeImportChunk>(4);
            tokio::spawn(async move {
                let mut chunks = data.chunks(256 * 1024).peekable();
                if chunks.peek().is_none() {
                    let _ = sender.send(berth_proto::v1::VolumeImportChunk { name: name.clone(), data: Vec::new() }).await;
                }
                for (i, chunk) in chunks.enumerate() {
                    let message = berth_proto::v1::VolumeImportChunk { name: if i == 0 { name.clone() } else { String::new() }, data: chunk.to_vec() };
                    if sender.send(message).await.is_err() {
                        return;
                    }
                }
            });
            let volume = client
                .import(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await
                .map_err(|s| CallError::from_status("volume import", s))?
                .into_inner();
            println!("{}", volume.name);
        }
        VolumeCommand::Clone { source, target } => {
            let volume = client
                .clone_volume(berth_proto::v1::CloneVolumeRequest { source, target })
                .await
                .map_err(|s| CallError::from_status("volume clone", s))?
                .into_inner();
            println!("{}", volume.name);
        }
        VolumeCommand::Prune { all, filter, .. } => {
            let pruned = client.prune(PruneVolumesRequest { all, filters: filter }).await.map_err(|s| CallError::from_status("volume prune", s))?.into_inner();
            println!("Deleted Volumes:");
            for name in pruned.deleted {
                println!("{name}");
            }
            println!("\nTotal reclaimed space: {}", super::stats::bytes(pruned.reclaimed_bytes));
        }
    }
    Ok(ExitCode::SUCCESS)
}
