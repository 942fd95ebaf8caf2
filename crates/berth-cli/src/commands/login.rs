use std::io::BufRead;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_host::credentials::{self, Login};
use berth_proto::v1::{LoginRequest, RegistryAuth};

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry host[:port] (default: Docker Hub).
    server: Option<String>,
    #[arg(long, short)]
    username: Option<String>,
    /// The password (prefer --password-stdin: arguments are visible to other users).
    #[arg(long, short)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    server: Option<String>,
}

pub async fn login(ctx: &Context, args: Args) -> CommandResult {
    let server = args.server.unwrap_or_else(|| "docker.io".to_owned());
    let username = args.username.ok_or("a user name is required (-u)")?;
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => return Err("--password and --password-stdin are exclusive".into()),
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => return Err("a password is required (-p or --password-stdin)".into()),
    };
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let request = LoginRequest { registry: server.clone(), auth: Some(RegistryAuth { username: username.clone(), password: password.clone() }) };
    let answer = agent.images().login(request).await.map_err(|s| CallError::from_status("login", s))?.into_inner();
    credentials::store(&server, &Login { username, password })?;
    println!("{}", answer.status);
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(_ctx: &Context, args: LogoutArgs) -> CommandResult {
    let server = args.server.unwrap_or_else(|| "docker.io".to_owned());
    if credentials::erase(&server)? {
        println!("Removing login credentials for {}", credentials::key_for(&server));
    } else {
        println!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}
