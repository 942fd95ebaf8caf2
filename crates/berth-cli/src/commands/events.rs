use std::process::ExitCode;

use futures::StreamExt;
use serde_json::json;

use super::{CommandResult, Context, Format};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First print the recent events the engine still holds.
    #[arg(long)]
    replay: bool,
    /// Only events of this type (repeatable), e.g. `engine`.
    #[arg(long = "type")]
    types: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut stream = agent.events(args.replay, args.types).await?;
    let mut engine_stopping = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            // The engine said it was stopping: the stream breaking is the end, not an error.
            Err(_) if engine_stopping => break,
            Err(status) => return Err(format!("the event stream broke: {}", status.message()).into()),
        };
        engine_stopping = event.r#type == "engine" && event.action == "stopping";
        match args.format {
            Format::Json => println!(
                "{}",
                json!({
                    "seq": event.seq,
                    "type": event.r#type,
                    "action": event.action,
                    "time_unix_nanos": event.time_unix_nanos,
                    "attributes": event.attributes,
                })
            ),
            Format::Text => {
                let mut attrs: Vec<_> = event.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                attrs.sort();
                println!("{} {}.{} {}", event.time_unix_nanos, event.r#type, event.action, attrs.join(" "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
