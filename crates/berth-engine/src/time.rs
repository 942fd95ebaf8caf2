//! Time as the engine stamps it (RFC 3339, nanoseconds, UTC) and as docker's
//! `since`, `until` and prune filters read it.

/// Now, as RFC 3339 UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A time as docker's `--since`/`--until` take it: RFC 3339, unix seconds with an
/// optional fraction, or a duration back from now (`10m`, `1h30m`, `42s`).
pub fn parse_time(text: &str, now_nanos: i64) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return t.timestamp_nanos_opt();
    }
    if let Some((secs, frac)) = text.split_once('.').or(Some((text, ""))) {
        if let (Ok(secs), true) = (secs.parse::<i64>(), frac.bytes().all(|b| b.is_ascii_digit())) {
            let frac = format!("{frac:0<9}");
            let nanos: i64 = frac[..9].parse().unwrap_or(0);
            // A number of seconds that does not fit is not a time (it overflowed).
            return secs.checked_mul(1_000_000_000)?.checked_add(nanos);
        }
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            'h' => 3_600_000_000_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1_000_000
            }
            'm' => 60_000_000_000,
            's' => 1_000_000_000,
            _ => return None,
        };
        let value: f64 = number.parse().ok()?;
        let part = value * unit as f64;
        if !part.is_finite() || part >= i64::MAX as f64 {
            return None;
        }
        total = total.checked_add(part as i64)?;
        number.clear();
    }
    if !number.is_empty() {
        return None;
    }
    now_nanos.checked_sub(total)
}
