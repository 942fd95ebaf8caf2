//! `inspect`: containers and images, in docker's JSON shapes (containers first, as
//! docker looks them up).

use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ContainerRef, InspectImageRequest};
use berth_proto::ErrorKind;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this kind of object: container or image.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Container or image names or ids.
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        if args.kind.as_deref() != Some("image") {
            match agent.containers().inspect(ContainerRef { id: name.clone() }).await {
                Ok(details) => {
                    found.push(serde_json::from_str::<serde_json::Value>(&details.into_inner().inspect_json)?);
                    continue;
                }
                Err(status) if ErrorKind::from_grpc_code(status.code()) == ErrorKind::NotFound => {}
                Err(status) => return Err(CallError::from_status("inspect", status).into()),
            }
        }
        if args.kind.as_deref() != Some("container") {
            match agent.images().inspect(InspectImageRequest { reference: name.clone() }).await {
                Ok(image) => {
                    found.push(super::images::image_json(&image.into_inner()));
                    continue;
                }
                Err(status) if ErrorKind::from_grpc_code(status.code()) == ErrorKind::NotFound => {}
                Err(status) => return Err(CallError::from_status("inspect", status).into()),
            }
        }
        eprintln!("berth: no such object: {name}");
        failed = true;
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
