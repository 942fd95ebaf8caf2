//! The app's live streams from the engine: a container's resource use (Stats) and an
//! exec terminal (a shell with a tty in a running container). Each runs until the
//! engine ends it or the app drops it.

use berth_proto::v1::{ExecInput, ExecSpec, StatsRequest};
use futures::StreamExt;

use super::engine::Engine;
use super::rows::{LogLine, StatsSample, TerminalEvent};
use super::{status, UiError};
use crate::ErrorKind;

/// The shell a terminal runs: bash where the image has it, else sh (as Docker Desktop).
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

impl Engine {
    /// Sends `each` a sample about every second until the container stops or the engine
    /// ends the stream; then says why.
    pub async fn follow_stats(&self, id: &str, mut each: impl FnMut(StatsSample)) -> UiError {
        let stream = self.client().containers().stats(StatsRequest { id: id.to_owned(), stream: true }).await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(s) => return status("stats")(s),
        };
        while let Some(next) = stream.next().await {
            match next {
                Ok(s) => each(StatsSample {
                    time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
                    cpu_percent: s.cpu_percent,
                    memory_bytes: s.memory_usage as f64,
                    memory_limit: s.memory_limit as f64,
                    net_rx_bytes: s.net_rx as f64,
                    net_tx_bytes: s.net_tx as f64,
                    block_read_bytes: s.block_read as f64,
                    block_write_bytes: s.block_write as f64,
                    pids: s.pids as f64,
                }),
                Err(s) => return status("stats")(s),
            }
        }
        UiError::new(ErrorKind::Unavailable, "the container's stats ended")
    }

    /// Opens a shell with a tty in a running container. Output goes to `output` (from a
    /// task of its own) until the shell exits; keystrokes and sizes go through the
    /// returned [`Terminal`]. Dropping it ends the shell's input.
    pub async fn open_terminal(&self, id: &str, cols: u32, rows: u32, mut output: impl FnMut(TerminalEvent) + Send + 'static) -> Result<Terminal, UiError> {
        let (sender, receiver) = tokio::sync::mpsc::channel::<ExecInput>(64);
        let spec = ExecSpec {
            container: id.to_owned(),
            cmd: vec!["sh".into(), "-c".into(), SHELL.into()],
            env: vec!["TERM=xterm-256color".into()],
            tty: true,
            attach_stdin: true,
            ..Default::default()
        };
        sender
            .send(ExecInput { spec: Some(spec), rows, cols, ..Default::default() })
            .await
            .map_err(|_| UiError::new(ErrorKind::Internal, "the terminal's input closed"))?;
        let mut stream = self.client().containers().exec(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.map_err(status("exec"))?.into_inner();
        tokio::spawn(async move {
            let mut text = Utf8Stream::default();
            while let Some(next) = stream.next().await {
                match next {
                    Ok(m) if m.exited => return output(TerminalEvent::Exit { code: m.exit_code }),
                    Ok(m) => {
                        let data = text.push(&m.data);
                        if !data.is_empty() {
                            output(TerminalEvent::Output { data });
                        }
                    }
                    Err(s) => return output(TerminalEvent::Failed { error: status("exec")(s) }),
                }
            }
            output(TerminalEvent::Failed { error: UiError::new(ErrorKind::Unavailable, "the engine ended the terminal") });
        });
        Ok(Terminal { input: sender })
    }
}

/// The input side of an exec terminal.
#[derive(Debug, Clone)]
pub struct Terminal {
    input: tokio::sync::mpsc::Sender<ExecInput>,
}

impl Terminal {
    pub async fn write(&self, data: &str) -> Result<(), UiError> {
        self.send(ExecInput { stdin: data.as_bytes().to_vec(), ..Default::default() }).await
    }

    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), UiError> {
        self.send(ExecInput { rows, cols, ..Default::default() }).await
    }

    async fn send(&self, input: ExecInput) -> Result<(), UiError> {
        self.input.send(input).await.map_err(|_| UiError::new(ErrorKind::Unavailable, "the terminal has ended"))
    }
}

/// Turns byte chunks into text without splitting a character across two chunks.
#[derive(Debug, Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete sequence at the end waits for the next chunk; a bad one is
            // replaced (error_len is Some).
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }
}

impl Engine {
    /// Sends the last `tail` lines of a container's log (all when negative), then every
    /// new line as it is written, until the container's log ends or the stream is
    /// dropped; then says why.
    pub async fn follow_logs(&self, id: &str, tail: i64, mut each: impl FnMut(LogLine)) -> UiError {
        let request = berth_proto::v1::LogsRequest {
            id: id.to_owned(),
            follow: true,
            stdout: true,
            stderr: true,
            since: String::new(),
            until: String::new(),
            tail,
            timestamps: true,
        };
        let mut stream = match self.client().containers().logs(request).await {
            Ok(s) => s.into_inner(),
            Err(s) => return status("logs")(s),
        };
        // Lines can arrive split across chunks: each stream keeps its unfinished line.
        let mut partial: [String; 2] = Default::default();
        while let Some(next) = stream.next().await {
            match next {
                Ok(chunk) => {
                    let index = usize::from(chunk.stream == 2);
                    let name = if index == 1 { "stderr" } else { "stdout" };
                    let buffer = &mut partial[index];
                    buffer.push_str(&String::from_utf8_lossy(&chunk.data));
                    while let Some(end) = buffer.find('\n') {
                        let text: String = buffer.drain(..=end).collect();
                        each(LogLine { stream: name.to_owned(), time: chunk.time.clone(), text: text.trim_end_matches(['\n', '\r']).to_owned() });
                    }
                }
                Err(s) => return status("logs")(s),
            }
        }
        for (index, rest) in partial.iter().enumerate() {
            if !rest.is_empty() {
                each(LogLine { stream: if index == 1 { "stderr" } else { "stdout" }.to_owned(), time: String::new(), text: rest.clone() });
            }
        }
        UiError::new(ErrorKind::Unavailable, "the container's log ended")
    }

    /// Writes a container's whole log (with timestamps) to a new file; returns the
    /// number of lines.
    pub async fn save_logs(&self, id: &str, path: &str) -> Result<u64, UiError> {
        use std::io::Write;
        let path = std::path::PathBuf::from(path.trim());
        if !path.is_absolute() {
            return Err(UiError::new(ErrorKind::InvalidArgument, format!("{}: save to a full path", path.display())));
        }
        let lines = self.logs(id, -1).await?;
        let io = |e: std::io::Error| UiError::new(ErrorKind::Internal, format!("{}: {e}", path.display()));
        let mut file = std::fs::File::options().write(true).create_new(true).open(&path).map_err(io)?;
        let mut text = String::new();
        for line in &lines {
            text.push_str(&line.time);
            text.push(' ');
            text.push_str(&line.text);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        Ok(lines.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    #[test]
    fn a_character_split_across_chunks_arrives_whole() {
        let mut s = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(s.push(&[b'a', euro[0]]), "a");
        assert_eq!(s.push(&euro[1..]), "€");
        assert_eq!(s.push(&[0xff, b'b']), "\u{fffd}b");
    }
}
