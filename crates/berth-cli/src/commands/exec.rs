use std::io::Write;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ExecInput, ExecSpec};
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run the command in the background.
    #[arg(long, short)]
    detach: bool,
    /// Set environment variables.
    #[arg(long, short)]
    env: Vec<String>,
    /// Keep STDIN open.
    #[arg(long, short)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(long, short)]
    tty: bool,
    /// Username or UID.
    #[arg(long, short)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(long, short)]
    workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<ExecInput>(16);
    let spec = ExecSpec {
        container: args.container,
        cmd: args.command,
        env: args.env,
        user: args.user.unwrap_or_default(),
        working_dir: args.workdir.unwrap_or_default(),
        tty: args.tty,
        attach_stdin: args.interactive,
        detach: args.detach,
        privileged: args.privileged,
    };
    let (rows, cols) = if args.tty { crate::terminal::terminal_size() } else { (0, 0) };
    sender.send(ExecInput { spec: Some(spec), rows, cols, ..Default::default() }).await.map_err(|e| e.to_string())?;
    let mut output =
        agent.containers().exec(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.map_err(|s| CallError::from_status("exec", s))?.into_inner();
    if args.tty {
        crate::terminal::forward_resizes(sender.clone(), |rows, cols| ExecInput { rows, cols, ..Default::default() });
    }
    if args.interactive {
        super::run::forward_stdin(
            sender.clone(),
            |data| ExecInput { stdin: data, ..Default::default() },
            || ExecInput { close_stdin: true, ..Default::default() },
        );
    }
    let _keep_open = sender;
    let _raw = (args.tty && args.interactive && std::io::IsTerminal::is_terminal(&std::io::stdin())).then(crate::terminal::RawTerminal::enable);
    let mut code = 0;
    while let Some(message) = output.next().await {
        let message = message.map_err(|s| CallError::from_status("exec", s))?;
        if message.exited {
            code = message.exit_code;
            break;
        }
        if message.stream == 2 {
            std::io::stderr().write_all(&message.data)?;
        } else {
            std::io::stdout().write_all(&message.data)?;
            std::io::stdout().flush()?;
        }
    }
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)))
}
