use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{PushRequest, RegistryAuth};

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `registry/repository:tag` to push as (tag the image first with `berth tag`).
    reference: String,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let auth = berth_host::credentials::load(&berth_host::credentials::registry_of(&args.reference))?
        .map(|l| RegistryAuth { username: l.username, password: l.password });
    println!("The push refers to {}", args.reference);
    let pushed =
        agent.images().push(PushRequest { reference: args.reference.clone(), auth }).await.map_err(|s| CallError::from_status("push", s))?.into_inner();
    for blob in &pushed.blobs {
        let short = &blob.digest.trim_start_matches("sha256:")[..12];
        let what = match blob.outcome.as_str() {
            "exists" => "Layer already exists",
            "mounted" => "Mounted from another repository",
            _ => "Pushed",
        };
        println!("{short}: {what}");
    }
    let tag = args.reference.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    println!("{tag}: digest: {} size: {}", pushed.manifest_digest, pushed.manifest_size);
    Ok(ExitCode::SUCCESS)
}
