use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{InspectImageRequest, ListImagesRequest};
use serde_json::json;

use super::{CommandResult, Context, Format};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Only image ids.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Image names or ids.
    #[arg(required = true)]
    images: Vec<String>,
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}{}", units[unit]).replace(".000", "")
    }
}

fn split_tag(tag: &str) -> (String, String) {
    let slash = tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    match tag[slash..].rfind(':') {
        Some(i) => (tag[..slash + i].to_owned(), tag[slash + i + 1..].to_owned()),
        None => (tag.to_owned(), "<none>".to_owned()),
    }
}

pub fn familiar(repo: &str) -> String {
    repo.strip_prefix("docker.io/library/").or_else(|| repo.strip_prefix("docker.io/")).unwrap_or(repo).to_owned()
}

pub fn image_json(i: &berth_proto::v1::Image) -> serde_json::Value {
    json!({
        "Id": i.id,
        "RepoTags": i.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": i.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Created": i.created,
        "Size": i.size,
        "Architecture": i.architecture,
        "Os": i.os,
        "RootFS": { "Type": "layers", "Layers": i.layers },
        "Config": serde_json::from_str::<serde_json::Value>(&i.config_json).unwrap_or(serde_json::Value::Null),
    })
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let images = agent.images().list(ListImagesRequest {}).await.map_err(|s| CallError::from_status("images", s))?.into_inner().images;
    if args.quiet {
        for i in &images {
            println!("{}", &i.id.trim_start_matches("sha256:")[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&images.iter().map(image_json).collect::<Vec<_>>())?),
        Format::Text => {
            println!("{:<40} {:<12} {:<14} {:<22} SIZE", "REPOSITORY", "TAG", "IMAGE ID", "CREATED");
            for i in &images {
                let id = &i.id.trim_start_matches("sha256:")[..12];
                let names: Vec<(String, String)> =
                    if i.tags.is_empty() { vec![("<none>".into(), "<none>".into())] } else { i.tags.iter().map(|t| split_tag(t)).collect() };
                for (repo, tag) in names {
                    println!("{:<40} {:<12} {:<14} {:<22} {}", familiar(&repo), tag, id, i.created, human_size(i.size));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn inspect(ctx: &Context, args: InspectArgs) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut found = Vec::new();
    for name in &args.images {
        let image =
            agent.images().inspect(InspectImageRequest { reference: name.clone() }).await.map_err(|s| CallError::from_status("inspect", s))?.into_inner();
        found.push(image_json(&image));
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500_000), "1.500MB");
        assert_eq!(split_tag("127.0.0.1:5000/busybox:oci"), ("127.0.0.1:5000/busybox".into(), "oci".into()));
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
    }
}
