//! `cp CONTAINER:PATH DEST` and `cp SRC CONTAINER:PATH`: files and directories out of
//! and into a container, as tars (`-` for a tar on stdout or stdin).

use std::process::ExitCode;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Copied-in files belong to the container's user (when it has one), as docker's
    /// archive mode; otherwise they keep their owners.
    #[arg(short = 'a', long)]
    archive: bool,
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
                super::export::archive_to(&agent, container, path, false, &mut std::io::stdout().lock()).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut tar_bytes = Vec::new();
            super::export::archive_to(&agent, container, path, false, &mut tar_bytes).await?;
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
        (None, Some((container, path))) => {
            let tar_bytes = if args.source == "-" {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)?;
                data
            } else {
                let source = std::path::Path::new(&args.source);
                let meta = std::fs::symlink_metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
                let name = source.canonicalize()?.file_name().map(|n| n.to_owned()).ok_or_else(|| format!("cannot copy {}", source.display()))?;
                let mut builder = tar::Builder::new(Vec::new());
                builder.follow_symlinks(false);
                if meta.is_dir() {
                    builder.append_dir_all(&name, source)?;
                } else {
                    builder.append_path_with_name(source, &name)?;
                }
                builder.into_inner()?
            };
            let (sender, receiver) = tokio::sync::mpsc::channel::<berth_proto::v1::ExtractChunk>(4);
            let container = container.to_owned();
            let path = path.to_owned();
            tokio::spawn(async move {
                let mut first = true;
                for chunk in tar_bytes.chunks(256 * 1024) {
                    let message = berth_proto::v1::ExtractChunk {
                        id: if first { container.clone() } else { String::new() },
                        path: if first { path.clone() } else { String::new() },
                        data: chunk.to_vec(),
                        to_container_user: args.archive,
                    };
                    first = false;
                    if sender.send(message).await.is_err() {
                        return;
                    }
                }
            });
            agent
                .containers()
                .extract(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await
                .map_err(|s| berth_host::agent::CallError::from_status("cp", s))?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Err("copying between containers or between local paths is not supported: one side must be CONTAINER:PATH".into()),
    }
}
