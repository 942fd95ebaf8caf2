//! `berth`: parses the command line and calls berth-host. Each command is one file in
//! `commands/`.

mod commands;
mod engine;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = commands::Cli::parse();
    if !cli.is_server() {
        // A client whose output goes to a closed pipe (`berth ps | head`) ends quietly,
        // as other command-line tools do, instead of failing on every later print.
        // SAFETY: restoring the default action of SIGPIPE before any thread starts.
        #[cfg(unix)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL)
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("berth: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {}", berth_host::agent::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
