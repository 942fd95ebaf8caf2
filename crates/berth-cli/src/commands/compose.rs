//! `berth compose`: compose files read, planned and applied on this side (the
//! berth-compose crate), as docker compose does: config, up, down, ps, logs, exec, run,
//! start, stop, restart, pull, events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use berth_compose::apply::{self, DownOptions, UpOptions};
use berth_compose::plan::{self, Plan, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
use berth_compose::project::{load_project, LoadOptions, Project};
use berth_host::agent::{AgentClient, CallError};
use berth_proto::v1::{ContainerRef, ContainerSummary, LogsRequest, StopContainerRequest};
use clap::Parser;
use futures::StreamExt;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Compose files, merged in order (default: compose.yaml or docker-compose.yml here).
    #[arg(long = "file", short = 'f')]
    files: Vec<std::path::PathBuf>,
    /// Project name.
    #[arg(long = "project-name", short = 'p')]
    project_name: Option<String>,
    /// Variables for interpolation, instead of the project's .env.
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Project directory (default: the current one).
    #[arg(long)]
    project_directory: Option<std::path::PathBuf>,
    /// Enable services of a profile (also COMPOSE_PROFILES).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    #[command(subcommand)]
    command: ComposeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ComposeCommand {
    /// Print the resolved project: files merged, variables interpolated.
    Config {
        /// Only the service names.
        #[arg(long)]
        services: bool,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
    },
    /// Create and start the project's containers.
    Up {
        /// Run in the background.
        #[arg(long, short)]
        detach: bool,
        /// Recreate containers even if their configuration did not change.
        #[arg(long)]
        force_recreate: bool,
        /// Remove containers of services no longer in the file.
        #[arg(long)]
        remove_orphans: bool,
        /// Build the images of services with `build:` first, even when present.
        #[arg(long)]
        build: bool,
        /// Create but do not start.
        #[arg(long)]
        no_start: bool,
        /// SERVICE=NUM replicas.
        #[arg(long)]
        scale: Vec<String>,
        /// Produce monochrome output.
        #[arg(long)]
        no_color: bool,
        services: Vec<String>,
    },
    /// Stop and remove the project's containers and networks.
    Down {
        /// Also remove named volumes declared in the file and anonymous volumes.
        #[arg(long, short)]
        volumes: bool,
        /// Remove images: "all" or "local".
        #[arg(long)]
        rmi: Option<String>,
        #[arg(long)]
        remove_orphans: bool,
    },
    /// List the project's containers.
    Ps {
        /// Also stopped containers.
        #[arg(long, short)]
        all: bool,
        /// Only ids.
        #[arg(long, short)]
        quiet: bool,
        /// Only service names.
        #[arg(long)]
        services: bool,
        /// table or json.
        #[arg(long)]
        format: Option<String>,
        services_filter: Vec<String>,
    },
    /// The services' output, each line prefixed with its container.
    Logs {
        #[arg(long, short)]
        follow: bool,
        /// Lines from the end of each ("all").
        #[arg(long, short = 'n', default_value = "all")]
        tail: String,
        #[arg(long, short)]
        timestamps: bool,
        #[arg(long)]
        no_color: bool,
        /// Without the container name prefix.
        #[arg(long)]
        no_log_prefix: bool,
        services: Vec<String>,
    },
    /// Run a command in a running service container.
    Exec {
        #[arg(long, short)]
        detach: bool,
        /// No pseudo-TTY (the default when stdin is not a terminal).
        #[arg(long = "no-TTY", short = 'T')]
        no_tty: bool,
        #[arg(long, short)]
        env: Vec<String>,
        #[arg(long, short)]
        user: Option<String>,
        #[arg(long, short)]
        workdir: Option<String>,
        /// Which replica.
        #[arg(long, default_value_t = 1)]
        index: u32,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Run a one-off command in a new container of a service.
    Run {
        #[arg(long, short)]
        detach: bool,
        /// Remove the container when it exits.
        #[arg(long)]
        rm: bool,
        #[arg(long = "no-TTY", short = 'T')]
        no_tty: bool,
        #[arg(long, short)]
        env: Vec<String>,
        #[arg(long)]
        entrypoint: Option<String>,
        #[arg(long, short)]
        user: Option<String>,
        #[arg(long, short)]
        workdir: Option<String>,
        /// Assign a name.
        #[arg(long)]
        name: Option<String>,
        /// Do not start the services it depends on.
        #[arg(long)]
        no_deps: bool,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Start the project's existing containers.
    Start { services: Vec<String> },
    /// Stop the project's containers.
    Stop {
        #[arg(long, short, allow_hyphen_values = true)]
        timeout: Option<i32>,
        services: Vec<String>,
    },
    /// Restart the project's containers.
    Restart {
        #[arg(long, short, allow_hyphen_values = true)]
        timeout: Option<i32>,
        services: Vec<String>,
    },
    /// Pull the services' images.
    Pull { services: Vec<String> },
    /// Build the images of the services with `build:`.
    Build { services: Vec<String> },
    /// Stream the project's container events.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        services: Vec<String>,
    },
}

/// Colours for service prefixes, as docker compose cycles them.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

fn load(args: &Args) -> Result<Project, Box<dyn std::error::Error + Send + Sync>> {
    let working_dir = match &args.project_directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    let options = LoadOptions {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        env_files: args.env_file.clone(),
        working_dir,
        environ: std::env::vars().collect(),
    };
    Ok(load_project(&options)?)
}

fn profiles(args: &Args) -> Vec<String> {
    let mut all = args.profiles.clone();
    if let Ok(env) = std::env::var("COMPOSE_PROFILES") {
        all.extend(env.split(',').filter(|p| !p.is_empty()).map(str::to_owned));
    }
    all
}

fn make_plan(project: &Project, profiles: &[String], services: &[String], scale: &BTreeMap<String, u32>) -> Result<Plan, String> {
    let enabled = plan::enabled_services(&project.model, profiles, services)?;
    plan::plan(project, &enabled, scale).map_err(|e| e.to_string())
}

fn progress_printer() -> impl FnMut(String) + Send {
    |line: String| eprintln!(" ✔ {line}")
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let project = load(&args)?;
    if let ComposeCommand::Config { services, format } = &args.command {
        if *services {
            for name in project.model.services.keys() {
                println!("{name}");
            }
        } else {
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&serde_json::to_value(&project.resolved)?)?),
                "yaml" => print!("{}", serde_norway::to_string(&project.resolved)?),
                other => return Err(format!("unknown format {other:?}: yaml or json").into()),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let profiles = profiles(&args);
    match args.command {
        ComposeCommand::Config { .. } => unreachable!("handled above"),
        ComposeCommand::Up { detach, force_recreate, remove_orphans, build, no_start, scale, no_color, services } => {
            let mut replicas = BTreeMap::new();
            for s in &scale {
                let (name, n) = s.split_once('=').ok_or_else(|| format!("invalid --scale {s:?}: use SERVICE=NUM"))?;
                replicas.insert(name.to_owned(), n.parse::<u32>().map_err(|_| format!("invalid --scale {s:?}"))?);
            }
            let plan = make_plan(&project, &profiles, &services, &replicas)?;
            let options = UpOptions { force_recreate, remove_orphans, no_start, dependency_timeout: None, build };
            let mut progress = progress_printer();
            let ids = apply::up(&agent, &plan, &options, &mut progress).await?;
            if detach || no_start {
                return Ok(ExitCode::SUCCESS);
            }
            // Attached: follow every service container's output until all have
            // stopped, or Ctrl-C stops them.
            let list: Vec<ContainerSummary> = apply::containers(&agent, &plan.project).await?.into_iter().filter(|c| ids.contains(&c.id)).collect();
            let printer = follow_logs(&agent, &list, true, -1, false, !no_color, true);
            tokio::select! {
                _ = printer => {}
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                    for c in &list {
                        let _ = agent.containers().stop(StopContainerRequest { id: c.id.clone(), timeout: -1, signal: String::new() }).await;
                        eprintln!(" ✔ Container {}  Stopped", c.name);
                    }
                }
            }
        }
        ComposeCommand::Down { volumes, rmi, remove_orphans } => {
            if let Some(r) = rmi.as_deref().filter(|r| !matches!(*r, "all" | "local")) {
                return Err(format!("invalid --rmi {r:?}: all or local").into());
            }
            let all: Vec<String> = project.model.services.keys().cloned().collect();
            let plan = make_plan(&project, &["*".to_owned()], &all, &BTreeMap::new())?;
            let mut progress = progress_printer();
            apply::down(&agent, &plan, &DownOptions { volumes, rmi, remove_orphans }, &mut progress).await?;
        }
        ComposeCommand::Ps { all, quiet, services, format, services_filter } => {
            let list: Vec<ContainerSummary> = apply::containers(&agent, &project.name)
                .await?
                .into_iter()
                .filter(|c| all || c.state == "running" || c.state == "restarting" || c.state == "paused")
                .filter(|c| services_filter.is_empty() || services_filter.iter().any(|s| Some(s) == c.labels.get(LABEL_SERVICE)))
                .collect();
            if services {
                let names: BTreeSet<&String> = list.iter().filter_map(|c| c.labels.get(LABEL_SERVICE)).collect();
                names.iter().for_each(|n| println!("{n}"));
            } else if quiet {
                list.iter().for_each(|c| println!("{}", c.id));
            } else if format.as_deref() == Some("json") {
                for c in &list {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ID": c.id, "Name": c.name, "Image": c.image, "Command": c.command, "Project": project.name,
                            "Service": c.labels.get(LABEL_SERVICE), "State": c.state, "Status": c.status,
                            "ExitCode": c.exit_code, "Publishers": c.ports.iter().map(|p| serde_json::json!({
                                "URL": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip },
                                "TargetPort": p.container_port, "PublishedPort": p.host_port, "Protocol": p.protocol,
                            })).collect::<Vec<_>>(),
                        })
                    );
                }
            } else {
                let titles = ["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"].map(str::to_owned).to_vec();
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.image.clone(),
                            format!("\"{}\"", c.command),
                            c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                            c.status.clone(),
                            super::ps::ports_text(c),
                        ]
                    })
                    .collect();
                super::ps::print_table(&titles, &rows);
            }
        }
        ComposeCommand::Logs { follow, tail, timestamps, no_color, no_log_prefix, services } => {
            let tail: i64 = if tail == "all" { -1 } else { tail.parse().map_err(|_| format!("invalid --tail {tail:?}"))? };
            let list: Vec<ContainerSummary> = apply::containers(&agent, &project.name)
                .await?
                .into_iter()
                .filter(|c| services.is_empty() || services.iter().any(|s| Some(s) == c.labels.get(LABEL_SERVICE)))
                .collect();
            let colour = !no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
            follow_logs(&agent, &list, follow, tail, timestamps, colour, !no_log_prefix).await;
        }
        ComposeCommand::Exec { detach, no_tty, env, user, workdir, index, service, command } => {
            let target = service_container(&agent, &project.name, &service, index).await?;
            let mut argv: Vec<String> = vec!["exec".into()];
            if detach {
                argv.push("-d".into());
            }
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
            if !no_tty && terminal && !detach {
                argv.extend(["-i".into(), "-t".into()]);
            } else if !detach {
                argv.push("-i".into());
            }
            for e in env {
                argv.extend(["-e".into(), e]);
            }
            if let Some(u) = user {
                argv.extend(["-u".into(), u]);
            }
            if let Some(w) = workdir {
                argv.extend(["-w".into(), w]);
            }
            argv.push(target);
            argv.extend(command);
            return super::exec::run(ctx, ExecCli::try_parse_from(argv)?.args).await;
        }
        ComposeCommand::Run { detach, rm, no_tty, env, entrypoint, user, workdir, name, no_deps, service, command } => {
            let plan = make_plan(&project, &profiles, std::slice::from_ref(&service), &BTreeMap::new())?;
            let planned = plan.service(&service).ok_or_else(|| format!("no such service: {service}"))?.clone();
            if !no_deps {
                let deps: Vec<String> = plan.services.iter().map(|s| s.name.clone()).filter(|s| *s != service).collect();
                if !deps.is_empty() {
                    let deps_plan = make_plan(&project, &profiles, &deps, &BTreeMap::new())?;
                    let mut progress = progress_printer();
                    apply::up(&agent, &deps_plan, &UpOptions::default(), &mut progress).await?;
                }
            }
            let mut progress = progress_printer();
            apply::ensure_resources(&agent, &plan, &mut progress).await?;
            let mut request = planned.request_for(&plan.project, 1);
            let suffix = random_hex(3);
            request.name = name.unwrap_or_else(|| format!("{}-{service}-run-{suffix}", plan.project));
            request.labels.insert(LABEL_ONEOFF.into(), "True".into());
            request.labels.remove(plan::LABEL_NUMBER);
            request.auto_remove = rm;
            // One-off containers publish no ports and restart never, as docker compose.
            request.ports.clear();
            request.restart_policy = None;
            if !command.is_empty() {
                request.cmd = command;
            }
            if let Some(e) = entrypoint {
                request.entrypoint = berth_compose::model::split_shell(&e)?;
                request.entrypoint_set = true;
            }
            request.env.extend(env);
            if let Some(u) = user {
                request.user = u;
            }
            if let Some(w) = workdir {
                request.working_dir = w;
            }
            let interactive = !detach;
            request.open_stdin = interactive;
            request.tty = interactive && !no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
            let tty = request.tty;
            let id = agent.containers().create(request).await.map_err(|s| CallError::from_status("create", s))?.into_inner().id;
            for (network, aliases, ip) in &planned.extra_networks {
                agent
                    .networks()
                    .connect_container(berth_proto::v1::ConnectNetworkRequest {
                        network: network.clone(),
                        container: id.clone(),
                        aliases: aliases.clone(),
                        ipv4_address: ip.clone(),
                    })
                    .await
                    .map_err(|s| CallError::from_status("network connect", s))?;
            }
            if detach {
                agent.containers().start(ContainerRef { id: id.clone() }).await.map_err(|s| CallError::from_status("start", s))?;
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            let attached = super::run::attach_streams(&agent, &id, true, tty).await?;
            let condition = if rm { "removed" } else { "next-exit" };
            let mut waiter = agent.containers();
            let wait_id = id.clone();
            let wait = tokio::spawn(async move { waiter.wait(berth_proto::v1::WaitContainerRequest { id: wait_id, condition: condition.to_owned() }).await });
            let _raw = (tty && std::io::IsTerminal::is_terminal(&std::io::stdin())).then(crate::terminal::RawTerminal::enable);
            if let Err(status) = agent.containers().start(ContainerRef { id: id.clone() }).await {
                wait.abort();
                attached.abort();
                if rm {
                    let _ = agent.containers().remove(berth_proto::v1::RemoveContainerRequest { id, force: true, volumes: true }).await;
                }
                return Err(CallError::from_status("start", status).into());
            }
            let code = match wait.await {
                Ok(Ok(r)) => r.into_inner().exit_code,
                Ok(Err(status)) => return Err(CallError::from_status("wait", status).into()),
                Err(e) => return Err(format!("wait: {e}").into()),
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), attached).await;
            return Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255)));
        }
        ComposeCommand::Start { services } => {
            let plan_order = make_plan(&project, &["*".to_owned()], &[], &BTreeMap::new())
                .map(|p| p.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default();
            let mut list = selected(&agent, &project.name, &services).await?;
            list.sort_by_key(|c| plan_order.iter().position(|s| Some(s) == c.labels.get(LABEL_SERVICE)).unwrap_or(usize::MAX));
            for c in list.iter().filter(|c| c.state != "running") {
                agent.containers().start(ContainerRef { id: c.id.clone() }).await.map_err(|s| CallError::from_status("start", s))?;
                eprintln!(" ✔ Container {}  Started", c.name);
            }
        }
        ComposeCommand::Stop { timeout, services } => {
            for c in selected(&agent, &project.name, &services).await?.iter().rev().filter(|c| c.state == "running" || c.state == "paused") {
                agent
                    .containers()
                    .stop(StopContainerRequest { id: c.id.clone(), timeout: timeout.unwrap_or(-1), signal: String::new() })
                    .await
                    .map_err(|s| CallError::from_status("stop", s))?;
                eprintln!(" ✔ Container {}  Stopped", c.name);
            }
        }
        ComposeCommand::Restart { timeout, services } => {
            for c in selected(&agent, &project.name, &services).await? {
                agent
                    .containers()
                    .restart(StopContainerRequest { id: c.id.clone(), timeout: timeout.unwrap_or(-1), signal: String::new() })
                    .await
                    .map_err(|s| CallError::from_status("restart", s))?;
                eprintln!(" ✔ Container {}  Started", c.name);
            }
        }
        ComposeCommand::Build { services } => {
            let plan = make_plan(&project, &profiles, &services, &BTreeMap::new())?;
            let mut progress = progress_printer();
            for s in plan.services.iter().filter(|s| s.build.is_some()) {
                apply::build(&agent, s, &mut progress).await?;
            }
        }
        ComposeCommand::Pull { services } => {
            let plan = make_plan(&project, &profiles, &services, &BTreeMap::new())?;
            let mut progress = progress_printer();
            for s in plan.services.iter().filter(|s| s.build.is_none() || project.model.services[&s.name].image.is_some()) {
                apply::pull(&agent, &s.create.image, &mut progress).await?;
            }
        }
        ComposeCommand::Events { json, services } => {
            let mut stream = agent.events(false, vec!["container".into()]).await?;
            while let Some(event) = stream.next().await {
                let event = event.map_err(|s| CallError::from_status("events", s))?;
                if event.attributes.get(LABEL_PROJECT) != Some(&project.name) {
                    continue;
                }
                let service = event.attributes.get(LABEL_SERVICE).cloned().unwrap_or_default();
                if !services.is_empty() && !services.contains(&service) {
                    continue;
                }
                let id = event.attributes.get("id").cloned().unwrap_or_default();
                let time = chrono_like(event.time_unix_nanos);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"time": time, "type": "container", "action": event.action, "id": id, "service": service, "attributes": event.attributes})
                    );
                } else {
                    println!("{time} container {} {id} (name={}, service={service})", event.action, event.attributes.get("name").cloned().unwrap_or_default());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut random, &mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn chrono_like(nanos: i64) -> String {
    let secs = nanos / 1_000_000_000;
    format!("{secs}.{:09}", nanos % 1_000_000_000)
}

#[derive(Debug, clap::Parser)]
#[command(no_binary_name = false)]
struct ExecCli {
    #[command(flatten)]
    args: super::exec::Args,
}

/// The service's replica `index` (running).
async fn service_container(agent: &AgentClient, project: &str, service: &str, index: u32) -> Result<String, String> {
    let list = apply::containers(agent, project).await.map_err(|e| e.to_string())?;
    list.into_iter()
        .find(|c| {
            c.labels.get(LABEL_SERVICE).is_some_and(|s| s == service) && apply::number(c) == index && c.labels.get(LABEL_ONEOFF).is_none_or(|o| o != "True")
        })
        .filter(|c| c.state == "running")
        .map(|c| c.id)
        .ok_or_else(|| format!("service \"{service}\" is not running"))
}

/// The project's service containers (one-offs aside), optionally of some services.
async fn selected(agent: &AgentClient, project: &str, services: &[String]) -> Result<Vec<ContainerSummary>, String> {
    Ok(apply::containers(agent, project)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|c| c.labels.get(LABEL_ONEOFF).is_none_or(|o| o != "True"))
        .filter(|c| services.is_empty() || services.iter().any(|s| Some(s) == c.labels.get(LABEL_SERVICE)))
        .collect())
}

/// Prints every container's log lines prefixed with its name (`web-1  | ...`), each
/// service in its colour; returns when every stream has ended.
async fn follow_logs(agent: &AgentClient, list: &[ContainerSummary], follow: bool, tail: i64, timestamps: bool, colour: bool, prefix: bool) {
    let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let services: Vec<String> = {
        let mut s: Vec<String> = list.iter().filter_map(|c| c.labels.get(LABEL_SERVICE).cloned()).collect();
        s.sort();
        s.dedup();
        s
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in list {
        let index = services.iter().position(|s| Some(s) == c.labels.get(LABEL_SERVICE)).unwrap_or(0);
        let head = if !prefix {
            String::new()
        } else if colour {
            format!("\x1b[{}m{:<width$}  |\x1b[0m ", COLOURS[index % COLOURS.len()], c.name)
        } else {
            format!("{:<width$}  | ", c.name)
        };
        let mut containers = agent.containers();
        let request = LogsRequest { id: c.id.clone(), follow, stdout: true, stderr: true, since: String::new(), until: String::new(), tail, timestamps };
        tasks.spawn(async move {
            let Ok(stream) = containers.logs(request).await else { return };
            let mut stream = stream.into_inner();
            let mut pending: Vec<u8> = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                pending.extend_from_slice(&chunk.data);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(head.as_bytes());
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                }
            }
            if !pending.is_empty() {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&pending);
                let _ = out.write_all(b"\n");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
