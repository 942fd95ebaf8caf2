use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::SaveRequest;
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    if args.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err("refusing to write a tar to a terminal; use -o FILE or a redirect".into());
    }
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut stream = agent.images().save(SaveRequest { references: args.images }).await.map_err(|s| CallError::from_status("save", s))?.into_inner();
    // Into a temp file next to the target, renamed when whole: no half archive is left.
    let (mut out, temp): (Box<dyn Write>, Option<PathBuf>) = match &args.output {
        Some(path) => {
            let temp = path.with_extension("partial");
            (Box::new(std::fs::File::create(&temp)?), Some(temp))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let result = async {
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk.map_err(|s| CallError::from_status("save", s))?.data)?;
        }
        out.flush()?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    drop(out);
    match (result, temp, &args.output) {
        (Ok(()), Some(temp), Some(path)) => std::fs::rename(temp, path)?,
        (Err(err), Some(temp), _) => {
            let _ = std::fs::remove_file(temp);
            return Err(err);
        }
        (Err(err), None, _) => return Err(err),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}
