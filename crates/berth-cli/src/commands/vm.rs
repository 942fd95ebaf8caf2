use std::process::ExitCode;
use std::time::Duration;

use berth_host::session::{self, Stopped};
use berth_host::settings::Settings;
use berth_host::vm::{StopOutcome, VmState};

use super::{CommandResult, Context, Format};

#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Boot the VM and wait until its engine answers; the session (sockets, published
    /// ports, shares) keeps running in the background until `berth vm stop`.
    Start,
    /// Stop the session and power the VM off (ACPI power button, then quit, then kill).
    Stop {
        /// Seconds the guest gets to power off by itself.
        #[arg(long, default_value_t = 10)]
        time: u64,
    },
    /// Show the VM's state.
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Wipe the VM's data disk: every image, container, volume and network in the VM.
    /// Asks first, unless --force.
    Reset {
        #[arg(long, short)]
        force: bool,
    },
}

pub async fn run(ctx: &Context, cmd: VmCommand) -> CommandResult {
    match cmd {
        VmCommand::Start => {
            // Checked here, so a bad setting is this command's error.
            let config = Settings::load(&ctx.home)?.vm_config(&ctx.home)?;
            let exe = std::env::current_exe()?;
            let timeout = config.boot_timeout + Duration::from_secs(30);
            let started = session::start_detached(&ctx.home, &exe, &["serve".into()], timeout).await?;
            let boot = session::find(&ctx.home).and_then(|r| r.boot_ms).map(|ms| format!(" in {:.2}s", ms as f64 / 1000.0)).unwrap_or_default();
            match session::status(&ctx.home).await {
                VmState::Ready { accel, engine } => println!(
                    "{}{boot} ({accel}): engine {} on kernel {}; docker context \"berth\" (DOCKER_HOST={}); log in {}",
                    if started { "VM ready" } else { "VM already running" },
                    engine.engine_version,
                    engine.kernel_version,
                    ctx.home.docker_host(),
                    session::log_path(&ctx.home).display()
                ),
                other => return Err(format!("the VM is {}", other.name()).into()),
            }
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Stop { time } => {
            let outcome = session::request_stop(&ctx.home, Duration::from_secs(time)).await?;
            println!(
                "{}",
                match outcome {
                    Stopped::NothingRan => "the VM was not running",
                    Stopped::Session | Stopped::Vm(StopOutcome::NotRunning) | Stopped::Vm(StopOutcome::PoweredOff) => "the VM powered off",
                    Stopped::Vm(StopOutcome::Quit) => "the VM did not power off in time; QEMU was told to quit",
                    Stopped::Vm(StopOutcome::Killed) => "the VM did not stop; QEMU was killed",
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Reset { force } => {
            if session::find(&ctx.home).is_some() {
                return Err("the VM is running; `berth vm stop` it first".into());
            }
            let disk = berth_host::vm::VmPaths::new(&ctx.home).data_disk;
            if !disk.exists() {
                println!("the VM has no data disk yet; nothing to wipe");
                return Ok(ExitCode::SUCCESS);
            }
            if !force {
                use std::io::{BufRead, IsTerminal, Write};
                if !std::io::stdin().is_terminal() {
                    return Err("refusing to wipe the VM's data without confirmation; use --force".into());
                }
                eprint!("This deletes every image, container, volume and network in Berth's VM ({}). Type 'yes' to go on: ", disk.display());
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != "yes" {
                    println!("nothing was deleted");
                    return Ok(ExitCode::from(1));
                }
            }
            match session::reset_data(&ctx.home)? {
                session::Reset::Wiped => println!("the VM's data disk is wiped; the next `berth vm start` makes a new one"),
                session::Reset::NothingToWipe => println!("the VM has no data disk yet; nothing to wipe"),
            }
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Status { format } => {
            let state = session::status(&ctx.home).await;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&state)?),
                Format::Text => match &state {
                    VmState::Ready { accel, engine } => {
                        println!("ready ({accel}): engine {} on kernel {} {}/{}", engine.engine_version, engine.kernel_version, engine.os, engine.arch)
                    }
                    VmState::Booting { accel } => println!("booting ({accel})"),
                    VmState::Error { reason } => println!("error: {reason}"),
                    other => println!("{}", other.name()),
                },
            }
            // Like `systemctl is-active`: non-zero unless the VM is ready.
            Ok(if matches!(state, VmState::Ready { .. }) { ExitCode::SUCCESS } else { ExitCode::from(3) })
        }
    }
}
