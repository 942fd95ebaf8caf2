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

const USAGE: &str = "usage: cargo xtask bundle\n       cargo xtask bundle --stage macos|windows --vm-image DIR --qemu DIR --cli FILE";

pub fn run(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("--stage") {
        return stage(&args[1..]);
    }
    if !args.is_empty() {
        bail!("{USAGE}");
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

/// A release OS's installer: what `--stage` checks and where it puts things.
struct Release {
    os: &'static str,
    /// The guest the VM image must be for.
    arch: &'static str,
    /// QEMU's program, relative to the staged `qemu` folder (berth-host's
    /// `installed_program_dirs` looks there).
    qemu: &'static str,
    /// The Rust target the CLI is built for; Tauri's `externalBin` wants it in the name.
    cli_target: &'static str,
    exe_suffix: &'static str,
}

const RELEASES: [Release; 2] = [
    Release { os: "macos", arch: "arm64", qemu: "bin/qemu-system-aarch64", cli_target: "aarch64-apple-darwin", exe_suffix: "" },
    Release { os: "windows", arch: "x86_64", qemu: "qemu-system-x86_64.exe", cli_target: "x86_64-pc-windows-msvc", exe_suffix: ".exe" },
];

/// `--stage OS`: on the release machine of that OS, before `cargo tauri build --config
/// src-tauri/release/OS.json`, puts the VM image, QEMU and the CLI where that file's
/// `bundle.resources` and `externalBin` take them from (`build/release/OS`), after
/// checking each is the one that OS needs.
fn stage(args: &[String]) -> Result<()> {
    let (mut os, mut image, mut qemu, mut cli) = (None, None, None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let slot = match arg.as_str() {
            "--vm-image" => &mut image,
            "--qemu" => &mut qemu,
            "--cli" => &mut cli,
            name if os.is_none() && !name.starts_with('-') => {
                os = Some(name.to_owned());
                continue;
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        };
        *slot = Some(PathBuf::from(it.next().with_context(|| format!("{arg} needs a value\n{USAGE}"))?));
    }
    let os = os.with_context(|| format!("which OS?\n{USAGE}"))?;
    let release = RELEASES.iter().find(|r| r.os == os).with_context(|| format!("no release for {os:?}: macos or windows"))?;
    let (Some(image), Some(qemu), Some(cli)) = (image, qemu, cli) else { bail!("{USAGE}") };
    check_image(&image, release)?;
    if !qemu.join(release.qemu).is_file() {
        bail!("{} has no {}: the QEMU folder for {os} is laid out as QEMU installs itself there", qemu.display(), release.qemu);
    }
    if !cli.is_file() {
        bail!("{} is not a file: build the CLI for {} first", cli.display(), release.cli_target);
    }
    let out = crate::build_dir().join("release").join(release.os);
    let _ = fs::remove_dir_all(&out);
    for file in ["vmlinuz", "initramfs.cpio", "manifest.json"] {
        put(&image.join(file), &out.join("vm-image").join(file), 0o644)?;
    }
    copy_tree(&qemu, &out.join("qemu"))?;
    put(&cli, &out.join("bin").join(format!("berth-{}{}", release.cli_target, release.exe_suffix)), 0o755)?;
    println!("staged {} for {os}; now: cargo tauri build --config src-tauri/release/{os}.json", out.display());
    Ok(())
}

/// The image a release carries: for its OS's guest, with 9p (the generic kernel's), which
/// macOS and Windows share folders over.
fn check_image(image: &Path, release: &Release) -> Result<()> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(image.join("manifest.json")).with_context(|| format!("{} is not a VM image (no manifest.json)", image.display()))?)?;
    let arch = manifest["arch"].as_str().unwrap_or("x86_64");
    if arch != release.arch {
        bail!(
            "{} is an {arch} image; {} runs {} guests (cargo xtask vm-image --kernel generic --arch {})",
            image.display(),
            release.os,
            release.arch,
            release.arch
        );
    }
    let has_9p = manifest["modules"].as_array().is_some_and(|m| m.iter().any(|m| m == "9p"));
    if !has_9p {
        bail!("{} has no 9p, which {} shares folders over: build it with --kernel generic", image.display(), release.os);
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target).with_context(|| format!("copy {} to {}", source.display(), target.display()))?;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7396's merge, as `cargo tauri build --config FILE` merges FILE over
    /// tauri.conf.json.
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    if value.is_null() {
                        base.remove(&key);
                    } else {
                        merge(base.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
            (base, patch) => *base = patch,
        }
    }

    fn read(path: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(crate::root().join(path)).expect(path)).expect(path)
    }

    /// Each release's settings, merged over tauri.conf.json, are a configuration Tauri's
    /// own types accept (they refuse unknown keys), and take the VM image, QEMU and the
    /// CLI from the folders `--stage` fills, to the places berth-host looks.
    #[test]
    fn release_settings_are_tauri_settings_and_carry_the_vm() {
        for release in &RELEASES {
            let mut config = read("src-tauri/tauri.conf.json");
            merge(&mut config, read(&format!("src-tauri/release/{}.json", release.os)));
            let config: tauri_utils::config::Config = serde_json::from_value(config).unwrap_or_else(|e| panic!("{}: {e}", release.os));
            let Some(tauri_utils::config::BundleResources::Map(resources)) = &config.bundle.resources else { panic!("{}: resources are a map", release.os) };
            let staged = format!("../build/release/{}", release.os);
            assert_eq!(resources.get(&format!("{staged}/vm-image/")).map(String::as_str), Some("vm-image/"), "{}", release.os);
            assert_eq!(resources.get(&format!("{staged}/qemu/")).map(String::as_str), Some("qemu/"), "{}", release.os);
            assert_eq!(config.bundle.external_bin, Some(vec![format!("{staged}/bin/berth")]), "{}", release.os);
        }
        let mac = read("src-tauri/release/macos.json");
        let entitlements = mac["bundle"]["macOS"]["entitlements"].as_str().expect("entitlements");
        let plist = fs::read_to_string(crate::root().join("src-tauri").join(entitlements)).expect("entitlements file");
        assert!(plist.contains("<key>com.apple.security.hypervisor</key>"), "{plist}");
    }

    #[test]
    fn staging_refuses_an_image_for_the_other_guest_or_without_9p() {
        let dir = std::env::temp_dir().join(format!("xtask-stage-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let manifest =
            |arch: &str, modules: &[&str]| fs::write(dir.join("manifest.json"), serde_json::json!({"arch": arch, "modules": modules}).to_string()).unwrap();
        manifest("x86_64", &["9p"]);
        let err = check_image(&dir, &RELEASES[0]).unwrap_err().to_string();
        assert!(err.contains("is an x86_64 image; macos runs arm64 guests"), "{err}");
        manifest("arm64", &["ext4"]);
        let err = check_image(&dir, &RELEASES[0]).unwrap_err().to_string();
        assert!(err.contains("has no 9p"), "{err}");
        manifest("arm64", &["9p"]);
        check_image(&dir, &RELEASES[0]).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
