use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::WaitContainerRequest;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not attach stdin.
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

/// Attaches to a running container's output (and stdin, if it was created with -i)
/// until it stops; the exit code is the container's.
pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let details = agent
        .containers()
        .inspect(berth_proto::v1::ContainerRef { id: args.container.clone() })
        .await
        .map_err(|s| CallError::from_status("attach", s))?
        .into_inner();
    let json: serde_json::Value = serde_json::from_str(&details.inspect_json)?;
    if json["State"]["Running"] != true {
        return Err("you cannot attach to a stopped container, start it first".into());
    }
    let tty = json["Config"]["Tty"] == true;
    let stdin = !args.no_stdin && json["Config"]["OpenStdin"] == true;
    let attached = super::run::attach_streams(&agent, &args.container, stdin, tty).await?;
    let _raw = (tty && stdin && std::io::IsTerminal::is_terminal(&std::io::stdin())).then(crate::terminal::RawTerminal::enable);
    let code = agent
        .containers()
        .wait(WaitContainerRequest { id: args.container, condition: "not-running".into() })
        .await
        .map_err(|s| CallError::from_status("wait", s))?
        .into_inner()
        .exit_code;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), attached).await;
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)))
}
