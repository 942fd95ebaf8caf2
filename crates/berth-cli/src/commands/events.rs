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
    while let Some(event) = stream.next().await {
        let event = event?;
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
