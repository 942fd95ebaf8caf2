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
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let info = agent.info(Duration::from_secs(10)).await?;
    match args.format {
        Format::Json => {
            let out = json!({
                "hostname": info.hostname,
                "cpus": info.cpus,
                "memory_bytes": info.memory_bytes,
                "kernel_version": info.kernel_version,
                "operating_system": info.operating_system,
                "arch": info.arch,
                "uptime_seconds": info.uptime_seconds,
                "placement": info.placement,
                "root_dir": info.root_dir,
                "pid": info.pid,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            println!("Placement:        {}", info.placement);
            println!("Operating system: {}", info.operating_system);
            println!("Kernel version:   {}", info.kernel_version);
            println!("Architecture:     {}", info.arch);
            println!("CPUs:             {}", info.cpus);
            println!("Total memory:     {:.1} MiB", info.memory_bytes as f64 / 1048576.0);
            println!("Hostname:         {}", info.hostname);
            println!("Uptime:           {} s", info.uptime_seconds);
            println!("Engine root dir:  {}", info.root_dir);
        }
    }
    Ok(ExitCode::SUCCESS)
}
