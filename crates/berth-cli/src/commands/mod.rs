//! The command line: one file per command.

mod events;
mod history;
mod image;
mod images;
mod import;
mod info;
mod load;
mod login;
mod pull;
mod push;
mod rmi;
mod save;
mod serve;
mod system;
mod tag;
mod version;
mod vm;

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
    /// Show images in Docker's JSON shape.
    Inspect(images::InspectArgs),
    /// Write images to a tar (OCI layout and docker archive in one).
    Save(save::Args),
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
        Command::Inspect(args) => images::inspect(&ctx, args).await,
        Command::Save(args) => save::run(&ctx, args).await,
        Command::Load(args) => load::run(&ctx, args).await,
        Command::History(args) => history::run(&ctx, args).await,
        Command::Import(args) => import::run(&ctx, args).await,
        Command::Image(cmd) => image::run(&ctx, cmd).await,
        Command::Tag(args) => tag::run(&ctx, args).await,
        Command::Rmi(args) => rmi::run(&ctx, args).await,
        Command::System(cmd) => system::run(&ctx, cmd).await,
        Command::Vm(cmd) => vm::run(&ctx, cmd).await,
    }
}
