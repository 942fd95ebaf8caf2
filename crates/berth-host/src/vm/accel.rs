//! Choosing the accelerator. A hardware accelerator counts as usable only once a VM
//! has really booted under it: on some hosts /dev/kvm exists but standard kernels hang.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Hvf,
    Whpx,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Whpx => "whpx",
            Accel::Tcg => "tcg",
        }
    }

    pub fn is_hardware(self) -> bool {
        self != Accel::Tcg
    }

    /// The `-cpu` model that goes with this accelerator and guest.
    ///
    /// An arm64 guest under TCG is a Cortex-A72 (ARMv8.0, what arm64 images target), not
    /// `max`: `max` has pointer authentication, which Debian's kernel uses in every
    /// function and TCG emulates with the QARMA cipher. The bare-boot floor took 23.4 s
    /// with `max` and 3.2 s with `cortex-a72` (one run each, `qemu-system-aarch64 -machine
    /// virt,accel=tcg -cpu MODEL` with the image's floor initramfs).
    pub fn cpu_model(self, arch: crate::vm::Arch) -> &'static str {
        match (self, arch) {
            (Accel::Tcg, crate::vm::Arch::Arm64) => "cortex-a72",
            (Accel::Tcg, crate::vm::Arch::X86_64) => "max",
            _ => "host",
        }
    }

    pub fn parse(text: &str) -> Option<Accel> {
        match text {
            "kvm" => Some(Accel::Kvm),
            "hvf" => Some(Accel::Hvf),
            "whpx" => Some(Accel::Whpx),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

/// What the user asked for (`BERTH_ACCEL`): one accelerator, or the best that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    Auto,
    Only(Accel),
}

impl AccelChoice {
    pub fn parse(text: &str) -> Result<AccelChoice, String> {
        match text {
            "" | "auto" => Ok(AccelChoice::Auto),
            other => Accel::parse(other).map(AccelChoice::Only).ok_or_else(|| format!("unknown accelerator {other:?}: expected auto, kvm, hvf, whpx or tcg")),
        }
    }
}

/// A remembered verdict that a hardware accelerator does not boot our kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub accel: Accel,
    /// The kernel image it was tried with (size and mtime), so a new kernel is retried.
    pub kernel_id: String,
    pub reason: String,
}

/// The accelerators to try, best first. TCG is always last and always works.
pub fn candidates(choice: AccelChoice, kernel_id: &str, verdicts: &[Verdict]) -> Vec<Accel> {
    if let AccelChoice::Only(accel) = choice {
        return vec![accel];
    }
    let mut list: Vec<Accel> = hardware_present().into_iter().collect();
    list.retain(|accel| !verdicts.iter().any(|v| v.accel == *accel && v.kernel_id == kernel_id));
    list.push(Accel::Tcg);
    list
}

/// The hardware accelerator this host offers, if its device is there and ours to open.
fn hardware_present() -> Option<Accel> {
    if cfg!(target_os = "linux") {
        let kvm = Path::new("/dev/kvm");
        let usable = std::fs::OpenOptions::new().read(true).write(true).open(kvm).is_ok();
        usable.then_some(Accel::Kvm)
    } else if cfg!(target_os = "macos") {
        Some(Accel::Hvf)
    } else if cfg!(windows) {
        Some(Accel::Whpx)
    } else {
        None
    }
}

/// An identity for a kernel file that changes when the file does.
pub fn kernel_id(kernel: &Path) -> String {
    match std::fs::metadata(kernel) {
        Ok(meta) => {
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0);
            format!("{}:{}:{}", kernel.display(), meta.len(), mtime)
        }
        Err(_) => kernel.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_choice_is_the_only_candidate() {
        assert_eq!(candidates(AccelChoice::Only(Accel::Tcg), "k", &[]), vec![Accel::Tcg]);
    }

    #[test]
    fn auto_ends_with_tcg_and_skips_failed_hardware() {
        let all = candidates(AccelChoice::Auto, "k1", &[]);
        assert_eq!(all.last(), Some(&Accel::Tcg));
        let verdicts: Vec<Verdict> =
            all.iter().filter(|a| a.is_hardware()).map(|a| Verdict { accel: *a, kernel_id: "k1".into(), reason: "hung".into() }).collect();
        assert_eq!(candidates(AccelChoice::Auto, "k1", &verdicts), vec![Accel::Tcg]);
        // A different kernel gets a fresh chance.
        assert_eq!(candidates(AccelChoice::Auto, "k2", &verdicts), all);
    }

    #[test]
    fn parse_choice() {
        assert_eq!(AccelChoice::parse("auto"), Ok(AccelChoice::Auto));
        assert_eq!(AccelChoice::parse("tcg"), Ok(AccelChoice::Only(Accel::Tcg)));
        assert!(AccelChoice::parse("xen").is_err());
    }
}
