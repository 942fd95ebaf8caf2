//! Berth's nftables table (`ip berth`): masquerade for each bridge that may reach the
//! outside, no forwarding between two Berth networks, and no way in or out of an
//! internal one. The whole table is rendered from the networks and replaced in one
//! atomic `nft -f` transaction, so it never holds rules of a network that is gone.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

pub const TABLE: &str = "berth";

/// One bridge network's part of the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    /// CIDR.
    pub subnet: String,
    pub internal: bool,
    pub masquerade: bool,
}

/// The `nft -f` script that replaces Berth's table with one for `bridges`.
pub fn render(bridges: &[BridgeRules]) -> String {
    let mut forward = String::new();
    let mut nat = String::new();
    for b in bridges {
        let others: Vec<String> = bridges.iter().filter(|o| o.bridge != b.bridge).map(|o| format!("\"{}\"", o.bridge)).collect();
        if b.internal {
            forward.push_str(&format!("    iifname \"{0}\" oifname != \"{0}\" drop\n", b.bridge));
            forward.push_str(&format!("    oifname \"{0}\" iifname != \"{0}\" drop\n", b.bridge));
        } else if !others.is_empty() {
            forward.push_str(&format!("    iifname \"{}\" oifname {{ {} }} drop\n", b.bridge, others.join(", ")));
        }
        if b.masquerade && !b.internal {
            nat.push_str(&format!("    ip saddr {} oifname != \"{}\" masquerade\n", b.subnet, b.bridge));
        }
    }
    format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{forward}  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{nat}  }}\n}}\n"
    )
}

/// Runs `nft -f -` with `script`.
pub async fn run(script: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (nftables is needed for networks): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(|e| format!("write to nft: {e}"))?;
    }
    let out = child.wait_with_output().await.map_err(|e| format!("wait for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_isolate_networks_and_close_internal_ones() {
        let script = render(&[
            BridgeRules { bridge: "berth0".into(), subnet: "172.17.0.0/16".into(), internal: false, masquerade: true },
            BridgeRules { bridge: "br-a".into(), subnet: "172.18.0.0/16".into(), internal: true, masquerade: true },
        ]);
        assert!(script.starts_with("table ip berth\ndelete table ip berth\n"), "{script}");
        assert!(script.contains("iifname \"berth0\" oifname { \"br-a\" } drop"), "{script}");
        assert!(script.contains("iifname \"br-a\" oifname != \"br-a\" drop"), "{script}");
        assert!(script.contains("oifname \"br-a\" iifname != \"br-a\" drop"), "{script}");
        assert!(script.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"), "{script}");
        assert!(!script.contains("172.18.0.0/16"), "an internal network is not masqueraded: {script}");
    }
}
