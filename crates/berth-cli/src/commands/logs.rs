use std::io::Write;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::LogsRequest;
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output.
    #[arg(long, short)]
    follow: bool,
    /// Show logs since a timestamp (RFC 3339 or unix) or a relative time (42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    until: Option<String>,
    /// Number of lines from the end ("all" for every line).
    #[arg(long, short = 'n', default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(long, short)]
    timestamps: bool,
    container: String,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let tail = if args.tail == "all" { -1 } else { args.tail.parse::<i64>().map_err(|_| format!("invalid tail: {:?}", args.tail))? };
    let mut stream = agent
        .containers()
        .logs(LogsRequest {
            id: args.container,
            follow: args.follow,
            stdout: true,
            stderr: true,
            since: args.since.unwrap_or_default(),
            until: args.until.unwrap_or_default(),
            tail,
            timestamps: args.timestamps,
        })
        .await
        .map_err(|s| CallError::from_status("logs", s))?
        .into_inner();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|s| CallError::from_status("logs", s))?;
        let mut line = Vec::new();
        if args.timestamps {
            line.extend_from_slice(chunk.time.as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&chunk.data);
        if chunk.stream == 2 {
            std::io::stderr().write_all(&line)?;
        } else {
            std::io::stdout().write_all(&line)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
