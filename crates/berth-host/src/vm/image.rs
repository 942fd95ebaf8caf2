//! Finding the VM image (kernel + initramfs) that `cargo xtask vm-image` builds.

use std::path::{Path, PathBuf};

/// A built VM image: a kernel and an initramfs, with the manifest that lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmImage {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("the VM image is not built (looked in: {looked}); build it with `cargo xtask vm-image` or set BERTH_VM_IMAGE")]
pub struct ImageMissing {
    pub looked: String,
}

/// Where each installer puts the VM image, from the folder of the running binary (the
/// app's or the CLI's, which the installers put side by side):
/// - the .deb: `/usr/bin` and `/usr/share/berth/vm-image`;
/// - the macOS app: `Berth.app/Contents/MacOS` and its `Contents/Resources/vm-image`
///   (`bundle.resources` in `src-tauri/release/macos.json`);
/// - the Windows installers: the install folder, with `vm-image` in it
///   (`src-tauri/release/windows.json`).
pub fn installed_image_dirs(bin_dir: &Path) -> Vec<PathBuf> {
    vec![bin_dir.join("../share/berth/vm-image"), bin_dir.join("../Resources/vm-image"), bin_dir.join("vm-image")]
}

/// A guest architecture: the host's own, or arm64 on an x86_64 host (TCG) for testing
/// what Apple Silicon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    /// `BERTH_VM_ARCH`'s values (and Debian's and Rust's names for them).
    pub fn parse(text: &str) -> Result<Arch, String> {
        match text {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            other => Err(format!("BERTH_VM_ARCH={other:?}: expected x86_64 or arm64")),
        }
    }

    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The QEMU program that emulates it.
    pub fn qemu_program(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// The QEMU machine: q35 on x86_64, virt (PCIe, no firmware needed) on arm64.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "q35",
            Arch::Arm64 => "virt",
        }
    }

    /// The first serial port's name in the guest (the console).
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl VmImage {
    /// The architecture the image was built for (its manifest's `arch`, or for an image
    /// from before that field its agent's target); `None` when the image says nothing.
    pub fn arch(&self) -> Option<Arch> {
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(self.dir.join("manifest.json")).ok()?).ok()?;
        if let Some(arch) = manifest.get("arch").and_then(|a| a.as_str()) {
            return Arch::parse(arch).ok();
        }
        let target = manifest.get("agent_target")?.as_str()?;
        Arch::parse(target.split('-').next()?).ok()
    }

    /// The image in `dir`, if its kernel and initramfs are both there.
    /// Whether the image's kernel has `module` (from its `manifest.json`); `None` when
    /// the image says nothing (no manifest).
    pub fn has_module(&self, module: &str) -> Option<bool> {
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(self.dir.join("manifest.json")).ok()?).ok()?;
        let modules = manifest.get("modules")?.as_array()?;
        Some(modules.iter().any(|m| m.as_str() == Some(module)))
    }

    pub fn in_dir(dir: &Path) -> Option<VmImage> {
        let kernel = dir.join("vmlinuz");
        let initrd = dir.join("initramfs.cpio");
        (kernel.is_file() && initrd.is_file()).then(|| VmImage { dir: dir.to_owned(), kernel, initrd })
    }

    /// `BERTH_VM_IMAGE`, else where an installed binary has it (see
    /// [`installed_image_dirs`]), else the workspace's `build/vm-image` above the running
    /// binary (development).
    pub fn locate() -> Result<VmImage, ImageMissing> {
        let mut candidates = Vec::new();
        if let Some(dir) = std::env::var_os("BERTH_VM_IMAGE") {
            candidates.push(PathBuf::from(dir));
        } else if let Ok(exe) = std::env::current_exe() {
            if let Some(bin_dir) = exe.parent() {
                candidates.extend(installed_image_dirs(bin_dir));
                for ancestor in bin_dir.ancestors().skip(1).take(4) {
                    candidates.push(ancestor.join("build/vm-image"));
                }
            }
        }
        for dir in &candidates {
            if let Some(image) = VmImage::in_dir(dir) {
                return Ok(image);
            }
        }
        let looked = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        Err(ImageMissing { looked })
    }
}
