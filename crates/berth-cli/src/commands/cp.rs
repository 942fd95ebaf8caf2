//! `cp CONTAINER:PATH DEST`: copies out of a container (a tar from the engine, unpacked
//! here, or `-` for the tar itself). Copying into a container is not supported yet.

use std::process::ExitCode;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    source: String,
    dest: String,
}

fn split(arg: &str) -> Option<(&str, &str)> {
    // `name:path`, where a local path would start with / or . (docker's rule).
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    match (split(&args.source), split(&args.dest)) {
        (Some((container, path)), None) => {
            if args.dest == "-" {
                super::export::archive_to(&agent, container, path, &mut std::io::stdout().lock()).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut tar_bytes = Vec::new();
            super::export::archive_to(&agent, container, path, &mut tar_bytes).await?;
            let dest = std::path::Path::new(&args.dest);
            let name = std::path::Path::new(path.trim_end_matches('/')).file_name().map(|n| n.to_owned());
            let mut archive = tar::Archive::new(std::io::Cursor::new(tar_bytes));
            archive.set_preserve_permissions(true);
            if dest.is_dir() {
                archive.unpack(dest)?;
            } else {
                // Into a new name: unpack next to it, then rename the one top entry.
                let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let scratch = parent.join(format!(".berth-cp-{}", std::process::id()));
                std::fs::create_dir_all(&scratch)?;
                let result = archive.unpack(&scratch).and_then(|()| match &name {
                    Some(name) => std::fs::rename(scratch.join(name), dest),
                    None => std::fs::rename(&scratch, dest),
                });
                let _ = std::fs::remove_dir_all(&scratch);
                result?;
            }
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(_)) => Err("copying into a container is not supported yet".into()),
        _ => Err("copying between containers or between local paths is not supported: one side must be CONTAINER:PATH".into()),
    }
}
