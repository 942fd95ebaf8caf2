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

impl VmImage {
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

    /// `BERTH_VM_IMAGE`, else beside the installed binary (`../share/berth/vm-image`),
    /// else the workspace's `build/vm-image` above the running binary (development).
    pub fn locate() -> Result<VmImage, ImageMissing> {
        let mut candidates = Vec::new();
        if let Some(dir) = std::env::var_os("BERTH_VM_IMAGE") {
            candidates.push(PathBuf::from(dir));
        } else if let Ok(exe) = std::env::current_exe() {
            if let Some(bin_dir) = exe.parent() {
                candidates.push(bin_dir.join("../share/berth/vm-image"));
                candidates.push(bin_dir.join("vm-image"));
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
