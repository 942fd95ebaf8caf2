use std::process::ExitCode;
use std::time::Duration;

use berth_host::vm::{self, StopOutcome, VmConfig, VmState};

use super::{CommandResult, Context, Format};

#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Boot the VM and wait until its engine answers.
    Start,
    /// Power the VM off (ACPI power button, then quit, then kill).
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
}

pub async fn run(ctx: &Context, cmd: VmCommand) -> CommandResult {
    match cmd {
        VmCommand::Start => {
            let config = VmConfig::from_env()?;
            let running = vm::start(&ctx.home, &config, |state| {
                if let VmState::Booting { accel } = state {
                    eprintln!("booting the VM ({accel})...");
                }
            })
            .await?;
            println!(
                "VM ready in {:.2}s: engine {} on kernel {} ({})",
                running.boot_time.as_secs_f64(),
                running.engine.engine_version,
                running.engine.kernel_version,
                running.record.accel.as_str()
            );
            running.detach();
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Stop { time } => {
            let outcome = vm::stop(&ctx.home, Duration::from_secs(time)).await?;
            println!(
                "{}",
                match outcome {
                    StopOutcome::NotRunning => "the VM was not running",
                    StopOutcome::PoweredOff => "the VM powered off",
                    StopOutcome::Quit => "the VM did not power off in time; QEMU was told to quit",
                    StopOutcome::Killed => "the VM did not stop; QEMU was killed",
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Status { format } => {
            let state = vm::status(&ctx.home).await;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&state)?),
                Format::Text => match &state {
                    VmState::Ready { accel, engine } => println!(
                        "ready ({accel}): engine {} on kernel {} {}/{}",
                        engine.engine_version, engine.kernel_version, engine.os, engine.arch
                    ),
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
