use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::InspectImageRequest;

use super::{CommandResult, Context, Format};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    image: String,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let steps =
        agent.images().history(InspectImageRequest { reference: args.image }).await.map_err(|s| CallError::from_status("history", s))?.into_inner().steps;
    match args.format {
        Format::Json => {
            let list: Vec<_> =
                steps.iter().map(|s| serde_json::json!({ "Created": s.created, "CreatedBy": s.created_by, "Comment": s.comment, "Size": s.size })).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            println!("{:<22} {:<50} {:>10}  COMMENT", "CREATED", "CREATED BY", "SIZE");
            for s in steps {
                let by: String = s.created_by.chars().take(50).collect();
                println!("{:<22} {:<50} {:>10}  {}", s.created, by, s.size, s.comment);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
