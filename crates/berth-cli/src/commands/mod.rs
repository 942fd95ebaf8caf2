//! The command line: one file per command.

mod attach;
mod build;
mod builder;
mod commit;
mod compose;
mod container;
mod cp;
mod create;
mod diagnose;
mod diff;
mod events;
mod exec;
mod export;
mod history;
mod image;
mod images;
mod import;
mod info;
mod inspect;
mod kill;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod ps;
mod pull;
mod push;
mod rename;
mod rm;
mod rmi;
mod run;
mod save;
mod search;
mod serve;
mod settings;
mod stack;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod top;
mod trust;
mod update;
mod version;
mod vm;
mod volume;
mod wait;

use std::process::ExitCode;

use berth_host::home::BerthHome;
use clap::{Parser, Subcommand, ValueEnum};

pub type CommandResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Berth: containers on your desktop")]
pub struct Cli {
    /// The engine's address (unix:PATH, vsock:CID:PORT, vsock-hybrid:PATH:PORT).
    #[arg(long, global = true, env = "BERTH_HOST")]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the client's and the engine's versions.
    Version(version::Args),
    /// Show facts about the engine and the machine it runs on.
    Info(info::Args),
    /// Follow the engine's events.
    Events(events::Args),
    /// Run the engine and serve its sockets until interrupted.
    Serve(serve::Args),
    /// Log in to a registry (credentials stored as docker stores them).
    Login(login::Args),
    /// Log out of a registry.
    Logout(login::LogoutArgs),
    /// Pull an image from a registry.
    Pull(pull::Args),
    /// Push an image to a registry.
    Push(push::Args),
    /// List images.
    Images(images::Args),
    /// Show containers or images in Docker's JSON shape.
    Inspect(inspect::Args),
    /// Create and start a container.
    Run(run::Args),
    /// Create a container.
    Create(create::ContainerArgs),
    /// Start containers.
    Start(start::Args),
    /// Stop containers (the stop signal, then SIGKILL after the timeout).
    Stop(stop::Args),
    /// Restart containers.
    Restart(stop::Args),
    /// Send a signal to containers.
    Kill(kill::Args),
    /// Remove containers.
    Rm(rm::Args),
    /// List containers.
    Ps(ps::Args),
    /// Fetch a container's logs.
    Logs(logs::Args),
    /// Run a command in a running container.
    Exec(exec::Args),
    /// Wait for containers to stop; print their exit codes.
    Wait(wait::Args),
    /// Build an image from a Dockerfile.
    Build(build::Args),
    /// The build cache (prune).
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
    /// Make a new image from a container's changes.
    Commit(commit::Args),
    /// Rename a container.
    Rename(rename::Args),
    /// Pause containers.
    Pause(pause::Args),
    /// Unpause containers.
    Unpause(pause::Args),
    /// A container's processes.
    Top(top::Args),
    /// Live resource usage of containers.
    Stats(stats::Args),
    /// Change a container's limits or restart policy.
    Update(update::Args),
    /// What a container changed in its filesystem.
    Diff(diff::Args),
    /// A container's filesystem as a tar.
    Export(export::Args),
    /// Copy files out of a container.
    Cp(cp::Args),
    /// Attach to a running container's output (and input).
    Attach(attach::Args),
    /// Compose projects (so far: config).
    Compose(compose::Args),
    /// Volume commands (create, ls, inspect, rm, prune).
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Network commands (create, ls, inspect, rm, prune, connect, disconnect).
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// A container's published ports.
    Port(port::Args),
    /// Container commands.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Write images to a tar (OCI layout and docker archive in one).
    Save(save::Args),
    /// Search a registry for images (Docker Hub, or `host[:port]/term`).
    Search(search::Args),
    /// Compose projects on an orchestrator, Swarm or Kubernetes (so far `--dry-run`).
    #[command(subcommand)]
    Stack(stack::StackCommand),
    /// A Swarm's nodes (through its manager's Docker API).
    #[command(subcommand)]
    Node(stack::NodeCommand),
    /// Signed images, as cosign signs them: keys, sign, verify, and the policy the
    /// engine enforces on pull and run.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Load images from a tar (`berth save`, `docker save`, an OCI layout).
    Load(load::Args),
    /// The steps that made an image.
    History(history::Args),
    /// Make an image from a root filesystem tarball.
    Import(import::Args),
    /// Image commands (ls, inspect, history, import, prune).
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Give an image another name.
    Tag(tag::Args),
    /// Remove images (untag, then delete what nothing else uses).
    Rmi(rmi::Args),
    /// Engine-wide commands.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Manage Berth's VM.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Berth's settings ($BERTH_HOME/settings.json).
    #[command(subcommand)]
    Settings(settings::SettingsCommand),
    /// Write one archive for a bug report: versions, settings (secrets removed), the
    /// VM's logs and a summary of the engine's state.
    Diagnose(diagnose::Args),
}

/// Output formats of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// What every command gets.
#[derive(Debug)]
pub struct Context {
    pub host: Option<String>,
    pub home: BerthHome,
}

pub async fn run(cli: Cli) -> CommandResult {
    let ctx = Context { host: cli.host, home: BerthHome::from_env() };
    match cli.command {
        Command::Version(args) => version::run(&ctx, args).await,
        Command::Info(args) => info::run(&ctx, args).await,
        Command::Events(args) => events::run(&ctx, args).await,
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Login(args) => login::login(&ctx, args).await,
        Command::Logout(args) => login::logout(&ctx, args).await,
        Command::Pull(args) => pull::run(&ctx, args).await,
        Command::Push(args) => push::run(&ctx, args).await,
        Command::Images(args) => images::run(&ctx, args).await,
        Command::Inspect(args) => inspect::run(&ctx, args).await,
        Command::Run(args) => run::run(&ctx, args).await,
        Command::Create(args) => create::run(&ctx, args).await,
        Command::Start(args) => start::run(&ctx, args).await,
        Command::Stop(args) => stop::stop(&ctx, args).await,
        Command::Restart(args) => stop::restart(&ctx, args).await,
        Command::Kill(args) => kill::run(&ctx, args).await,
        Command::Rm(args) => rm::run(&ctx, args).await,
        Command::Ps(args) => ps::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Wait(args) => wait::run(&ctx, args).await,
        Command::Build(args) => build::run(&ctx, args).await,
        Command::Builder(cmd) => builder::run(&ctx, cmd).await,
        Command::Commit(args) => commit::run(&ctx, args).await,
        Command::Rename(args) => rename::run(&ctx, args).await,
        Command::Pause(args) => pause::pause(&ctx, args).await,
        Command::Unpause(args) => pause::unpause(&ctx, args).await,
        Command::Top(args) => top::run(&ctx, args).await,
        Command::Stats(args) => stats::run(&ctx, args).await,
        Command::Update(args) => update::run(&ctx, args).await,
        Command::Diff(args) => diff::run(&ctx, args).await,
        Command::Export(args) => export::run(&ctx, args).await,
        Command::Cp(args) => cp::run(&ctx, args).await,
        Command::Attach(args) => attach::run(&ctx, args).await,
        Command::Container(cmd) => container::run(&ctx, cmd).await,
        Command::Volume(cmd) => volume::run(&ctx, cmd).await,
        Command::Network(cmd) => network::run(&ctx, cmd).await,
        Command::Port(args) => port::run(&ctx, args).await,
        Command::Compose(args) => compose::run(&ctx, args).await,
        Command::Save(args) => save::run(&ctx, args).await,
        Command::Search(args) => search::run(&ctx, args).await,
        Command::Trust(cmd) => trust::run(&ctx, cmd).await,
        Command::Stack(cmd) => stack::run(&ctx, cmd).await,
        Command::Node(cmd) => stack::node(&ctx, cmd).await,
        Command::Load(args) => load::run(&ctx, args).await,
        Command::History(args) => history::run(&ctx, args).await,
        Command::Import(args) => import::run(&ctx, args).await,
        Command::Image(cmd) => image::run(&ctx, cmd).await,
        Command::Tag(args) => tag::run(&ctx, args).await,
        Command::Rmi(args) => rmi::run(&ctx, args).await,
        Command::System(cmd) => system::run(&ctx, cmd).await,
        Command::Vm(cmd) => vm::run(&ctx, cmd).await,
        Command::Settings(cmd) => settings::run(&ctx, cmd).await,
        Command::Diagnose(args) => diagnose::run(&ctx, args).await,
    }
}

/// Runs `call` for each container, printing its name on success and each failure on
/// stderr (docker's habit for multi-container verbs); fails if any failed.
pub async fn each<F, Fut>(containers: &[String], operation: &'static str, call: F) -> CommandResult
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut failed = false;
    for id in containers {
        match call(id.clone()).await {
            Ok(()) => println!("{id}"),
            Err(status) => {
                eprintln!("berth: {}", berth_host::agent::CallError::from_status(operation, status));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

impl Cli {
    /// `serve` runs the host side for long; every other command is a short-lived client.
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
