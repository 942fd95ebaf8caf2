//! docker's syntax for durations, sizes and restart policies, shared by the CLI and
//! compose.

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(text: &str) -> Result<crate::v1::RestartPolicy, String> {
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name, count.parse::<u32>().map_err(|_| format!("invalid restart policy {text:?}"))?),
        None => (text, 0),
    };
    if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(format!("invalid restart policy {text:?}: use no, always, unless-stopped or on-failure[:N]"));
    }
    Ok(crate::v1::RestartPolicy { name: name.to_owned(), maximum_retry_count: count })
}

/// A Go-style duration (`30s`, `1m30s`, `500ms`, `2h`) in nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration: {text:?}");
    let mut total: f64 = 0.0;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    if chars.peek().is_none() {
        return Err(bad());
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3.6e12,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1e6
            }
            'm' => 6e10,
            's' => 1e9,
            'u' | 'µ' if chars.peek() == Some(&'s') => {
                chars.next();
                1e3
            }
            'n' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total as i64)
}

/// `64m`, `1g`, `512k`, `1000` (bytes) as docker reads them (binary units).
pub fn parse_bytes(text: &str) -> Result<i64, String> {
    let text = text.trim().to_ascii_lowercase();
    if text == "-1" {
        return Ok(-1);
    }
    let digits_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| format!("invalid size: {text:?}"))?;
    let multiplier: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("invalid size: {text:?}")),
    };
    Ok((number * multiplier) as i64)
}

/// docker's `--ulimit name=soft[:hard]` (hard defaults to soft; -1 is unlimited):
/// (name, soft, hard).
pub fn parse_ulimit(text: &str) -> Result<(String, i64, i64), String> {
    let bad = || format!("invalid ulimit argument: {text}");
    let (name, limits) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.trim().parse().map_err(|_| bad())?;
    let hard: i64 = hard.trim().parse().map_err(|_| bad())?;
    if name.is_empty() {
        return Err(bad());
    }
    Ok((name.trim().to_owned(), soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_docker() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert!(parse_duration("10 parsecs").is_err());
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_restart("on-failure:3").map(|p| p.maximum_retry_count), Ok(3));
        assert!(parse_restart("sometimes").is_err());
    }

    #[test]
    fn ulimits_read_like_docker() {
        assert_eq!(parse_ulimit("nofile=1024:2048"), Ok(("nofile".to_owned(), 1024, 2048)));
        assert_eq!(parse_ulimit("nproc=512"), Ok(("nproc".to_owned(), 512, 512)));
        assert_eq!(parse_ulimit("core=-1"), Ok(("core".to_owned(), -1, -1)));
        assert!(parse_ulimit("nofile").is_err() && parse_ulimit("nofile=a:b").is_err() && parse_ulimit("=1").is_err());
    }
}
