use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{pull_event::Event, PullRequest};
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, e.g. `busybox`, `127.0.0.1:5000/busybox:oci`, `repo@sha256:...`.
    reference: String,
    /// Pick this platform from a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Print only the final digest.
    #[arg(long, short)]
    quiet: bool,
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let auth = berth_host::credentials::load(&berth_host::credentials::registry_of(&args.reference))?
        .map(|l| berth_proto::v1::RegistryAuth { username: l.username, password: l.password });
    let request = PullRequest { reference: args.reference.clone(), platform: args.platform.clone().unwrap_or_default(), auth };
    let mut stream = agent.images().pull(request).await.map_err(|s| CallError::from_status("pull", s))?.into_inner();
    let tty = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut layers: BTreeMap<String, String> = BTreeMap::new();
    let mut out = std::io::stdout();
    if !args.quiet {
        println!("Pulling {}", args.reference);
    }
    while let Some(event) = stream.next().await {
        let event = event.map_err(|s| CallError::from_status("pull", s))?;
        match event.event {
            Some(Event::Resolved(r)) if !args.quiet => println!("Manifest {} ({} layers)", r.manifest_digest, r.layers),
            Some(Event::Layer(l)) if tty => {
                let pct = if l.total > 0 { l.done * 100 / l.total } else { 100 };
                layers.insert(l.digest.clone(), format!("{pct:>3}%"));
                let line: Vec<String> = layers.iter().map(|(d, p)| format!("{}: {p}", short(d))).collect();
                let _ = write!(out, "\r{}", line.join("  "));
                let _ = out.flush();
            }
            Some(Event::LayerDone(l)) if !args.quiet => {
                if tty {
                    let _ = write!(out, "\r\x1b[2K");
                }
                println!("{}: {}", short(&l.digest), if l.cached { "Already exists" } else { "Pull complete" });
                layers.remove(&l.digest);
            }
            Some(Event::Done(image)) => {
                if args.quiet {
                    println!("{}", image.repo_digests.first().cloned().unwrap_or(image.id));
                } else {
                    let digest = image.repo_digests.first().and_then(|d| d.split_once('@')).map(|(_, d)| d.to_owned());
                    println!("Digest: {}", digest.unwrap_or_default());
                    println!("Status: Downloaded image for {}", image.tags.first().cloned().unwrap_or(args.reference.clone()));
                    println!("Id: {}", image.id);
                }
                return Ok(ExitCode::SUCCESS);
            }
            _ => {}
        }
    }
    Err("the engine ended the pull without a result".into())
}
