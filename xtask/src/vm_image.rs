//! `cargo xtask vm-image`: the VM's kernel and initramfs, built offline from Debian
//! packages and reproducibly. See vm-images/README.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::cpio::Archive;
use crate::shell;

pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The guest's architecture (`--arch`): the host's own, or arm64 (Apple Silicon's), built
/// here from Debian's arm64 packages and booted under TCG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub fn parse(text: &str) -> Result<Arch> {
        match text {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            other => bail!("unknown arch {other:?}: expected x86_64 or arm64"),
        }
    }

    /// The name in the image's manifest (what the host checks against BERTH_VM_ARCH).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Debian's name for it.
    fn deb(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The static agent's Rust target.
    pub fn musl_target(self) -> &'static str {
        match self {
            Arch::X86_64 => MUSL_TARGET,
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// Debian's multiarch library folder.
    fn lib_dir(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// The dynamic loader: its file name, and where the binaries look for it.
    fn loader(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
            Arch::Arm64 => ("ld-linux-aarch64.so.1", "lib/ld-linux-aarch64.so.1"),
        }
    }

    /// The package name `apt-get download` takes.
    fn package(self, name: &str) -> String {
        match self {
            Arch::X86_64 => name.to_owned(),
            Arch::Arm64 => format!("{name}:arm64"),
        }
    }

    /// The kernel an image for it boots unless `--kernel` says: arm64's cloud kernel has
    /// no GPIO keys, so QEMU's power button would not reach it (and macOS, where arm64
    /// runs, shares folders over 9p, which only the generic kernel has).
    pub fn default_kernel(self) -> Kernel {
        match self {
            Arch::X86_64 => Kernel::Cloud,
            Arch::Arm64 => Kernel::Generic,
        }
    }

    /// binutils' strip for it.
    fn strip(self) -> &'static str {
        match self {
            Arch::X86_64 => "strip",
            Arch::Arm64 => "aarch64-linux-gnu-strip",
        }
    }
}

/// Which of Debian's kernels the image boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The cloud kernel: small, boots fast, has virtiofs; no 9p. The default.
    Cloud,
    /// The generic kernel: has 9p (what QEMU offers for shares where there is no
    /// virtiofsd, as on macOS), ext4 as a module. Built into `build/vm-image-generic`.
    Generic,
}

impl Kernel {
    fn meta_package(self, arch: Arch) -> String {
        match self {
            Kernel::Cloud => format!("linux-image-cloud-{}", arch.deb()),
            Kernel::Generic => format!("linux-image-{}", arch.deb()),
        }
    }

    /// The output folder under build/.
    pub fn dir_name(self, arch: Arch) -> String {
        match (self, arch) {
            (Kernel::Cloud, Arch::X86_64) => "vm-image".into(),
            (Kernel::Generic, Arch::X86_64) => "vm-image-generic".into(),
            // arm64's default is the generic kernel (see `Arch::default_kernel`).
            (Kernel::Generic, Arch::Arm64) => "vm-image-arm64".into(),
            (Kernel::Cloud, Arch::Arm64) => "vm-image-cloud-arm64".into(),
        }
    }

    /// Modules this kernel needs beyond modules.txt (what the cloud kernel builds in).
    fn extra_modules(self) -> Option<&'static str> {
        match self {
            Kernel::Cloud => None,
            Kernel::Generic => Some("vm-images/modules-generic.txt"),
        }
    }
}
/// Printed by the floor initramfs when it reaches userspace.
pub const FLOOR_MARKER: &str = "BERTH-FLOOR-READY";

/// What `vm-image` produced.
#[derive(Debug)]
pub struct Built {
    pub dir: PathBuf,
}

pub fn run(args: &[String]) -> Result<Built> {
    const USAGE: &str = "usage: cargo xtask vm-image [--kernel cloud|generic] [--arch x86_64|arm64]";
    let (mut flavor, mut arch) = (None, Arch::X86_64);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--kernel" if value == "cloud" => flavor = Some(Kernel::Cloud),
            "--kernel" if value == "generic" => flavor = Some(Kernel::Generic),
            "--arch" => arch = Arch::parse(value)?,
            _ => bail!("{USAGE}"),
        }
    }
    build_for(flavor.unwrap_or(arch.default_kernel()), arch)
}

pub fn build() -> Result<Built> {
    build_with(Kernel::Cloud)
}

pub fn build_with(flavor: Kernel) -> Result<Built> {
    build_for(flavor, Arch::X86_64)
}

pub fn build_for(flavor: Kernel, arch: Arch) -> Result<Built> {
    let out = crate::build_dir().join(flavor.dir_name(arch));
    let cache = crate::build_dir().join("cache");
    fs::create_dir_all(&out)?;
    fs::create_dir_all(&cache)?;

    let kernel_root = kernel_tree(&cache, flavor, arch)?;
    let release = kernel_release(&kernel_root)?;
    let vmlinuz = kernel_root.join(format!("boot/vmlinuz-{release}"));
    // The host's busybox lists the applets (the arm64 one cannot run here; both are
    // Debian's same build).
    let host_busybox = static_busybox()?;
    let busybox = match arch {
        Arch::X86_64 => host_busybox.clone(),
        Arch::Arm64 => package_tree(&cache, "busybox-static", arch)?.join("bin/busybox"),
    };
    let agent = build_agent(arch)?;

    let module_dir = kernel_root.join(format!("lib/modules/{release}"));
    let mut wanted = read_module_list(&crate::root().join("vm-images/modules.txt"), arch)?;
    if let Some(extra) = flavor.extra_modules() {
        // Before the rest: the data disk's file system must be there when rcS mounts it.
        let mut first = read_module_list(&crate::root().join(extra), arch)?;
        first.append(&mut wanted);
        wanted = first;
    }
    let modules = resolve_modules(&module_dir, &wanted)?;
    // Network modules: the engine loads them on first use; those boot already loads
    // are left out of their order.
    let net_wanted = read_module_list(&crate::root().join("vm-images/net-modules.txt"), arch)?;
    let net_modules: Vec<(String, PathBuf)> =
        resolve_modules(&module_dir, &net_wanted)?.into_iter().filter(|(n, _)| !modules.iter().any(|(m, _)| m == n)).collect();

    // The VM's initramfs.
    let mut archive = Archive::default();
    add_busybox(&mut archive, &busybox, &host_busybox)?;
    add_tree(&mut archive, &crate::root().join("vm-images/rootfs"), "")?;
    archive.file("sbin/berth-agent", 0o755, stripped(&agent, arch)?);
    archive.file("sbin/berth-monitor", 0o755, stripped(&agent.with_file_name("berth-monitor"), arch)?);
    add_runtime(&mut archive, &cache, arch)?;
    let mut order = String::new();
    for (name, path) in &modules {
        let file = format!("{name}.ko");
        archive.file(&format!("lib/modules/{file}"), 0o644, fs::read(path)?);
        order.push_str(&file);
        order.push('\n');
    }
    archive.file("etc/berth/modules.order", 0o644, order.into_bytes());
    let mut net_order = String::new();
    for (name, path) in &net_modules {
        let file = format!("{name}.ko");
        archive.file(&format!("lib/modules/{file}"), 0o644, fs::read(path)?);
        net_order.push_str(&file);
        net_order.push('\n');
    }
    archive.file("etc/berth/net-modules.order", 0o644, net_order.into_bytes());
    archive.symlink("init", "bin/busybox");
    // Uncompressed: under TCG the kernel inflates gzip slowly (about 0.6 s for this
    // image), while loading the plain cpio is a copy.
    let initrd = out.join("initramfs.cpio");
    let _ = fs::remove_file(out.join("initramfs.cpio.gz"));
    fs::write(&initrd, archive.to_bytes())?;

    // The floor: the same kernel, a bare busybox that says it is up and powers off.
    let mut floor = Archive::default();
    add_busybox(&mut floor, &busybox, &host_busybox)?;
    let floor_init = format!("#!/bin/sh\necho {FLOOR_MARKER} > /dev/console\npoweroff -f\n");
    floor.file("init", 0o755, floor_init.into_bytes());
    let floor_path = out.join("floor.cpio.gz");
    write_gz(&floor_path, &floor.to_bytes())?;

    let kernel = out.join("vmlinuz");
    fs::copy(&vmlinuz, &kernel).with_context(|| format!("copy {}", vmlinuz.display()))?;

    let mut files = serde_json::Map::new();
    let mut total = 0u64;
    for path in [&kernel, &initrd, &floor_path] {
        let bytes = fs::read(path)?;
        total += bytes.len() as u64;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        files.insert(name, serde_json::json!({ "sha256": hex(&Sha256::digest(&bytes)), "bytes": bytes.len() }));
    }
    let manifest = serde_json::json!({
        "kernel_release": release,
        "arch": arch.name(),
        "agent_target": arch.musl_target(),
        "agent_profile": agent_profile(),
        "modules": modules.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "net_modules": net_modules.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "files": files,
    });
    fs::write(out.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    if arch != Arch::X86_64 {
        // The VM tier's image fixtures on this guest carry its busybox.
        fs::copy(&busybox, out.join("busybox"))?;
    }
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "vm-image: {} (kernel {release})\n  vmlinuz           {:>6.1} MiB\n  initramfs.cpio    {:>6.1} MiB ({} modules)\n  total             {:>6.1} MiB",
        out.display(),
        size(&kernel) as f64 / 1048576.0,
        size(&initrd) as f64 / 1048576.0,
        modules.len(),
        (size(&kernel) + size(&initrd)) as f64 / 1048576.0,
    );
    let _ = total;
    Ok(Built { dir: out })
}

/// Debian's kernel package, downloaded once into the cache and unpacked there.
fn kernel_tree(cache: &Path, flavor: Kernel, arch: Arch) -> Result<PathBuf> {
    let deb = match std::env::var_os("BERTH_KERNEL_DEB").filter(|_| flavor == Kernel::Cloud && arch == Arch::X86_64) {
        Some(path) => PathBuf::from(path),
        None => {
            let package = kernel_package(&arch.package(&flavor.meta_package(arch)))?;
            let found = find_deb(cache, &package, arch);
            match found {
                Some(deb) => deb,
                None => {
                    println!("vm-image: downloading {package}");
                    shell::run(Command::new("apt-get").args(["download", "-q", &arch.package(&package)]).current_dir(cache))
                        .context("download the kernel package (as root, after `apt-get update`; `cargo xtask setup` does that)")?;
                    find_deb(cache, &package, arch).context("apt-get download left no .deb")?
                }
            }
        }
    };
    let stem = deb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tree = cache.join(format!("{stem}.tree"));
    if !tree.join("boot").is_dir() {
        let tmp = cache.join(format!("{stem}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        shell::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        fs::rename(&tmp, &tree)?;
    }
    Ok(tree)
}

fn kernel_package(meta: &str) -> Result<String> {
    let text = shell::output(Command::new("apt-cache").args(["depends", meta])).with_context(|| format!("look up Debian's {meta}"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        // An arm64 package's dependency reads `linux-image-...:arm64`.
        .map(|p| p.split(':').next().unwrap_or(p).to_owned())
        .with_context(|| format!("{meta} has no linux-image dependency; run `apt-get update`"))
}

fn find_deb(cache: &Path, package: &str, arch: Arch) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let (own, all) = (format!("_{}.deb", arch.deb()), "_all.deb");
    fs::read_dir(cache).ok()?.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.starts_with(&prefix) && (name.ends_with(&own) || name.ends_with(all))
    })
}

fn kernel_release(tree: &Path) -> Result<String> {
    let mut releases: Vec<String> =
        fs::read_dir(tree.join("lib/modules"))?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    releases.sort();
    releases.pop().context("the kernel package has no lib/modules/<release>")
}

fn static_busybox() -> Result<PathBuf> {
    let path = PathBuf::from(std::env::var_os("BERTH_BUSYBOX").unwrap_or_else(|| "/bin/busybox".into()));
    let bytes = fs::read(&path).with_context(|| format!("read {} (install Debian's busybox-static)", path.display()))?;
    if elf_has_interpreter(&bytes) {
        bail!("{} is dynamically linked; install Debian's busybox-static", path.display());
    }
    Ok(path)
}

/// Whether an ELF64 file asks for a dynamic loader (has a PT_INTERP program header).
fn elf_has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| elf.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).map(|v| v as usize);
    if !elf.starts_with(b"\x7fELF") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        elf.get(at..at + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

/// `busybox` with a link per applet, as `lister` (a busybox this machine runs) lists them.
fn add_busybox(archive: &mut Archive, busybox: &Path, lister: &Path) -> Result<()> {
    archive.file("bin/busybox", 0o755, fs::read(busybox)?);
    let list = shell::output(Command::new(lister).arg("--list-full"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if applet == "bin/busybox" {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        archive.symlink(applet, &target);
    }
    for dir in ["dev", "proc", "sys", "run", "tmp", "root", "var/lib/berth", "var/log"] {
        archive.dir(dir);
    }
    // /var/run/docker.sock is the engine's Docker API socket in the VM (the agent binds
    // /run/docker.sock), so `-v /var/run/docker.sock:/var/run/docker.sock` gives a
    // container the engine, as Docker Desktop does.
    archive.symlink("var/run", "../run");
    archive.char_dev("dev/console", 0o600, 5, 1);
    archive.char_dev("dev/null", 0o666, 1, 3);
    Ok(())
}

/// Adds the files under `dir` at `prefix`, executable files 0755, others 0644.
fn add_tree(archive: &mut Archive, dir: &Path, prefix: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        let meta = entry.metadata()?;
        if meta.is_dir() {
            archive.dir(&path);
            add_tree(archive, &entry.path(), &format!("{path}/"))?;
        } else {
            let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            archive.file(&path, mode, fs::read(entry.path())?);
        }
    }
    Ok(())
}

/// Debian packages whose files the VM needs to run containers: crun, nft (networks'
/// NAT and filter rules) and the shared libraries they load (found by following
/// DT_NEEDED from the binaries).
const RUNTIME_PACKAGES: &[&str] = &[
    "crun",
    "libc6",
    "libsystemd0",
    "libseccomp2",
    "libcap2",
    "libyajl2",
    "libgcrypt20",
    "liblzma5",
    "libzstd1",
    "liblz4-1",
    "libgpg-error0",
    "nftables",
    "libnftables1",
    "libedit2",
    "libmnl0",
    "libnftnl11",
    "libxtables12",
    "libjansson4",
    "libgmp10",
    "libtinfo6",
    "libbsd0",
    "libmd0",
    "e2fsprogs",
    "libext2fs2",
    "libcom-err2",
    "libblkid1",
    "libuuid1",
];

/// The binaries taken from RUNTIME_PACKAGES, and where they go in the VM.
const RUNTIME_BINARIES: &[(&str, &str)] = &[
    ("crun", "usr/bin/crun"),
    ("nft", "usr/sbin/nft"),
    // The data disk: made on first boot, checked at every boot, grown when its limit
    // grows. Apart from busybox's own (smaller) applets of the same names.
    ("mke2fs", "usr/lib/berth/mke2fs"),
    ("e2fsck", "usr/lib/berth/e2fsck"),
    ("resize2fs", "usr/lib/berth/resize2fs"),
];

/// A Debian package unpacked in the cache (downloaded once).
fn package_tree(cache: &Path, package: &str, arch: Arch) -> Result<PathBuf> {
    let deb = match find_deb(cache, package, arch) {
        Some(deb) => deb,
        None => {
            let name = arch.package(package);
            println!("vm-image: downloading {name}");
            shell::run(Command::new("apt-get").args(["download", "-q", &name]).current_dir(cache))
                .with_context(|| format!("download {name} (after `apt-get update`; `cargo xtask setup` does that, arm64's too)"))?;
            find_deb(cache, package, arch).with_context(|| format!("apt-get download left no .deb for {name}"))?
        }
    };
    let stem = deb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tree = cache.join(format!("{stem}.tree"));
    if !tree.is_dir() {
        let tmp = cache.join(format!("{stem}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        shell::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        fs::rename(&tmp, &tree)?;
    }
    Ok(tree)
}

/// A binary without its symbol table (smaller initramfs, faster boot); `strip` is
/// deterministic, so the image stays reproducible.
fn stripped(binary: &Path, arch: Arch) -> Result<Vec<u8>> {
    let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let copy = crate::build_dir().join("cache").join(format!("{name}.{}.stripped", arch.name()));
    fs::copy(binary, &copy).with_context(|| format!("copy {}", binary.display()))?;
    shell::run(Command::new(arch.strip()).arg("--strip-all").arg(&copy)).with_context(|| format!("{} (binutils)", arch.strip()))?;
    Ok(fs::read(&copy)?)
}

/// The shared libraries an ELF file names (DT_NEEDED), read with `readelf -d`.
fn needed(elf: &Path) -> Result<Vec<String>> {
    let out = shell::output(Command::new("readelf").arg("-d").arg(elf)).with_context(|| format!("readelf -d {}", elf.display()))?;
    Ok(out
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(name, _)| name.to_owned()))
        .collect())
}

/// crun, nft, their libraries and the dynamic loader, from Debian's packages.
fn add_runtime(archive: &mut Archive, cache: &Path, arch: Arch) -> Result<()> {
    let trees: Vec<PathBuf> = RUNTIME_PACKAGES.iter().map(|p| package_tree(cache, p, arch)).collect::<Result<_>>()?;
    let lib_dir = arch.lib_dir();
    let find = |name: &str| -> Option<PathBuf> {
        trees.iter().find_map(|tree| {
            [format!("lib/{lib_dir}"), format!("usr/lib/{lib_dir}"), "lib64".into(), "lib".into(), "usr/bin".into(), "usr/sbin".into(), "sbin".into()]
                .iter()
                .map(|dir| tree.join(dir).join(name))
                .find(|p| p.exists())
        })
    };
    let mut queue = Vec::new();
    for (name, target) in RUNTIME_BINARIES {
        let binary = find(name).with_context(|| format!("no package in RUNTIME_PACKAGES holds {name}"))?;
        archive.file(target, 0o755, fs::read(&binary)?);
        queue.extend(needed(&binary)?);
    }
    let mut added = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !added.insert(name.clone()) {
            continue;
        }
        let path = find(&name).with_context(|| format!("no package in RUNTIME_PACKAGES holds {name}"))?;
        // Symlinks in the packages (libfoo.so.1 -> libfoo.so.1.2.3) are read through.
        let real = fs::canonicalize(&path).with_context(|| format!("resolve {}", path.display()))?;
        archive.file(&format!("lib/{lib_dir}/{name}"), 0o755, fs::read(&real)?);
        queue.extend(needed(&real)?);
    }
    let (loader_name, loader_path) = arch.loader();
    let loader = find(loader_name).with_context(|| format!("libc6 holds no {loader_name}"))?;
    archive.file(loader_path, 0o755, fs::read(fs::canonicalize(&loader)?)?);
    Ok(())
}

fn build_agent(arch: Arch) -> Result<PathBuf> {
    let target = arch.musl_target();
    let profile = agent_profile();
    println!("vm-image: building berth-agent and berth-monitor for {target} ({profile} profile)");
    let mut cmd = shell::cargo();
    cmd.args(["build", "--profile", &profile, "--package", "berth-agent", "--package", "berth-monitor", "--target", target])
        // Not position-independent, so the agent does not relocate itself at start.
        // Measured with `cargo xtask bench vm-boot`, the effect on boot under TCG was
        // within the run-to-run noise (the uncompressed initramfs was what counted).
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", "-C relocation-model=static")
        .current_dir(crate::root());
    if arch == Arch::Arm64 {
        // Debian's aarch64 cross gcc links (Rust brings musl's own start files and
        // libc); zig compiles the C the dependencies have (ring, SQLite, zstd) against
        // musl's headers.
        let (cc, ar) = crate::cross::zig_musl_cc()?;
        cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "aarch64-linux-gnu-gcc")
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", "-C relocation-model=static")
            .env("CC_aarch64_unknown_linux_musl", cc)
            .env("AR_aarch64_unknown_linux_musl", ar);
    }
    shell::run(&mut cmd).with_context(|| format!("build the static agent (needs `rustup target add {target}`; `cargo xtask setup` does that)"))?;
    Ok(crate::target_dir().join(format!("{target}/{profile}/berth-agent")))
}

/// The cargo profile the agent is built with: `release`, or `BERTH_AGENT_PROFILE`'s
/// (CI's arm64 test image uses `guest-test`, see the workspace's Cargo.toml).
fn agent_profile() -> String {
    std::env::var("BERTH_AGENT_PROFILE").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "release".to_owned())
}

/// A module list: a name per line, `#` comments, and `name @ARCH` for one architecture's.
fn read_module_list(path: &Path, arch: Arch) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match line.split_once('@') {
            Some((name, only)) if Arch::parse(only.trim())? == arch => out.push(name.trim().to_owned()),
            Some(_) => {}
            None => out.push(line.to_owned()),
        }
    }
    Ok(out)
}

/// The wanted modules and their dependencies, dependencies first. Debian's package has
/// no modules.dep, so each module's `depends=` is read from its `.modinfo`.
fn resolve_modules(module_dir: &Path, wanted: &[String]) -> Result<Vec<(String, PathBuf)>> {
    let mut index = BTreeMap::new();
    index_modules(module_dir, &mut index)?;
    let mut ordered = Vec::new();
    let mut done = BTreeSet::new();
    for name in wanted {
        visit(name, &index, &mut done, &mut Vec::new(), &mut ordered)?;
    }
    Ok(ordered)
}

fn index_modules(dir: &Path, index: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            index_modules(&path, index)?;
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko")) {
            index.insert(name.replace('-', "_"), path);
        }
    }
    Ok(())
}

fn visit(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    done: &mut BTreeSet<String>,
    stack: &mut Vec<String>,
    ordered: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let name = name.replace('-', "_");
    if done.contains(&name) {
        return Ok(());
    }
    if stack.contains(&name) {
        bail!("module dependency cycle: {} -> {name}", stack.join(" -> "));
    }
    let path = index.get(&name).with_context(|| format!("kernel module {name} is not in the kernel package"))?;
    stack.push(name.clone());
    for dep in module_depends(&fs::read(path)?) {
        visit(&dep, index, done, stack, ordered)?;
    }
    stack.pop();
    done.insert(name.clone());
    ordered.push((name, path.clone()));
    Ok(())
}

/// The `depends=` entry of a module's `.modinfo` strings.
pub fn module_depends(ko: &[u8]) -> Vec<String> {
    let key = b"depends=";
    ko.split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(key.as_slice()))
        .map(|list| String::from_utf8_lossy(list).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn write_gz(path: &Path, data: &[u8]) -> Result<()> {
    let file = fs::File::create(path)?;
    // mtime 0 and no file name in the header: the same input gives the same bytes.
    let mut gz = flate2::GzBuilder::new().mtime(0).write(file, flate2::Compression::default());
    gz.write_all(data)?;
    gz.finish()?;
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_from_modinfo() {
        let ko = b"\x7fELF...\0license=GPL\0depends=virtio,virtio_ring\0intree=Y\0";
        assert_eq!(module_depends(ko), ["virtio", "virtio_ring"]);
        assert!(module_depends(b"\0depends=\0").is_empty());
        assert!(module_depends(b"nothing").is_empty());
    }
}
