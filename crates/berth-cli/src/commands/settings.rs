//! `berth settings get [KEY] [--json]` and `berth settings set KEY VALUE...`: the one
//! settings file (`$BERTH_HOME/settings.json`) the CLI, the session and the app read.

use std::process::ExitCode;

use berth_host::settings::{self, Settings};

use super::{CommandResult, Context};

#[derive(Debug, clap::Subcommand)]
pub enum SettingsCommand {
    /// Show every setting (defaults filled in), or one.
    Get {
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Change a setting: a number, a list (several values or comma-separated), or for
    /// `engine` a JSON object of daemon.json keys.
    Set {
        key: String,
        #[arg(required = true, num_args = 1..)]
        values: Vec<String>,
    },
}

pub async fn run(ctx: &Context, cmd: SettingsCommand) -> CommandResult {
    match cmd {
        SettingsCommand::Get { key, json } => {
            let all = Settings::load(&ctx.home)?.effective();
            let shown = match &key {
                Some(key) => all.get(key).cloned().ok_or_else(|| settings::SettingsError::UnknownKey(key.clone()))?,
                None => serde_json::Value::Object(all),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                match shown {
                    serde_json::Value::Object(map) if key.is_none() => {
                        for (k, v) in map {
                            println!("{k}: {}", text(&v));
                        }
                    }
                    other => println!("{}", text(&other)),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SettingsCommand::Set { key, values } => {
            let mut all = Settings::load(&ctx.home)?;
            all.set(&key, &values)?;
            all.save(&ctx.home)?;
            // Every setting is read when the VM starts.
            if berth_host::session::find(&ctx.home).is_some() {
                eprintln!("saved; the running VM uses it once it starts again (berth vm stop && berth vm start)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
