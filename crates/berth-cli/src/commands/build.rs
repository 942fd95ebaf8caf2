use std::io::Write;
use std::process::ExitCode;

use berth_proto::v1::BuildSpec;

use super::{CommandResult, Context};
use crate::engine;

/// `docker build`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name and optionally a tag (name:tag); repeatable.
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short, long)]
    file: Option<String>,
    /// A build-time variable, KEY=VALUE (or KEY: from this environment); repeatable.
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// A label for the image, KEY=VALUE; repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// The stage to build up to.
    #[arg(long, default_value = "")]
    target: String,
    /// Run every step again.
    #[arg(long)]
    no_cache: bool,
    /// Pull the base images even when present.
    #[arg(long)]
    pull: bool,
    /// Print only the image's id.
    #[arg(short, long)]
    quiet: bool,
    /// RUN's network: default, none or host.
    #[arg(long, default_value = "")]
    network: String,
    /// The build context: a folder.
    path: String,
}

fn pairs(list: &[String], from_env: bool) -> std::collections::HashMap<String, String> {
    list.iter()
        .filter_map(|item| match item.split_once('=') {
            Some((k, v)) => Some((k.to_owned(), v.to_owned())),
            None if from_env => std::env::var(item).ok().map(|v| (item.clone(), v)),
            None => Some((item.clone(), String::new())),
        })
        .collect()
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let dir = std::path::PathBuf::from(&args.path);
    let dockerfile = match &args.file {
        // -f is relative to the current folder, as docker takes it.
        Some(f) => std::fs::canonicalize(f).map(|p| p.display().to_string()).unwrap_or_else(|_| f.clone()),
        None => String::new(),
    };
    let spec = BuildSpec {
        dockerfile,
        tags: args.tag,
        build_args: pairs(&args.build_arg, true),
        labels: pairs(&args.label, false),
        target: args.target,
        no_cache: args.no_cache,
        pull: args.pull,
        network_mode: args.network,
        ..Default::default()
    };
    let quiet = args.quiet;
    let id = berth_host::build::build(&agent, &dir, spec, |text| {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    })
    .await?;
    if quiet {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}
