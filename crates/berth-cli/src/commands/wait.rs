use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::WaitContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Prints each container's exit code once it stops.
pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut failed = false;
    for id in args.containers {
        match agent.containers().wait(WaitContainerRequest { id, condition: String::new() }).await {
            Ok(response) => println!("{}", response.into_inner().exit_code),
            Err(status) => {
                eprintln!("berth: {}", CallError::from_status("wait", status));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
