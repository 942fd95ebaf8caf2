use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{RegistryAuth, SearchImagesRequest};

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to look for; `host[:port]/words` searches that registry (its search API, or
    /// its catalog), anything else Docker Hub.
    term: String,
    /// At most this many results (1 to 100).
    #[arg(long, default_value_t = 25)]
    limit: u32,
    /// `is-official=true|false`, `is-automated=true|false`, `stars=N` (at least N).
    #[arg(long, short)]
    filter: Vec<String>,
    /// Descriptions in full.
    #[arg(long)]
    no_trunc: bool,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let registry = berth_host::credentials::registry_of(&args.term);
    let auth = berth_host::credentials::load(&registry)?.map(|l| RegistryAuth { username: l.username, password: l.password });
    let request = SearchImagesRequest { term: args.term.clone(), limit: args.limit, filters: args.filter.clone(), auth };
    let results = agent.images().search(request).await.map_err(|s| CallError::from_status("search", s))?.into_inner().results;
    let description = |d: &str| {
        if args.no_trunc || d.chars().count() <= 45 {
            d.to_owned()
        } else {
            format!("{}…", d.chars().take(44).collect::<String>())
        }
    };
    let name_width = results.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let desc_width = results.iter().map(|r| description(&r.description).chars().count()).max().unwrap_or(0).max(11);
    println!("{:name_width$}   {:desc_width$}   {:5}   OFFICIAL", "NAME", "DESCRIPTION", "STARS");
    for r in &results {
        println!("{:name_width$}   {:desc_width$}   {:<5}   {}", r.name, description(&r.description), r.star_count, if r.is_official { "[OK]" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}
