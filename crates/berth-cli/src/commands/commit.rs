use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::CommitRequest;

use super::{CommandResult, Context};
use crate::engine;

/// `docker commit`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Author ("Name <email>").
    #[arg(short, long, default_value = "")]
    author: String,
    /// A Dockerfile instruction to apply to the image's config (repeatable).
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long, default_value = "")]
    message: String,
    /// Pause the container while committing (default true).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// repo[:tag] for the new image.
    reference: Option<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let image = agent
        .containers()
        .commit(CommitRequest {
            id: args.container,
            reference: args.reference.unwrap_or_default(),
            author: args.author,
            comment: args.message,
            changes: args.change,
            no_pause: !args.pause,
        })
        .await
        .map_err(|s| CallError::from_status("commit", s))?
        .into_inner();
    println!("{}", image.id);
    Ok(ExitCode::SUCCESS)
}
