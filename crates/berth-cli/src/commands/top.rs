use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::TopRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// Options for ps (`berth top C aux`), as `docker top`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let top = agent
        .containers()
        .top(TopRequest { id: args.container, ps_args: args.ps_args.join(" ") })
        .await
        .map_err(|s| CallError::from_status("top", s))?
        .into_inner();
    let rows: Vec<Vec<String>> = top.processes.into_iter().map(|r| r.columns).collect();
    super::ps::print_table(&top.titles, &rows);
    Ok(ExitCode::SUCCESS)
}
