//! `port`: a running container's published ports, as `docker port` prints them.

use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::ContainerRef;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// PRIVATE_PORT[/PROTO]: only this port's host addresses.
    port: Option<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let details = agent.containers().inspect(ContainerRef { id: args.container.clone() }).await.map_err(|s| CallError::from_status("port", s))?.into_inner();
    let ports = details.summary.map(|s| s.ports).unwrap_or_default();
    let host = berth_proto::ports::host_address;
    match args.port {
        Some(wanted) => {
            let (port, proto) = wanted.split_once('/').unwrap_or((&wanted, "tcp"));
            let port: u32 = port.parse().map_err(|_| format!("invalid port {wanted:?}"))?;
            let found: Vec<_> = ports.iter().filter(|p| p.container_port == port && p.protocol == proto).collect();
            if found.is_empty() {
                return Err(format!("no public port '{port}/{proto}' published for {}", args.container).into());
            }
            found.iter().for_each(|p| println!("{}", host(&p.host_ip, p.host_port)));
        }
        None => ports.iter().for_each(|p| println!("{}/{} -> {}", p.container_port, p.protocol, host(&p.host_ip, p.host_port))),
    }
    Ok(ExitCode::SUCCESS)
}
