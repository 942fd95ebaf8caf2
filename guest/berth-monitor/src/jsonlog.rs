//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-30T04:50:00.123456789Z"}`.
//! Output is split at newlines; a line without one is held until it ends, grows past
//! 16 KiB, or the container exits (as Docker's copier does).

use std::io::Write;

const MAX_PARTIAL: usize = 16 * 1024;

#[derive(Debug)]
pub struct JsonLog {
    file: std::fs::File,
    pending: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn new(file: std::fs::File) -> JsonLog {
        JsonLog { file, pending: [Vec::new(), Vec::new()] }
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
        if !out.is_empty() {
            self.file.write_all(&out)?;
        }
        Ok(())
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
        self.file.write_all(&out)
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
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
        let mut log = JsonLog::new(std::fs::File::create(&path).expect("create"));
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
}
