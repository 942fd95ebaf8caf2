//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-30T04:50:00.123456789Z"}`.
//! Output is split at newlines; a line without one is held until it ends, grows past
//! 16 KiB, or the container exits (as Docker's copier does).
//! With a size limit the file rotates as docker's json-file driver rotates it:
//! `container.log` becomes `container.log.1` (the older ones move up, the oldest
//! beyond `max_file` goes), or with one file it is emptied.

use std::io::Write;

const MAX_PARTIAL: usize = 16 * 1024;

#[derive(Debug)]
pub struct JsonLog {
    file: std::fs::File,
    pending: [Vec<u8>; 2],
    path: std::path::PathBuf,
    /// Bytes in the current file.
    size: u64,
    /// 0: no limit.
    max_size: u64,
    max_file: u32,
}

fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::File::options().create(true).append(true).open(path)
}

/// `container.log.N`.
pub fn rotated(path: &std::path::Path, n: u32) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    std::path::PathBuf::from(name)
}

impl JsonLog {
    /// Appends to `path` (made if missing), rotating past `max_size` bytes (0: never)
    /// and keeping `max_file` files.
    pub fn open(path: std::path::PathBuf, max_size: u64, max_file: u32) -> std::io::Result<JsonLog> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog { file, pending: [Vec::new(), Vec::new()], path, size, max_size, max_file: max_file.max(1) })
    }

    /// Writes encoded lines (each ending in a newline), in as few writes as the size
    /// limit allows: the file rotates before a line that would pass it (a file holds
    /// at least one line, so a line longer than the limit still lands whole).
    fn append(&mut self, out: &[u8]) -> std::io::Result<()> {
        let mut batch = 0;
        let mut at = 0;
        while at < out.len() {
            let end = out[at..].iter().position(|b| *b == b'\n').map_or(out.len(), |p| at + p + 1);
            let filled = self.size + (at - batch) as u64;
            if self.max_size > 0 && filled > 0 && filled + (end - at) as u64 > self.max_size {
                self.file.write_all(&out[batch..at])?;
                self.rotate()?;
                batch = at;
            }
            at = end;
        }
        self.file.write_all(&out[batch..])?;
        self.size += (out.len() - batch) as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_file == 1 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.max_file - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Appends output of `stream` (1 = stdout, 2 = stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        let index = usize::from(stream == 2);
        let mut out = Vec::new();
        let mut rest = data;
        let now = now_rfc3339();
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let pending = &mut self.pending[index];
            pending.extend_from_slice(&rest[..=pos]);
            encode_line(&mut out, pending, stream, &now);
            pending.clear();
            rest = &rest[pos + 1..];
        }
        let pending = &mut self.pending[index];
        pending.extend_from_slice(rest);
        if pending.len() >= MAX_PARTIAL {
            encode_line(&mut out, pending, stream, &now);
            pending.clear();
        }
        self.append(&out)
    }

    /// Writes what is held (the last line without a newline).
    pub fn flush(&mut self) -> std::io::Result<()> {
        let now = now_rfc3339();
        let mut out = Vec::new();
        for (index, pending) in self.pending.iter_mut().enumerate() {
            if !pending.is_empty() {
                encode_line(&mut out, pending, if index == 0 { 1 } else { 2 }, &now);
                pending.clear();
            }
        }
        self.append(&out)
    }
}

fn encode_line(out: &mut Vec<u8>, text: &[u8], stream: u8, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape(out, &String::from_utf8_lossy(text));
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(if stream == 2 { b"stderr" } else { b"stdout" });
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// JSON string escaping.
pub fn escape(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// The current time as RFC 3339 UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_796_013_000, 5), "2026-11-30T04:30:00.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn lines_are_split_and_partial_lines_held() {
        let path = std::env::temp_dir().join(format!("berth-monitor-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut log = JsonLog::open(path.clone(), 0, 1).expect("open");
        log.write(1, b"one\ntw").expect("write");
        log.write(2, b"err \"quoted\"\n").expect("write");
        log.write(1, b"o\n").expect("write");
        log.write(1, b"tail").expect("write");
        log.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with(r#"{"log":"one\n","stream":"stdout","time":""#), "{}", lines[0]);
        assert!(lines[1].starts_with(r#"{"log":"err \"quoted\"\n","stream":"stderr""#), "{}", lines[1]);
        assert!(lines[2].starts_with(r#"{"log":"two\n","stream":"stdout""#), "{}", lines[2]);
        assert!(lines[3].starts_with(r#"{"log":"tail","stream":"stdout""#), "{}", lines[3]);
    }

    #[test]
    fn the_log_rotates_past_its_size_and_keeps_max_file_files() {
        let dir = std::env::temp_dir().join(format!("berth-monitor-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("container.log");
        let mut log = JsonLog::open(path.clone(), 300, 3).expect("open");
        // Line by line, then many lines in one read (as a fast writer's pipe gives them).
        for i in 0..50 {
            log.write(1, format!("line {i:03}\n").as_bytes()).expect("write");
        }
        let burst: String = (50..100).map(|i| format!("line {i:03}\n")).collect();
        log.write(1, burst.as_bytes()).expect("write");
        let mut names: Vec<String> = std::fs::read_dir(&dir).expect("list").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["container.log", "container.log.1", "container.log.2"]);
        let mut all = String::new();
        for name in ["container.log.2", "container.log.1", "container.log"] {
            let text = std::fs::read_to_string(dir.join(name)).expect("read");
            assert!(text.len() <= 300, "{name} holds {} bytes", text.len());
            all.push_str(&text);
        }
        // The newest lines, in order, with none missing between the files.
        let numbers: Vec<u32> = all.lines().map(|l| l[13..16].parse().expect("number")).collect();
        assert_eq!(numbers.last(), Some(&99));
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        // One file: emptied instead.
        let single = dir.join("single.log");
        let mut log = JsonLog::open(single.clone(), 300, 1).expect("open");
        for i in 0..100 {
            log.write(1, format!("line {i:03}\n").as_bytes()).expect("write");
        }
        assert!(std::fs::metadata(&single).expect("stat").len() <= 300);
        assert!(!rotated(&single, 1).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
