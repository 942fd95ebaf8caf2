//! `berth network create|ls|inspect|rm|prune|connect|disconnect`.

use std::collections::HashMap;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::{ConnectNetworkRequest, CreateNetworkRequest, DisconnectNetworkRequest, ListNetworksRequest, NetworkRef, PruneNetworksRequest};
use clap::Subcommand;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        /// Driver (only "bridge").
        #[arg(long, short, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR form.
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address in the subnet.
        #[arg(long)]
        gateway: Option<String>,
        /// Allocate container addresses from this sub-range.
        #[arg(long)]
        ip_range: Option<String>,
        /// No access to or from outside the network.
        #[arg(long)]
        internal: bool,
        /// Allow manual attachment (always allowed here).
        #[arg(long)]
        attachable: bool,
        /// Set metadata (KEY=VALUE).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Driver options (KEY=VALUE).
        #[arg(long = "opt", short = 'o')]
        opts: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Filter (name, id, label, driver, type, dangling).
        #[arg(long, short)]
        filter: Vec<String>,
        /// Only ids.
        #[arg(long, short)]
        quiet: bool,
        /// Don't truncate ids.
        #[arg(long)]
        no_trunc: bool,
        /// json, or a template such as '{{.Name}}'.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show networks in docker's JSON shape.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (not while containers are attached).
    #[command(alias = "remove")]
    Rm {
        /// No error for a network that does not exist.
        #[arg(long, short)]
        force: bool,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every user network no container is attached to.
    Prune {
        /// Only networks with this label (label=KEY[=VALUE]).
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt (berth never prompts).
        #[arg(long, short)]
        force: bool,
    },
    /// Connect a container to a network (live when it runs).
    Connect {
        /// A network-scoped alias.
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        #[arg(long, short)]
        force: bool,
        network: String,
        container: String,
    },
}

fn pairs(list: &[String]) -> HashMap<String, String> {
    list.iter().map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((l.clone(), String::new()))).collect()
}

pub async fn run(ctx: &Context, command: NetworkCommand) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut client = agent.networks();
    match command {
        NetworkCommand::Create { driver, subnet, gateway, ip_range, internal, attachable, labels, opts, name } => {
            let request = CreateNetworkRequest {
                name,
                driver,
                subnet: subnet.unwrap_or_default(),
                gateway: gateway.unwrap_or_default(),
                ip_range: ip_range.unwrap_or_default(),
                internal,
                attachable,
                labels: pairs(&labels),
                options: pairs(&opts),
            };
            let network = client.create(request).await.map_err(|s| CallError::from_status("network create", s))?.into_inner();
            println!("{}", network.id);
        }
        NetworkCommand::Ls { filter, quiet, no_trunc, format } => {
            let mut filters: HashMap<String, String> = HashMap::new();
            for f in &filter {
                let (k, v) = f.split_once('=').ok_or_else(|| format!("bad filter {f:?}: expected key=value"))?;
                let entry = filters.entry(k.to_owned()).or_default();
                if !entry.is_empty() {
                    entry.push('\n');
                }
                entry.push_str(v);
            }
            let list = client.list(ListNetworksRequest { filters }).await.map_err(|s| CallError::from_status("network ls", s))?.into_inner().networks;
            let id = |id: &str| if no_trunc { id.to_owned() } else { id[..12.min(id.len())].to_owned() };
            match (quiet, format.as_deref()) {
                (true, _) => list.iter().for_each(|n| println!("{}", id(&n.id))),
                (_, Some("json")) => list.iter().for_each(|n| {
                    println!("{}", serde_json::json!({"ID": id(&n.id), "Name": n.name, "Driver": n.driver, "Scope": "local", "Internal": n.internal}))
                }),
                (_, Some(template)) => list.iter().for_each(|n| {
                    println!(
                        "{}",
                        template
                            .replace("{{.Name}}", &n.name)
                            .replace("{{.ID}}", &id(&n.id))
                            .replace("{{.Driver}}", &n.driver)
                            .replace("{{.Scope}}", "local")
                            .replace("\\t", "\t")
                    )
                }),
                _ => {
                    let titles = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"].map(str::to_owned).to_vec();
                    let rows: Vec<Vec<String>> = list.iter().map(|n| vec![id(&n.id), n.name.clone(), n.driver.clone(), "local".to_owned()]).collect();
                    super::ps::print_table(&titles, &rows);
                }
            }
        }
        NetworkCommand::Inspect { networks } => {
            let mut found = Vec::new();
            let mut failed = false;
            for name in networks {
                match client.inspect(NetworkRef { id: name }).await {
                    Ok(n) => found.push(serde_json::from_str::<serde_json::Value>(&n.into_inner().inspect_json)?),
                    Err(status) => {
                        eprintln!("berth: {}", CallError::from_status("network inspect", status));
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&found)?);
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        NetworkCommand::Rm { force, networks } => {
            return super::each(&networks, "network rm", |id| {
                let mut client = client.clone();
                async move {
                    match client.remove(NetworkRef { id }).await {
                        Err(s) if force && s.code() == tonic::Code::NotFound => Ok(()),
                        other => other.map(|_| ()),
                    }
                }
            })
            .await;
        }
        NetworkCommand::Prune { filter, force: _ } => {
            let labels = filter
                .iter()
                .map(|f| f.strip_prefix("label=").map(str::to_owned).ok_or_else(|| format!("unsupported prune filter {f:?}: use label=KEY[=VALUE]")))
                .collect::<Result<Vec<_>, _>>()?;
            let removed = client.prune(PruneNetworksRequest { labels }).await.map_err(|s| CallError::from_status("network prune", s))?.into_inner().removed;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                removed.iter().for_each(|n| println!("{n}"));
            }
        }
        NetworkCommand::Connect { aliases, ip, network, container } => {
            client
                .connect_container(ConnectNetworkRequest { network, container, aliases, ipv4_address: ip.unwrap_or_default() })
                .await
                .map_err(|s| CallError::from_status("network connect", s))?;
        }
        NetworkCommand::Disconnect { force, network, container } => {
            client
                .disconnect_container(DisconnectNetworkRequest { network, container, force })
                .await
                .map_err(|s| CallError::from_status("network disconnect", s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
