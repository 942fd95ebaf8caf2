//! Accept rules for Berth's bridges in iptables' `filter` table, for hosts where
//! another engine owns it. dockerd sets the FORWARD chain's policy to DROP (and turns on
//! br_netfilter, so even traffic within one bridge passes that chain): without rules of
//! its own, Berth's containers could not reach each other or the outside there. A drop
//! in any netfilter chain is final, so these accepts open nothing Berth's own table
//! (`nft.rs`) closes: internal networks and traffic between networks stay dropped there.
//!
//! The rules live in a chain of Berth's (`BERTH-FORWARD`) with one jump from FORWARD, and
//! go with the last network. They are written with the host's own `iptables` (whichever
//! backend it uses, as dockerd does: touching nftables' view of iptables' tables from
//! `nft` would confuse it). Without `iptables` there is no such engine to live beside,
//! and nothing is done.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

pub const CHAIN: &str = "BERTH-FORWARD";

/// The `iptables-restore --noflush` script that makes Berth's chain accept `bridges`'
/// traffic: out of a bridge, and back into it for connections that went out.
pub fn render(bridges: &[String]) -> String {
    let mut script = format!("*filter\n:{CHAIN} - [0:0]\n");
    for bridge in bridges {
        script.push_str(&format!("-A {CHAIN} -i {bridge} -j ACCEPT\n"));
        script.push_str(&format!("-A {CHAIN} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"));
    }
    script.push_str("COMMIT\n");
    script
}

/// Whether this host has iptables to live beside.
fn available() -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("iptables").is_file()))
}

async fn iptables(args: &[&str], stdin: Option<&str>) -> Result<bool, String> {
    let program = if stdin.is_some() { "iptables-restore" } else { "iptables" };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let (Some(script), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(script.as_bytes()).await.map_err(|e| format!("write to {program}: {e}"))?;
    }
    let out = child.wait_with_output().await.map_err(|e| format!("wait for {program}: {e}"))?;
    if out.status.success() {
        return Ok(true);
    }
    // iptables -C answers 1 for "no such rule"; anything else is an error.
    if stdin.is_none() && args.contains(&"-C") && out.status.code() == Some(1) {
        return Ok(false);
    }
    Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
}

/// Makes the host's FORWARD chain accept `bridges`' traffic; with none, takes Berth's
/// chain and its jump away.
pub async fn sync(bridges: &[String]) -> Result<(), String> {
    if !available() {
        return Ok(());
    }
    let jump = ["-w", "-t", "filter", "-C", "FORWARD", "-j", CHAIN];
    if bridges.is_empty() {
        if iptables(&jump, None).await.unwrap_or(false) {
            iptables(&["-w", "-t", "filter", "-D", "FORWARD", "-j", CHAIN], None).await?;
        }
        // Flushed by declaring it, then gone; a chain that was never made is fine.
        iptables(&["-w", "--noflush"], Some(&render(&[]))).await?;
        iptables(&["-w", "-t", "filter", "-X", CHAIN], None).await?;
        return Ok(());
    }
    iptables(&["-w", "--noflush"], Some(&render(bridges))).await?;
    if !iptables(&jump, None).await? {
        iptables(&["-w", "-t", "filter", "-I", "FORWARD", "1", "-j", CHAIN], None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bridge_is_accepted_out_and_answered_back() {
        let script = render(&["berth0".into(), "br-a".into()]);
        assert_eq!(
            script,
            "*filter\n:BERTH-FORWARD - [0:0]\n\
             -A BERTH-FORWARD -i berth0 -j ACCEPT\n\
             -A BERTH-FORWARD -o berth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A BERTH-FORWARD -i br-a -j ACCEPT\n\
             -A BERTH-FORWARD -o br-a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             COMMIT\n"
        );
        assert_eq!(render(&[]), "*filter\n:BERTH-FORWARD - [0:0]\nCOMMIT\n");
    }
}
