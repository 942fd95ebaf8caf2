use std::io::Write;
use std::process::ExitCode;

use berth_host::agent::{AgentClient, CallError};
use berth_proto::v1::ArchiveRequest;
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to a file instead of stdout.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    container: String,
}

/// Streams a tar of `path` in the container into `out` (`cp`'s view, volumes
/// included), or with `export` the container's own filesystem.
pub async fn archive_to(
    agent: &AgentClient,
    container: &str,
    path: &str,
    export: bool,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = agent
        .containers()
        .archive(ArchiveRequest { id: container.to_owned(), path: path.to_owned(), export })
        .await
        .map_err(|s| CallError::from_status("archive", s))?
        .into_inner();
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk.map_err(|s| CallError::from_status("archive", s))?.data)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    if args.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err("cowardly refusing to save to a terminal. Use the -o flag or redirect".into());
    }
    match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path)?;
            archive_to(&agent, &args.container, "/", true, &mut file).await?;
        }
        None => archive_to(&agent, &args.container, "/", true, &mut std::io::stdout().lock()).await?,
    }
    Ok(ExitCode::SUCCESS)
}
