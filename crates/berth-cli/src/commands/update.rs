use berth_proto::v1::{Resources, UpdateContainerRequest};

use super::create::parse_bytes;
use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Memory limit.
    #[arg(long, short = 'm')]
    memory: Option<String>,
    /// Memory plus swap; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares.
    #[arg(long, short = 'c')]
    cpu_shares: Option<i64>,
    /// Pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy.
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let resources = Resources {
        memory: args.memory.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
        memory_swap: args.memory_swap.as_deref().map(parse_bytes).transpose()?.unwrap_or(0),
        nano_cpus: args.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
        cpu_shares: args.cpu_shares.unwrap_or(0),
        pids_limit: args.pids_limit.unwrap_or(0),
    };
    let restart_policy = args.restart.as_deref().map(super::create::parse_restart).transpose()?;
    super::each(&args.containers, "update", |id| {
        let mut client = agent.containers();
        let request = UpdateContainerRequest { id, resources: Some(resources), restart_policy: restart_policy.clone() };
        async move { client.update(request).await.map(|_| ()) }
    })
    .await
}
