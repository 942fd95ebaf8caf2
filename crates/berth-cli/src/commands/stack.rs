//! `berth stack` and `berth node`: a compose project onto an orchestrator. On a Swarm,
//! through its manager's Docker Engine API (`--host tcp://MANAGER:2376` or
//! `unix:///path`, a docker context, or `DOCKER_HOST`, as the docker CLI finds it, TLS
//! included): deploy (create, or update with a rolling update),
//! ls, ps, services, rm, and the nodes. On Kubernetes (`--orchestrator kubernetes`, or
//! `DOCKER_STACK_ORCHESTRATOR` as the docker CLI reads it), on the cluster of the
//! kubeconfig (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`; `--context`,
//! `--namespace`): deploy with server-side apply, ls, ps, services, rm; `--dry-run`
//! prints the manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_compose::kube::cluster::Cluster;
use berth_compose::project::{load_project, LoadOptions};
use berth_compose::swarm::manager;
use berth_host::docker_client::DockerClient;
use berth_host::docker_context;

use super::{CommandResult, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Orchestrator {
    Swarm,
    Kubernetes,
}

/// Where a stack goes: a Swarm (its manager found as the docker CLI finds its engine) or
/// a Kubernetes cluster (the kubeconfig's).
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// A Swarm (its manager: --host, --context, DOCKER_HOST, or the docker CLI's current
    /// context), or the Kubernetes cluster of the kubeconfig.
    #[arg(long, value_enum, env = "DOCKER_STACK_ORCHESTRATOR", default_value = "swarm")]
    orchestrator: Orchestrator,
    /// Kubernetes: the kubeconfig (else `KUBECONFIG`, else `~/.kube/config`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The docker context of the Swarm manager, or the kubeconfig's context on
    /// Kubernetes (else the current one).
    #[arg(long)]
    context: Option<String>,
    /// Kubernetes: the namespace (else the context's, else `default`).
    #[arg(long)]
    namespace: Option<String>,
}

impl Target {
    async fn cluster(&self) -> Result<Cluster, berth_compose::kube::cluster::ClusterError> {
        Cluster::connect(self.kubeconfig.as_deref(), self.context.as_deref(), self.namespace.as_deref()).await
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum StackCommand {
    /// Deploy a compose project as a stack named NAME.
    Deploy {
        /// The compose files (in order, merged as compose merges them).
        #[arg(short = 'c', long = "compose-file", required = true)]
        compose_file: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
        /// Print what would be made (Kubernetes manifests, or a Swarm stack's Docker API
        /// bodies) instead of making it.
        #[arg(long)]
        dry_run: bool,
        /// Remove what the stack has and the files no longer name: services on a Swarm,
        /// workloads, Services, Secrets and ConfigMaps on Kubernetes (claims are kept).
        #[arg(long)]
        prune: bool,
        /// The stack's name (the project's name).
        name: String,
    },
    /// The stacks on the Swarm, or in the namespace.
    Ls {
        #[command(flatten)]
        target: Target,
    },
    /// A stack's tasks (pods on Kubernetes).
    Ps {
        #[command(flatten)]
        target: Target,
        name: String,
    },
    /// A stack's services (Deployments and StatefulSets on Kubernetes).
    Services {
        #[command(flatten)]
        target: Target,
        name: String,
    },
    /// Remove a stack: its services, networks, secrets and configs (volumes and their
    /// claims are kept).
    Rm {
        #[command(flatten)]
        target: Target,
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// The Swarm's nodes.
    Ls {
        /// The docker context of the Swarm manager.
        #[arg(long)]
        context: Option<String>,
    },
}

/// The Swarm manager, found as the docker CLI finds its engine: `--host` when it is a
/// Docker endpoint, else `--context`, else `DOCKER_HOST` (TLS with `DOCKER_TLS_VERIFY`),
/// else `DOCKER_CONTEXT`, else the docker CLI's current context.
fn manager_api(ctx: &Context, context: Option<&str>) -> Result<DockerClient, Box<dyn std::error::Error + Send + Sync>> {
    let host = ctx.host.as_deref().filter(|h| h.starts_with("tcp://") || h.starts_with("unix://"));
    let env = |name: &str| std::env::var(name).ok();
    let endpoint = docker_context::resolve(&berth_host::credentials::docker_config_dir(), host, context, &env)?.ok_or(
        "name the Swarm manager: --host tcp://MANAGER:2376 (or unix:///path/docker.sock), --context NAME (a docker context), DOCKER_HOST, or docker context use NAME",
    )?;
    Ok(DockerClient::for_endpoint(&endpoint)?)
}

pub async fn node(ctx: &Context, cmd: NodeCommand) -> CommandResult {
    match cmd {
        NodeCommand::Ls { context } => {
            let nodes = manager::nodes(&manager_api(ctx, context.as_deref())?).await?;
            println!("{:<27} {:<20} {:<8} {:<13} {:<15} ENGINE VERSION", "ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS");
            for n in &nodes {
                let manager = match n["ManagerStatus"]["Leader"].as_bool() {
                    Some(true) => "Leader",
                    Some(false) => {
                        n["ManagerStatus"]["Reachability"].as_str().map(|r| if r == "reachable" { "Reachable" } else { "Unreachable" }).unwrap_or("")
                    }
                    None => "",
                };
                let title = |v: &serde_json::Value| {
                    let t = v.as_str().unwrap_or_default();
                    t.chars().next().map(|c| c.to_uppercase().collect::<String>() + &t[c.len_utf8()..]).unwrap_or_default()
                };
                println!(
                    "{:<27} {:<20} {:<8} {:<13} {:<15} {}",
                    n["ID"].as_str().unwrap_or_default(),
                    n["Description"]["Hostname"].as_str().unwrap_or_default(),
                    title(&n["Status"]["State"]),
                    title(&n["Spec"]["Availability"]),
                    manager,
                    n["Description"]["Engine"]["EngineVersion"].as_str().unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn run(ctx: &Context, cmd: StackCommand) -> CommandResult {
    match cmd {
        StackCommand::Deploy { compose_file, target, dry_run, prune, name } => {
            let options = LoadOptions {
                files: compose_file,
                project_name: Some(name),
                env_files: Vec::new(),
                working_dir: std::env::current_dir()?,
                environ: std::env::vars().collect(),
            };
            let project = load_project(&options)?;
            match target.orchestrator {
                Orchestrator::Swarm => {
                    let services = berth_compose::plan::enabled_services(&project.model, &[], &[])?;
                    let stack = berth_compose::swarm::render(&project, &project.name, &services)?;
                    if dry_run {
                        println!("{}", serde_json::to_string_pretty(&stack.to_dry_run_json())?);
                        return Ok(ExitCode::SUCCESS);
                    }
                    for line in manager::deploy(&manager_api(ctx, target.context.as_deref())?, &stack, prune).await? {
                        println!("{line}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Orchestrator::Kubernetes => {
                    let services = berth_compose::plan::enabled_services(&project.model, &[], &[])?;
                    let rendered = berth_compose::kube::render(&project, &services)?;
                    for warning in &rendered.warnings {
                        eprintln!("warning: {warning}");
                    }
                    if dry_run {
                        print!("{}", rendered.to_yaml());
                        return Ok(ExitCode::SUCCESS);
                    }
                    let cluster = target.cluster().await?;
                    for line in cluster.deploy(&kube_name(&project.name)?, &rendered, prune).await? {
                        println!("{line}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        StackCommand::Ls { target } if target.orchestrator == Orchestrator::Kubernetes => {
            let stacks = target.cluster().await?.stacks().await?;
            println!("{:<20} SERVICES", "NAME");
            for (name, count) in stacks {
                println!("{name:<20} {count}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Services { target, name } if target.orchestrator == Orchestrator::Kubernetes => {
            let workloads = target.cluster().await?.workloads(&kube_name(&name)?).await?;
            println!("{:<24} {:<12} {:<9} IMAGE", "NAME", "KIND", "REPLICAS");
            for w in workloads {
                println!("{:<24} {:<12} {:<9} {}", w.name, w.kind, format!("{}/{}", w.ready, w.desired), w.image);
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Ps { target, name } if target.orchestrator == Orchestrator::Kubernetes => {
            let pods = target.cluster().await?.pods(&kube_name(&name)?).await?;
            println!("{:<36} {:<16} {:<32} {:<20} {:<6} {:<10} RESTARTS", "NAME", "SERVICE", "IMAGE", "NODE", "READY", "STATUS");
            for p in pods {
                println!("{:<36} {:<16} {:<32} {:<20} {:<6} {:<10} {}", p.name, p.service, p.image, p.node, p.ready, p.phase, p.restarts);
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Rm { target, name } if target.orchestrator == Orchestrator::Kubernetes => {
            for line in target.cluster().await?.remove(&kube_name(&name)?).await? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Ls { target } => {
            let stacks = manager::list(&manager_api(ctx, target.context.as_deref())?).await?;
            println!("{:<20} SERVICES", "NAME");
            for (name, count) in stacks {
                println!("{name:<20} {count}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Services { target, name } => {
            println!("{:<27} {:<24} {:<11} {:<9} {:<40} PORTS", "ID", "NAME", "MODE", "REPLICAS", "IMAGE");
            for s in manager::services(&manager_api(ctx, target.context.as_deref())?, &name).await? {
                let global = s["Spec"]["Mode"].get("Global").is_some();
                let replicas =
                    format!("{}/{}", s["ServiceStatus"]["RunningTasks"].as_u64().unwrap_or(0), s["ServiceStatus"]["DesiredTasks"].as_u64().unwrap_or(0));
                let ports: Vec<String> = s["Endpoint"]["Ports"]
                    .as_array()
                    .or_else(|| s["Spec"]["EndpointSpec"]["Ports"].as_array())
                    .into_iter()
                    .flatten()
                    .map(|p| format!("*:{}->{}/{}", p["PublishedPort"], p["TargetPort"], p["Protocol"].as_str().unwrap_or("tcp")))
                    .collect();
                println!(
                    "{:<27} {:<24} {:<11} {:<9} {:<40} {}",
                    s["ID"].as_str().unwrap_or_default(),
                    s["Spec"]["Name"].as_str().unwrap_or_default(),
                    if global { "global" } else { "replicated" },
                    replicas,
                    s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].as_str().unwrap_or_default(),
                    ports.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Ps { target, name } => {
            println!("{:<27} {:<28} {:<40} {:<27} {:<14} {:<12} ERROR", "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE");
            for t in manager::tasks(&manager_api(ctx, target.context.as_deref())?, &name).await? {
                let task_name = match t["Slot"].as_u64() {
                    Some(slot) => format!("{}.{slot}", t["ServiceName"].as_str().unwrap_or_default()),
                    None => format!("{}.{}", t["ServiceName"].as_str().unwrap_or_default(), t["NodeID"].as_str().unwrap_or_default()),
                };
                println!(
                    "{:<27} {:<28} {:<40} {:<27} {:<14} {:<12} {}",
                    t["ID"].as_str().unwrap_or_default(),
                    task_name,
                    t["Spec"]["ContainerSpec"]["Image"].as_str().unwrap_or_default(),
                    t["NodeID"].as_str().unwrap_or_default(),
                    t["DesiredState"].as_str().unwrap_or_default(),
                    t["Status"]["State"].as_str().unwrap_or_default(),
                    t["Status"]["Err"].as_str().unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Rm { target, name } => {
            for line in manager::remove(&manager_api(ctx, target.context.as_deref())?, &name).await? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A stack's name as its objects carry it on Kubernetes.
fn kube_name(name: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    berth_compose::kube::object_name(name).ok_or_else(|| format!("{name:?} is not a valid Kubernetes name").into())
}
