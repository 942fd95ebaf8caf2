//! `ps`: docker's columns, `-a`, `-q`, `--filter`, `--format` (json, or a template
//! with `{{.ID}}`-style fields; `table` adds the header).

use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ContainerSummary, ListContainersRequest};
use serde_json::json;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(long, short)]
    all: bool,
    /// Only display container IDs.
    #[arg(long, short)]
    quiet: bool,
    /// Filter output (id, name, label, status, exited, ancestor).
    #[arg(long, short)]
    filter: Vec<String>,
    /// json, or a template such as 'table {{.ID}}\t{{.Names}}'.
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
}

pub fn print_table(titles: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = titles.iter().map(|t| t.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    println!("{}", line(titles));
    for row in rows {
        println!("{}", line(row));
    }
}

fn field(c: &ContainerSummary, name: &str, trunc: bool) -> String {
    match name {
        "ID" => {
            if trunc {
                c.id[..12.min(c.id.len())].to_owned()
            } else {
                c.id.clone()
            }
        }
        "Names" => c.name.clone(),
        "Image" => super::images::familiar(&c.image),
        "Command" => {
            let quoted = format!("\"{}\"", c.command);
            if trunc && quoted.chars().count() > 22 {
                format!("\"{}…\"", c.command.chars().take(19).collect::<String>())
            } else {
                quoted
            }
        }
        "CreatedAt" => chrono_like(c.created),
        "Status" => c.status.clone(),
        "State" => c.state.clone(),
        "Ports" => ports_text(c),
        "Networks" => c.networks.join(","),
        "Labels" => {
            let mut labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            labels.join(",")
        }
        _ => "<no value>".to_string(),
    }
}

/// docker's PORTS column: `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 0.0.0.0:5353->53/udp`.
pub fn ports_text(c: &ContainerSummary) -> String {
    c.ports
        .iter()
        .map(|p| format!("{}->{}/{}", berth_proto::ports::host_address(&p.host_ip, p.host_port), p.container_port, p.protocol))
        .collect::<Vec<_>>()
        .join(", ")
}

fn chrono_like(unix: i64) -> String {
    format!("{unix}")
}

fn summary_json(c: &ContainerSummary) -> serde_json::Value {
    json!({
        "ID": c.id, "Names": c.name, "Image": c.image, "ImageID": c.image_id, "Command": c.command,
        "CreatedAt": c.created, "State": c.state, "Status": c.status, "Labels": c.labels, "ExitCode": c.exit_code,
        "Ports": ports_text(c), "Networks": c.networks.join(","),
    })
}

/// Fills `{{.Field}}` placeholders (and `\t`).
fn render(template: &str, c: &ContainerSummary, trunc: bool) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let inner = rest[start + 2..start + end].trim();
        if inner == "json ." {
            out.push_str(&summary_json(c).to_string());
        } else {
            out.push_str(&field(c, inner.trim_start_matches('.'), trunc));
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out.replace("\\t", "\t")
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let list = agent
        .containers()
        .list(ListContainersRequest { all: args.all, filters: args.filter.clone() })
        .await
        .map_err(|s| CallError::from_status("ps", s))?
        .into_inner()
        .containers;
    let trunc = !args.no_trunc;
    if args.quiet {
        for c in &list {
            println!("{}", field(c, "ID", trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format.as_deref() {
        Some("json") => {
            for c in &list {
                println!("{}", summary_json(c));
            }
        }
        Some(template) => {
            let (header, body) = match template.strip_prefix("table") {
                Some(body) => (true, body.trim_start()),
                None => (false, template),
            };
            if header {
                let titles = body.replace("{{.", "").replace("}}", "").replace("\\t", "\t").to_uppercase();
                println!("{titles}");
            }
            for c in &list {
                println!("{}", render(body, c, trunc));
            }
        }
        None => {
            let titles: Vec<String> = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"].map(str::to_owned).to_vec();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        field(c, "ID", trunc),
                        field(c, "Image", trunc),
                        field(c, "Command", trunc),
                        format!("{} ago", ago(now - c.created)),
                        c.status.clone(),
                        ports_text(c),
                        c.name.clone(),
                    ]
                })
                .collect();
            print_table(&titles, &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ago(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{} seconds", s.max(1)),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 86400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_fields() {
        let c = ContainerSummary { id: "0123456789abcdef".into(), name: "web".into(), state: "running".into(), ..Default::default() };
        assert_eq!(render("{{.ID}}\\t{{.Names}} {{ .State }}", &c, true), "0123456789ab\tweb running");
        assert_eq!(render("{{.ID}}", &c, false), "0123456789abcdef");
    }
}
