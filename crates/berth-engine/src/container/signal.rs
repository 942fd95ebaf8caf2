//! Signal names as docker accepts them: `TERM`, `SIGTERM`, `sigterm`, `15`,
//! `SIGRTMIN+3`.

const NAMES: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
];

/// The signal's number, or None for a name docker would refuse.
pub fn parse(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if name == "SYS" {
        return Some(31);
    }
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let offset = if rest.is_empty() { 0 } else { rest.strip_prefix('+')?.parse::<i32>().ok()? };
        return (offset <= 30).then_some(34 + offset);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let offset = if rest.is_empty() { 0 } else { rest.strip_prefix('-')?.parse::<i32>().ok()? };
        return (offset <= 30).then_some(64 - offset);
    }
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, number)| *number)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_numbers() {
        assert_eq!(super::parse("TERM"), Some(15));
        assert_eq!(super::parse("sigkill"), Some(9));
        assert_eq!(super::parse("SIGUSR1"), Some(10));
        assert_eq!(super::parse("2"), Some(2));
        assert_eq!(super::parse("SIGRTMIN+3"), Some(37));
        assert_eq!(super::parse("RTMAX-1"), Some(63));
        assert_eq!(super::parse("SIGFOO"), None);
        assert_eq!(super::parse("0"), None);
        assert_eq!(super::parse("99"), None);
    }
}
