//! Go's duration syntax (`time.ParseDuration`, `Duration.String`): HEALTHCHECK flags
//! are written in it, and dockerd prints HEALTHCHECK history with it.

use std::time::Duration;

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses `1h2m3.5s`, `300ms`, `0`. Negative durations are refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("invalid duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err("invalid duration".into());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err("missing unit in duration".into());
        }
        let scale = UNITS.iter().find(|(name, _)| *name == unit).map(|(_, s)| *s).ok_or_else(|| format!("unknown unit {unit:?} in duration"))?;
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| "invalid duration".to_string())? };
        let mut part = whole.checked_mul(scale).ok_or("invalid duration")?;
        if !frac.is_empty() {
            let digits = &frac[..frac.len().min(20)];
            let f: u128 = digits.parse().map_err(|_| "invalid duration".to_string())?;
            part += f * scale / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(part).ok_or("invalid duration")?;
        rest = after;
    }
    if negative && total > 0 {
        return Err("negative duration".into());
    }
    let nanos = u64::try_from(total).map_err(|_| "invalid duration".to_string())?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats like Go's `Duration.String`: `0s`, `1.5ms`, `30s`, `1m30s`, `1h0m0s`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}\u{b5}s", fraction(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 6));
    }
    let seconds = fraction(nanos % 60_000_000_000, 9);
    let total_minutes = nanos / 60_000_000_000;
    let (hours, minutes) = (total_minutes / 60, total_minutes % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / 10^precision` with the fraction's trailing zeros dropped.
fn fraction(value: u128, precision: u32) -> String {
    let scale = 10u128.pow(precision);
    let (int, frac) = (value / scale, value % scale);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = precision as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("30s").expect("succeeds"), Duration::from_secs(30));
        assert_eq!(parse("1m30s").expect("succeeds"), Duration::from_secs(90));
        assert_eq!(parse("1.5h").expect("succeeds"), Duration::from_secs(5400));
        assert_eq!(parse("300ms").expect("succeeds"), Duration::from_millis(300));
        assert_eq!(parse("2us").expect("succeeds"), Duration::from_micros(2));
        assert_eq!(parse("2\u{b5}s").expect("succeeds"), Duration::from_micros(2));
        assert_eq!(parse("0").expect("succeeds"), Duration::ZERO);
        assert_eq!(parse(".5s").expect("succeeds"), Duration::from_millis(500));
        assert_eq!(parse("1.0000000000000000000000000001h").expect("succeeds"), Duration::from_secs(3600));
    }

    #[test]
    fn refuses_bad_durations() {
        assert_eq!(parse("10").expect_err("fails"), "missing unit in duration");
        assert_eq!(parse("5d").expect_err("fails"), "unknown unit \"d\" in duration");
        assert_eq!(parse("-1s").expect_err("fails"), "negative duration");
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(300)), "5m0s");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format(Duration::from_nanos(1500)), "1.5\u{b5}s");
        assert_eq!(format(Duration::from_nanos(12)), "12ns");
    }
}
