//! `berth diagnose [-o FILE]`: one archive for a bug report (berth_host::diagnose).

use std::process::ExitCode;

use super::{CommandResult, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it (default: berth-diagnose-<time>.tar.gz here).
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let out = args.output.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::path::PathBuf::from(format!("berth-diagnose-{secs}.tar.gz"))
    });
    let names = berth_host::diagnose::write(&ctx.home, &out, env!("CARGO_PKG_VERSION")).await?;
    println!("{} ({} files: {})", out.display(), names.len(), names.join(", "));
    Ok(ExitCode::SUCCESS)
}
