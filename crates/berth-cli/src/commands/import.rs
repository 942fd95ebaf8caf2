use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_host::agent::CallError;
use berth_proto::v1::ImportChunk;

use super::{CommandResult, Context};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A root filesystem tarball (plain, gzip or zstd); `-` for standard input.
    file: PathBuf,
    /// Name for the new image.
    reference: Option<String>,
}

pub async fn run(ctx: &Context, args: Args) -> CommandResult {
    let (_, agent) = engine::connect(ctx.host.as_deref(), &ctx.home).await?;
    let mut reader: Box<dyn Read + Send> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(&args.file).map_err(|e| format!("cannot open {}: {e}", args.file.display()))?)
    };
    let name = args.reference.unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ImportChunk>(4);
    let reading = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut first = true;
        loop {
            let n = reader.read(&mut buf)?;
            // The first chunk always goes, so the name arrives even for an empty file.
            if (n == 0 && !first) || tx.blocking_send(ImportChunk { reference: name.clone(), data: buf[..n].to_vec() }).is_err() {
                return Ok(());
            }
            if n == 0 {
                return Ok(());
            }
            first = false;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let image = agent.images().import(stream).await.map_err(|s| CallError::from_status("import", s));
    reading.await??;
    println!("{}", image?.into_inner().id);
    Ok(ExitCode::SUCCESS)
}
