//! `cargo xtask bundle`: the installers this machine can build, and what it cannot.
//!
//! Built here: a .deb (with `dpkg-deb`): the app, the `berth` CLI, the VM image under
//! `/usr/share/berth/vm-image` (where berth-host looks beside an installed binary) and
//! the VM's helper programs under `/usr/lib/berth` when this machine has them.
//! Not built here, and why (printed at the end): the AppImage (appimagetool and its
//! runtime are downloaded from GitHub, and this machine has no internet), the .dmg (needs
//! macOS's hdiutil and a macOS build), the .msi and NSIS installers (need a Windows build
//! of the app; WiX runs on Windows only). Their settings are in src-tauri/tauri.conf.json
//! for `cargo tauri build` on those hosts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

/// The VM's helpers the package carries when this machine has them: berth-host finds
/// them in `<bin>/../lib/berth`.
const HELPERS: [&str; 2] = ["vhost-device-vsock", "virtiofsd"];

pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask bundle");
    }
    let root = crate::root();
    shell::run(Command::new("npm").args(["run", "--silent", "build"]).current_dir(root.join("ui"))).context("build the UI")?;
    shell::run(shell::cargo().args(["build", "--release", "--package", "berth-desktop", "--package", "berth-cli"]).current_dir(&root))?;
    let image = crate::vm_image::build()?;
    let target = root.join("target/release");
    let out = crate::build_dir().join("bundle");
    let deb = deb(&target, &image.dir, &out)?;
    println!("\nbuilt {} ({:.1} MiB)", deb.display(), fs::metadata(&deb)?.len() as f64 / (1024.0 * 1024.0));
    println!(
        "\nnot built on this machine:\n  AppImage: appimagetool and its runtime download from GitHub (no internet here)\n  \
         .dmg: needs macOS (hdiutil) and a macOS build of the app\n  \
         .msi / NSIS: need a Windows build of the app (WiX runs on Windows)\n\
         their settings are in src-tauri/tauri.conf.json (bundle), for `cargo tauri build` on those hosts"
    );
    Ok(())
}

fn version() -> Result<String> {
    let manifest = fs::read_to_string(crate::root().join("Cargo.toml"))?;
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = ").map(|v| v.trim_matches('"').to_owned()))
        .context("no version in [workspace.package]")
}

fn put(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &str) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(to, text).with_context(|| format!("write {}", to.display()))
}

/// Lays out the package's tree and builds it; returns the .deb's path.
fn deb(target: &Path, image: &Path, out: &Path) -> Result<PathBuf> {
    let version = version()?;
    let arch = shell::output(Command::new("dpkg").arg("--print-architecture"))?.trim().to_owned();
    let name = format!("berth_{version}_{arch}");
    let stage = out.join(&name);
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage)?;

    put(&target.join("berth-desktop"), &stage.join("usr/bin/berth-desktop"), 0o755)?;
    put(&target.join("berth"), &stage.join("usr/bin/berth"), 0o755)?;
    for file in ["vmlinuz", "initramfs.cpio", "manifest.json"] {
        put(&image.join(file), &stage.join("usr/share/berth/vm-image").join(file), 0o644)?;
    }
    let mut carried = Vec::new();
    for helper in HELPERS {
        match shell::which(helper).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(helper)).filter(|p| p.is_file())) {
            Some(path) => {
                put(&path, &stage.join("usr/lib/berth").join(helper), 0o755)?;
                carried.push(helper);
            }
            None => println!("bundle: {helper} not found on this machine; the package goes without it"),
        }
    }
    put(&crate::root().join("src-tauri/icons/icon.png"), &stage.join("usr/share/icons/hicolor/64x64/apps/berth.png"), 0o644)?;
    write(
        &stage.join("usr/share/applications/berth.desktop"),
        "[Desktop Entry]\nType=Application\nName=Berth\nComment=Containers on your desktop: images, volumes, compose stacks\n\
         Exec=berth-desktop\nIcon=berth\nTerminal=false\nCategories=Development;\n",
    )?;
    write(
        &stage.join("usr/share/doc/berth/copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: berth\n\nFiles: *\nLicense: Apache-2.0\n",
    )?;
    let size_kib: u64 = walk_size(&stage)? / 1024;
    let helpers = if carried.is_empty() { String::new() } else { format!(" (with {})", carried.join(", ")) };
    write(
        &stage.join("DEBIAN/control"),
        &format!(
            "Package: berth\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Berth developers <dev@berth.invalid>\n\
             Installed-Size: {size_kib}\nDepends: qemu-system-x86, libwebkit2gtk-4.1-0, libgtk-3-0\nSection: devel\nPriority: optional\n\
             Description: Berth: a desktop container platform\n Berth Desktop and the berth CLI, with the Linux VM they run\n \
             containers in{helpers}. Docker's CLI, compose and SDKs work against its Docker-compatible socket.\n"
        ),
    )?;
    let deb = out.join(format!("{name}.deb"));
    shell::run(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&stage).arg(&deb))?;
    // What it holds, as dpkg reads it back.
    shell::run(Command::new("dpkg-deb").arg("--info").arg(&deb))?;
    Ok(deb)
}

fn walk_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { walk_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}
