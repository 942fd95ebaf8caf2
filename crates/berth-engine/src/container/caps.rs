//! Capabilities: Docker's default set, `--cap-add`/`--cap-drop` (names with or without
//! `CAP_`, or `ALL`), `--privileged`. Whatever the request, a container never gets a
//! capability the engine itself lacks (some machines withhold CAP_SYS_RESOURCE even
//! from root), so "all" means "all we hold".

use std::collections::BTreeSet;

/// Linux capabilities by number.
pub const ALL: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What a Docker container gets by default.
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[derive(Debug, thiserror::Error)]
#[error("unknown capability: {0:?}")]
pub struct UnknownCapability(pub String);

/// `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`.
pub fn normalise(name: &str) -> Result<String, UnknownCapability> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    if ALL.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(UnknownCapability(name.to_owned()))
    }
}

/// The capabilities in this process's bounding set (all of them if it cannot be read).
pub fn held() -> BTreeSet<String> {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find_map(|l| l.strip_prefix("CapBnd:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()));
    ALL.iter().enumerate().filter(|(bit, _)| mask.is_none_or(|m| m & (1u64 << bit) != 0)).map(|(_, name)| (*name).to_owned()).collect()
}

/// The container's capability set.
pub fn compute(privileged: bool, add: &[String], drop: &[String], held: &BTreeSet<String>) -> Result<BTreeSet<String>, UnknownCapability> {
    let add: Vec<String> = add.iter().map(|c| normalise(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(|c| normalise(c)).collect::<Result<_, _>>()?;
    let mut caps: BTreeSet<String> =
        if privileged || add.iter().any(|c| c == "ALL") { held.clone() } else { DEFAULT.iter().map(|c| (*c).to_owned()).collect() };
    if !privileged {
        if drop.iter().any(|c| c == "ALL") {
            caps.clear();
        }
        for cap in &drop {
            caps.remove(cap);
        }
        for cap in add.iter().filter(|c| *c != "ALL") {
            caps.insert(cap.clone());
        }
    }
    caps.retain(|c| held.contains(c));
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<String> {
        ALL.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn defaults_adds_drops_and_the_held_ceiling() {
        let caps = compute(false, &[], &[], &all()).expect("caps");
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains("CAP_SYS_ADMIN"));
        let caps = compute(false, &["net_admin".into()], &["CHOWN".into()], &all()).expect("caps");
        assert!(caps.contains("CAP_NET_ADMIN") && !caps.contains("CAP_CHOWN"));
        let caps = compute(false, &["NET_BIND_SERVICE".into()], &["ALL".into()], &all()).expect("caps");
        assert_eq!(caps.into_iter().collect::<Vec<_>>(), vec!["CAP_NET_BIND_SERVICE".to_owned()]);
        let mut held = all();
        held.remove("CAP_SYS_RESOURCE");
        let caps = compute(true, &[], &[], &held).expect("caps");
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains("CAP_SYS_RESOURCE"));
        assert!(compute(false, &["FLY".into()], &[], &all()).is_err());
    }
}
