use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::{CommandResult, Context, Format};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let client = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": berth_proto::API_VERSION,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let (endpoint, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let engine = agent.version(Duration::from_secs(10)).await?;
    match args.format {
        Format::Json => {
            let out = json!({
                "client": client,
                "engine": {
                    "version": engine.engine_version,
                    "api_version": engine.api_version,
                    "kernel_version": engine.kernel_version,
                    "os": engine.os,
                    "arch": engine.arch,
                    "git_commit": engine.git_commit,
                    "endpoint": endpoint.to_string(),
                },
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            println!("Client:");
            println!(" Version:        {}", env!("CARGO_PKG_VERSION"));
            println!(" API version:    {}", berth_proto::API_VERSION);
            println!(" OS/Arch:        {}/{}", std::env::consts::OS, std::env::consts::ARCH);
            println!();
            println!("Engine:");
            println!(" Version:        {}", engine.engine_version);
            println!(" API version:    {}", engine.api_version);
            println!(" Kernel version: {}", engine.kernel_version);
            println!(" OS/Arch:        {}/{}", engine.os, engine.arch);
            println!(" Endpoint:       {endpoint}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
