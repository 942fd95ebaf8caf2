use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::ArchiveChunk;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from this file instead of standard input.
    #[arg(long, short)]
    input: Option<PathBuf>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut reader: Box<dyn Read + Send> = match &args.input {
        Some(path) => Box::new(std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?),
        None => Box::new(std::io::stdin()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<ArchiveChunk>(4);
    let reading = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 || tx.blocking_send(ArchiveChunk { data: buf[..n].to_vec() }).is_err() {
                return Ok(());
            }
        }
    });
    let response = agent.images().load(tokio_stream_of(rx)).await.map_err(|s| CallError::from_status("load", s));
    reading.await??;
    for name in response?.into_inner().loaded {
        println!("Loaded image: {}", super::images::familiar(&name));
    }
    Ok(ExitCode::SUCCESS)
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<ArchiveChunk>) -> impl futures::Stream<Item = ArchiveChunk> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
