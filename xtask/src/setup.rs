//! `cargo xtask setup`: installs what this machine lacks. Idempotent, and quick when
//! everything is there. On Debian as root it installs; elsewhere it says what to install.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::shell;

/// Debian packages: the VM (QEMU, busybox, cpio), codegen (protoc), the static agent
/// (musl), the desktop app (Tauri v2's build packages) and its GUI test (Xvfb, WebKit's
/// WebDriver), the image tests (a registry and skopeo), the Docker compatibility suite
/// (dockerd, docker-compose v1, the Python Docker SDK).
pub const DEBIAN_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "protobuf-compiler",
    "musl-tools",
    "busybox-static",
    "cpio",
    "build-essential",
    "pkg-config",
    "curl",
    "wget",
    "file",
    "libwebkit2gtk-4.1-dev",
    "libxdo-dev",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    // Image tests: a real registry, an independent client to check it, htpasswd and a
    // token server (openssl signs its JWTs) for logins.
    "docker-registry",
    "skopeo",
    "apache2-utils",
    "openssl",
    // Containers: the OCI runtime (runc for checking runc compatibility), and `ip`
    // and `unshare` for the network namespaces the tests make.
    "crun",
    "runc",
    "iproute2",
    "util-linux",
    // Networks: the engine writes its NAT and filter rules with `nft`, and accept rules
    // with `iptables` where dockerd's FORWARD policy drops (the tests set that policy).
    "nftables",
    "iptables",
    // `--init` natively: tini's static build (the engine's init when its monitor is not
    // static; the test tiers' own is the musl monitor, through BERTH_INIT).
    "tini",
    // The Docker compatibility suite: a real dockerd to run each scenario against too
    // (its CLI is used only when no newer docker is on PATH), docker-compose v1 and the
    // Python Docker SDK (Debian's build of PyPI's `docker`, for /usr/bin/python3).
    "docker.io",
    "docker-compose",
    "python3-docker",
    // testcontainers-python comes from PyPI, into a venv of its own (`python_packages`).
    "python3-venv",
    // The signed-image tests check signatures against OpenSSL with it.
    "python3-cryptography",
    // virtiofsd (cargo install, below) links libseccomp and libcap-ng.
    "libseccomp-dev",
    "libcap-ng-dev",
    // `cargo xtask cross-check` for Windows: mingw-w64's C compiler and windres.
    "gcc-mingw-w64-x86-64",
    "binutils-mingw-w64-x86-64",
    // ... and Wine, which runs the Windows build's unit tests.
    "wine64",
    // The arm64 guest: QEMU for it, and the cross linker for its static agent (zig
    // compiles the agent's C; see cross.rs).
    "qemu-system-arm",
    "gcc-aarch64-linux-gnu",
];

/// Tools installed with `cargo install` (name, version).
pub const CARGO_TOOLS: &[(&str, &str, &str)] = &[
    // (crate, version, the binary it installs)
    ("vhost-device-vsock", "0.3.0", "vhost-device-vsock"),
    ("tauri-driver", "2.1.0", "tauri-driver"),
    // The user's folders shared into the VM (Debian 12 has no virtiofsd package).
    ("virtiofsd", "1.14.0", "virtiofsd"),
];

pub fn run(_args: &[String]) -> Result<()> {
    debian_packages()?;
    rust_targets()?;
    cargo_tools()?;
    npm_packages()?;
    python_packages()?;
    zig()?;
    cgroup_hugetlb()?;
    println!("setup: done");
    Ok(())
}

fn is_root() -> bool {
    shell::output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false)
}

fn debian_packages() -> Result<()> {
    if !Path::new("/usr/bin/dpkg-query").exists() {
        println!(
            "setup: not a Debian system; install the equivalents of: {}\n       (QEMU, protoc, musl-gcc, a static busybox, cpio, Tauri v2's build prerequisites, Xvfb, WebKitWebDriver)",
            DEBIAN_PACKAGES.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = DEBIAN_PACKAGES.iter().copied().filter(|p| !debian_installed(p)).collect();
    // The arm64 guest's image is made from Debian's arm64 packages (`apt-get download
    // PACKAGE:arm64`), which apt offers once arm64 is a foreign architecture.
    let foreign = shell::output(Command::new("dpkg").arg("--print-foreign-architectures")).unwrap_or_default();
    let add_arm64 = !foreign.lines().any(|l| l.trim() == "arm64");
    if missing.is_empty() && !add_arm64 {
        println!("setup: Debian packages present");
        return Ok(());
    }
    if !is_root() {
        println!("setup: missing Debian packages; run as root:\n  dpkg --add-architecture arm64 && apt-get update && apt-get install -y {}", missing.join(" "));
        return Ok(());
    }
    if add_arm64 {
        println!("setup: adding arm64 as a foreign architecture (for the arm64 guest's packages)");
        shell::run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
    }
    shell::run(Command::new("apt-get").args(["update", "-q"]))?;
    if missing.is_empty() {
        return Ok(());
    }
    println!("setup: installing {}", missing.join(" "));
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "-q"]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive");
    // Some machines come with a newer qemu-utils from bookworm-backports (and no
    // backports source to match it): Debian's QEMU 7.2 system emulators break against
    // it, so qemu-utils goes back to bookworm's own version with them.
    if qemu_utils_from_backports() {
        println!("setup: qemu-utils is bookworm-backports'; installing bookworm's with QEMU");
        install.args(["--allow-downgrades", "qemu-utils/bookworm"]);
    }
    shell::run(&mut install)
}

fn qemu_utils_from_backports() -> bool {
    shell::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "qemu-utils"])).is_ok_and(|v| v.contains("bpo"))
}

fn debian_installed(package: &str) -> bool {
    shell::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package])).map(|s| s.contains("install ok installed")).unwrap_or(false)
}

fn rust_targets() -> Result<()> {
    let installed = shell::output(Command::new("rustup").args(["target", "list", "--installed"])).context("rustup is needed to add the musl target")?;
    // The guest's static binaries; the Windows and macOS cross-checks.
    for target in [crate::vm_image::MUSL_TARGET, crate::vm_image::Arch::Arm64.musl_target(), crate::cross::WINDOWS, crate::cross::MACOS] {
        if installed.lines().any(|l| l.trim() == target) {
            println!("setup: rust target {target} present");
        } else {
            shell::run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    // The unit tier's formatting and lint checks.
    let components = shell::output(Command::new("rustup").args(["component", "list", "--installed"])).context("rustup component list")?;
    for component in ["rustfmt", "clippy"] {
        if components.lines().any(|l| l.starts_with(component)) {
            println!("setup: rust component {component} present");
        } else {
            shell::run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

fn cargo_tools() -> Result<()> {
    for (krate, version, binary) in CARGO_TOOLS {
        if shell::have(binary) {
            println!("setup: {binary} present");
            continue;
        }
        println!("setup: cargo install {krate} {version}");
        shell::run(shell::cargo().args(["install", "--locked", "--version", version, krate]))?;
    }
    Ok(())
}

fn npm_packages() -> Result<()> {
    let ui = crate::root().join("ui");
    let lock = ui.join("package-lock.json");
    let installed = ui.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(l), Ok(i)) => match (l.modified(), i.modified()) {
            (Ok(l), Ok(i)) => i >= l,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        println!("setup: ui/node_modules up to date");
        return Ok(());
    }
    if !shell::have("npm") {
        println!("setup: npm not found; install Node.js 20+ and run `npm ci` in ui/");
        return Ok(());
    }
    shell::run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&ui))
}

/// The venv the testcontainers scenario runs in.
pub fn python_venv() -> std::path::PathBuf {
    crate::root().join("build/py")
}

/// testcontainers-python (PyPI; Debian has no package) and its pinned dependencies,
/// in `build/py`. Reinstalled when the requirements file changes.
fn python_packages() -> Result<()> {
    let requirements = crate::root().join("tests/testcontainers/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).context("read tests/testcontainers/requirements.txt")?;
    let install = ["-r".into(), requirements.into_os_string()];
    pip_venv(&python_venv(), "berth-requirements.txt", &wanted, "python packages in build/py up to date", &install)
}

/// zig (PyPI's `ziglang`; Debian has none) in `build/zig`: the C compiler of the macOS
/// cross-check and of the arm64 agent's C.
fn zig() -> Result<()> {
    let version = crate::cross::ZIG_VERSION;
    let present = format!("zig {version} in build/zig present");
    pip_venv(&crate::cross::zig_venv(), "berth-ziglang", version, &present, &[format!("ziglang=={version}").into()])
}

/// A venv at `venv` with `pip install ARGS`, made again whenever `wanted` differs from
/// what its stamp file says it was made for.
fn pip_venv(venv: &Path, stamp_name: &str, wanted: &str, up_to_date: &str, install: &[std::ffi::OsString]) -> Result<()> {
    let stamp = venv.join(stamp_name);
    if venv.join("bin/python").exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        println!("setup: {up_to_date}");
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(venv);
    // Debian's python, not a pyenv one that PATH may offer.
    shell::run(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(venv))?;
    shell::run(Command::new(venv.join("bin/pip")).args(["install", "-q", "--disable-pip-version-check"]).args(install))?;
    std::fs::write(&stamp, wanted).with_context(|| format!("write {}", stamp.display()))?;
    Ok(())
}

/// On a cgroup v1 machine with a hybrid cgroup2 mount, the hugetlb controller can sit
/// on cgroup2, and crun then refuses every container ("cgroups in hybrid mode not
/// supported"). Mounting hugetlb as its own v1 hierarchy fixes it (see MACHINE.md).
fn cgroup_hugetlb() -> Result<()> {
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let on_v2 = std::fs::read_to_string(unified).map(|c| c.split_whitespace().any(|c| c == "hugetlb")).unwrap_or(false);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mounted = mounts.lines().any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup/hugetlb"));
    if !on_v2 || mounted || !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Ok(());
    }
    if !is_root() {
        println!("setup: crun needs the hugetlb cgroup mounted; run as root:\n  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb");
        return Ok(());
    }
    println!("setup: mounting the hugetlb cgroup v1 hierarchy for crun");
    std::fs::create_dir_all("/sys/fs/cgroup/hugetlb").context("create /sys/fs/cgroup/hugetlb")?;
    shell::run(Command::new("mount").args(["-t", "cgroup", "-o", "hugetlb", "cgroup", "/sys/fs/cgroup/hugetlb"]))
}
