use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::RemoveImageRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the image even when several names point at it.
    #[arg(long, short)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut failed = false;
    for image in args.images {
        match agent.images().remove(RemoveImageRequest { reference: image.clone(), force: args.force }).await {
            Ok(response) => {
                let response = response.into_inner();
                for name in response.untagged {
                    println!("Untagged: {}", super::images::familiar(&name));
                }
                for id in response.deleted {
                    println!("Deleted: {id}");
                }
            }
            Err(status) => {
                // Like docker: report each failure and go on with the others.
                eprintln!("berth: {}", CallError::from_status("rmi", status));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
