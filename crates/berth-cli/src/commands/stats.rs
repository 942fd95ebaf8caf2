//! `stats`: CPU, memory, network, block I/O and pids per container, streaming (a table
//! a second) or once (`--no-stream`).

use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ListContainersRequest, StatsRequest, StatsResponse};
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show one reading and exit.
    #[arg(long)]
    no_stream: bool,
    /// json: one object per container and reading.
    #[arg(long)]
    format: Option<String>,
    /// Containers (default: all running).
    containers: Vec<String>,
}

/// docker's `units.BytesSize` (binary units, 3 significant digits).
pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", format!("{value:.3}").trim_end_matches('0').trim_end_matches('.'), units[unit])
}

/// docker's `units.HumanSize` (decimal units), used for I/O.
fn decimal(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format!("{value:.3}").trim_end_matches('0').trim_end_matches('.'), units[unit])
}

fn row(s: &StatsResponse) -> Vec<String> {
    let mem_percent = if s.memory_limit > 0 { s.memory_usage as f64 / s.memory_limit as f64 * 100.0 } else { 0.0 };
    vec![
        s.id[..12.min(s.id.len())].to_owned(),
        s.name.clone(),
        format!("{:.2}%", s.cpu_percent),
        format!("{} / {}", bytes(s.memory_usage), bytes(s.memory_limit)),
        format!("{mem_percent:.2}%"),
        format!("{} / {}", decimal(s.net_rx), decimal(s.net_tx)),
        format!("{} / {}", decimal(s.block_read), decimal(s.block_write)),
        s.pids.to_string(),
    ]
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let names = if args.containers.is_empty() {
        agent
            .containers()
            .list(ListContainersRequest { all: false, filters: Vec::new() })
            .await
            .map_err(|s| CallError::from_status("stats", s))?
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect()
    } else {
        args.containers.clone()
    };
    let mut streams = Vec::new();
    for name in &names {
        let stream = agent
            .containers()
            .stats(StatsRequest { id: name.clone(), stream: !args.no_stream })
            .await
            .map_err(|s| CallError::from_status("stats", s))?
            .into_inner();
        streams.push(stream);
    }
    let titles: Vec<String> = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"].map(str::to_owned).to_vec();
    loop {
        let mut rows = Vec::new();
        let mut readings = Vec::new();
        for stream in streams.iter_mut() {
            if let Some(Ok(reading)) = stream.next().await {
                rows.push(row(&reading));
                readings.push(reading);
            }
        }
        if rows.is_empty() && !names.is_empty() {
            break;
        }
        if args.format.as_deref() == Some("json") {
            for r in &readings {
                let v = serde_json::json!({
                    "ID": r.id, "Name": r.name, "CPUPerc": format!("{:.2}%", r.cpu_percent),
                    "MemUsage": format!("{} / {}", bytes(r.memory_usage), bytes(r.memory_limit)),
                    "NetIO": format!("{} / {}", decimal(r.net_rx), decimal(r.net_tx)),
                    "BlockIO": format!("{} / {}", decimal(r.block_read), decimal(r.block_write)),
                    "PIDs": r.pids.to_string(),
                });
                println!("{v}");
            }
        } else {
            super::ps::print_table(&titles, &rows);
        }
        if args.no_stream || names.is_empty() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(super::bytes(8 << 20), "8MiB");
        assert_eq!(super::bytes(1536), "1.5KiB");
        assert_eq!(super::decimal(0), "0B");
        assert_eq!(super::decimal(1_500_000), "1.5MB");
    }
}
