//! Reading the json-file log the monitor writes: `--since`, `--until`, `--tail`,
//! stream selection, and `--follow` until the container stops.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{ContainerError, Containers};

#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix nanoseconds; lines before are skipped.
    pub since: Option<i64>,
    /// Unix nanoseconds; lines after are skipped (and `follow` ends there).
    pub until: Option<i64>,
    /// Only the last n lines.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// 1 = stdout, 2 = stderr.
    pub stream: u8,
    pub data: Vec<u8>,
    pub time: String,
}

#[derive(Debug, Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

pub use crate::time::parse_time;

fn decode(line: &str, query: &LogsQuery) -> Option<LogLine> {
    let entry: Entry = serde_json::from_str(line).ok()?;
    let stream = if entry.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !query.stdout) || (stream == 2 && !query.stderr) {
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc3339(&entry.time).ok().and_then(|t| t.timestamp_nanos_opt());
    if let (Some(since), Some(at)) = (query.since, at) {
        if at < since {
            return None;
        }
    }
    if let (Some(until), Some(at)) = (query.until, at) {
        if at > until {
            return None;
        }
    }
    Some(LogLine { stream, data: entry.log.into_bytes(), time: entry.time })
}

/// Calls `each` for every whole line from `offset` on, and moves `offset` past them
/// (a line still being written is left for the next call).
fn read_from(path: &std::path::Path, offset: &mut u64, mut each: impl FnMut(&str)) {
    let Ok(mut file) = std::fs::File::open(path) else { return };
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap_or(0);
        if n == 0 || !line.ends_with('\n') {
            return;
        }
        *offset += n as u64;
        each(line.trim_end_matches('\n'));
    }
}

/// `container.log.N`, the Nth newest rotated file.
fn rotated(path: &std::path::Path, n: u32) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    std::path::PathBuf::from(name)
}

/// The most rotated files a log may have (docker's json-file allows any number; Berth's
/// reader looks this far).
const MAX_ROTATED: u32 = 100;

fn inode(path: &std::path::Path) -> Option<u64> {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).ok()?).into()
}

/// Follows the monitor's rotations: when `container.log` is a new file, the rest of
/// the one being read is in `container.log.1` (or, with one file, it was emptied).
fn reread_after_rotation(path: &std::path::Path, offset: &mut u64, current: &mut Option<u64>, each: &mut impl FnMut(&str)) {
    let now = inode(path);
    if now != *current {
        let older = rotated(path, 1);
        if current.is_some() && inode(&older) == *current {
            read_from(&older, offset, &mut *each);
        }
        *offset = 0;
        *current = now;
    } else if std::fs::metadata(path).is_ok_and(|m| m.len() < *offset) {
        *offset = 0;
    }
}

impl Containers {
    /// The container's log lines, as a channel; with `follow`, it stays open until the
    /// container stops (or `until` passes).
    pub fn logs(self: &Arc<Self>, key: &str, query: LogsQuery) -> Result<tokio::sync::mpsc::Receiver<LogLine>, ContainerError> {
        let record = self.find(key)?;
        let path = self.dir(&record.id).join("container.log");
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        let this = self.clone();
        let id = record.id.clone();
        tokio::spawn(async move {
            let mut changes = this.changes.subscribe();
            let mut offset = 0u64;
            let mut backlog: Vec<LogLine> = Vec::new();
            // Rotated files first, oldest first (a rotation meanwhile may repeat or skip
            // a file's lines, as with docker's reader).
            for n in (1..=MAX_ROTATED).rev() {
                let older = rotated(&path, n);
                if older.exists() {
                    read_from(&older, &mut 0, |line| {
                        if let Some(decoded) = decode(line, &query) {
                            backlog.push(decoded);
                        }
                    });
                }
            }
            let mut current = inode(&path);
            read_from(&path, &mut offset, |line| {
                if let Some(decoded) = decode(line, &query) {
                    backlog.push(decoded);
                }
            });
            if let Some(tail) = query.tail {
                let skip = backlog.len().saturating_sub(tail);
                backlog.drain(..skip);
            }
            for line in backlog {
                if sender.send(line).await.is_err() {
                    return;
                }
            }
            if !query.follow {
                return;
            }
            loop {
                let running = this.store.get(&id).ok().flatten().is_some_and(|r| r.state.status.is_running() || r.state.status == super::Status::Restarting);
                let mut fresh: Vec<LogLine> = Vec::new();
                let mut keep = |line: &str| {
                    if let Some(decoded) = decode(line, &query) {
                        fresh.push(decoded);
                    }
                };
                reread_after_rotation(&path, &mut offset, &mut current, &mut keep);
                read_from(&path, &mut offset, &mut keep);
                for line in fresh {
                    if sender.send(line).await.is_err() {
                        return;
                    }
                }
                let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
                if !running || query.until.is_some_and(|u| now > u) || sender.is_closed() {
                    return;
                }
                tokio::select! {
                    _ = changes.recv() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Ok(receiver)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_that_overflow_are_refused_not_wrapped() {
        let now = 1_700_000_000_000_000_000;
        for text in ["9223372036854775807", "99999999999999999999", "9223372037.5", "99999999999999h", "1e300s"] {
            assert_eq!(super::parse_time(text, now), None, "{text}");
        }
        assert_eq!(super::parse_time("1.5", now), Some(1_500_000_000));
        assert_eq!(super::parse_time("1m", now), Some(now - 60_000_000_000));
    }

    use super::*;

    #[test]
    fn times_parse_like_docker() {
        let now = 1_000_000_000_000_000_000;
        assert_eq!(parse_time("1796013000", now), Some(1_796_013_000_000_000_000));
        assert_eq!(parse_time("1796013000.5", now), Some(1_796_013_000_500_000_000));
        assert_eq!(parse_time("2026-11-30T04:30:00Z", now), Some(1_796_013_000_000_000_000));
        assert_eq!(parse_time("10m", now), Some(now - 600_000_000_000));
        assert_eq!(parse_time("1h30m", now), Some(now - 5_400_000_000_000));
        assert_eq!(parse_time("250ms", now), Some(now - 250_000_000));
        assert_eq!(parse_time("soon", now), None);
    }

    #[test]
    fn lines_filter_by_stream_and_time() {
        let query = LogsQuery { stdout: true, stderr: false, since: Some(1_796_013_000_000_000_000), ..Default::default() };
        let out = r#"{"log":"a\n","stream":"stdout","time":"2026-11-30T04:30:01.000000000Z"}"#;
        let err = r#"{"log":"b\n","stream":"stderr","time":"2026-11-30T04:30:01.000000000Z"}"#;
        let early = r#"{"log":"c\n","stream":"stdout","time":"2026-11-30T04:29:59.000000000Z"}"#;
        assert_eq!(decode(out, &query).expect("kept").data, b"a\n");
        assert!(decode(err, &query).is_none());
        assert!(decode(early, &query).is_none());
    }
}
