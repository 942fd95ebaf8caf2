use std::collections::HashMap;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::pull_event::Event;
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
    let request = berth_host::credentials::pull_request(&args.reference, args.platform.as_deref().unwrap_or_default())?;
    let mut stream = agent.images().pull(request).await.map_err(|s| CallError::from_status("pull", s))?.into_inner();
    let tty = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    // On a terminal, one progress bar per layer; elsewhere, a line per finished layer.
    let bars = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut layers: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    if !args.quiet {
        println!("Pulling {}", args.reference);
    }
    while let Some(event) = stream.next().await {
        let event = event.map_err(|s| CallError::from_status("pull", s))?;
        match event.event {
            Some(Event::Resolved(r)) if !args.quiet => println!("Manifest {} ({} layers)", r.manifest_digest, r.layers),
            Some(Event::Layer(l)) if tty => {
                let bar = layers.entry(l.digest.clone()).or_insert_with(|| {
                    let bar = bars.add(indicatif::ProgressBar::new(l.total));
                    bar.set_style(style.clone());
                    bar.set_prefix(short(&l.digest).to_owned());
                    bar.set_message("Downloading");
                    bar
                });
                bar.set_position(l.done);
            }
            Some(Event::LayerDone(l)) if !args.quiet => {
                let done = if l.cached { "Already exists" } else { "Pull complete" };
                match layers.get(&l.digest) {
                    Some(bar) if tty => bar.finish_with_message(done),
                    _ if tty => {
                        let _ = bars.println(format!("{}: {done}", short(&l.digest)));
                    }
                    _ => println!("{}: {done}", short(&l.digest)),
                }
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
