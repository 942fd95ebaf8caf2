use std::fs;

/// Facts about the machine the engine runs on, read from /proc and /etc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineFacts {
    pub kernel_release: String,
    pub hostname: String,
    pub os_pretty_name: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub uptime_seconds: u64,
}

impl MachineFacts {
    /// Reads what it can; a fact that cannot be read is left empty or zero.
    pub fn read() -> MachineFacts {
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default().trim().to_owned();
        MachineFacts {
            kernel_release: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname"),
            os_pretty_name: parse_os_release(&read("/etc/os-release")).unwrap_or_default(),
            cpus: std::thread::available_parallelism().map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX)).unwrap_or(1),
            memory_bytes: parse_meminfo_total(&read("/proc/meminfo")).unwrap_or(0),
            uptime_seconds: parse_uptime(&read("/proc/uptime")).unwrap_or(0),
        }
    }
}

fn parse_os_release(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim_matches('"').to_owned())
    })
}

fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    // Uptime is never negative and far below u64::MAX seconds.
    Some(secs.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(parse_os_release(text).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(parse_os_release("ID=x\n"), None);
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(parse_meminfo_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(parse_meminfo_total("garbage"), None);
    }

    #[test]
    fn uptime_whole_seconds() {
        assert_eq!(parse_uptime("12.85 3.10\n"), Some(12));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn reads_this_machine() {
        let facts = MachineFacts::read();
        assert!(!facts.kernel_release.is_empty());
        assert!(facts.cpus >= 1);
        assert!(facts.memory_bytes > 0);
    }
}
