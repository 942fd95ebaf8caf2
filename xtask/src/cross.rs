//! `cargo xtask cross-check`: the host crates and the desktop app, checked with clippy
//! for the Windows and macOS hosts Berth's users have, from this Linux machine.
//!
//! - `x86_64-pc-windows-gnu`: mingw-w64 (Debian) is the C compiler and `windres` (the
//!   app's icon and manifest).
//! - `aarch64-apple-darwin`: zig (PyPI's `ziglang`, in `build/zig`) is the C compiler,
//!   through a wrapper that drops the flags cc-rs passes for Apple's clang. There is no
//!   Apple SDK here, so nothing links: clippy type-checks, which is what this proves.
//!
//! Then the Windows build's own unit tests run under Wine (Debian's wine64): the host
//! crates' and the CLI's, named pipes included. Those that cannot run there are left out
//! of the Windows build by `cfg(unix)`: the unix-socket binds and vhost-device-vsock
//! handshakes (unix sockets), and a data disk's sparseness (read from st_blocks).
//! Wine 8 has no `bcryptprimitives.dll`, whose `ProcessPrng` Rust's std calls for
//! randomness: a small one, built with mingw-w64, stands in (over `RtlGenRandom`).
//!
//! The guest crates (the agent, the monitor) and the engine are Linux's alone and are not
//! checked for other hosts. The unit tier runs this.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

pub const WINDOWS: &str = "x86_64-pc-windows-gnu";
pub const MACOS: &str = "aarch64-apple-darwin";

/// What runs on the user's machine.
const HOST_PACKAGES: &[&str] = &["berth-proto", "berth-dockerfile", "berth-host", "berth-cli", "berth-compose", "berth-desktop"];

/// The crates whose Windows unit tests run under Wine (the desktop app's need WebView2).
const WINE_TESTED: &[&str] = &["berth-proto", "berth-dockerfile", "berth-host", "berth-cli", "berth-compose"];

/// Debian's wine64 binary (its `wine64` command is a launcher that needs binfmt).
const WINE: &str = "/usr/lib/wine/wine64";

/// The zig release `cargo xtask setup` installs (PyPI's `ziglang`).
pub const ZIG_VERSION: &str = "0.17.1";

pub fn run(args: &[String]) -> Result<()> {
    let targets: Vec<&str> = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => vec![WINDOWS, MACOS],
        ["windows"] => vec![WINDOWS],
        ["macos"] => vec![MACOS],
        other => bail!("usage: cargo xtask cross-check [windows|macos] (got {other:?})"),
    };
    // The desktop crate embeds the built UI.
    if !crate::root().join("ui/dist/index.html").exists() {
        shell::run(Command::new("npm").args(["run", "--silent", "build"]).current_dir(crate::root().join("ui"))).context("build the UI")?;
    }
    for target in targets {
        let started = std::time::Instant::now();
        let mut cmd = shell::cargo();
        cmd.args(["clippy", "--target", target]).current_dir(crate::root());
        for package in HOST_PACKAGES {
            cmd.args(["--package", package]);
        }
        cmd.args(["--", "-D", "warnings"]);
        if target == MACOS {
            let (cc, ar) = zig_wrappers()?;
            cmd.env("CC_aarch64_apple_darwin", cc).env("AR_aarch64_apple_darwin", ar);
        }
        shell::run(&mut cmd).with_context(|| format!("clippy for {target}"))?;
        println!("cross-check: {target} clean ({:.0} s)", started.elapsed().as_secs_f64());
        if target == WINDOWS {
            let started = std::time::Instant::now();
            wine_tests()?;
            println!("cross-check: {target} unit tests passed under Wine ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// The Windows build's unit tests, run by Wine in a prefix of its own (`build/wine`).
fn wine_tests() -> Result<()> {
    if !std::path::Path::new(WINE).exists() {
        bail!("Wine is missing ({WINE}): run `cargo xtask setup` (it installs Debian's wine64)");
    }
    let prefix = crate::build_dir().join("wine");
    let shim = prefix.join("drive_c/windows/system32/bcryptprimitives.dll");
    if !shim.exists() {
        std::fs::create_dir_all(&prefix)?;
        shell::run(Command::new(WINE).args(["wineboot", "--init"]).env("WINEPREFIX", &prefix).env("WINEDEBUG", "-all")).context("make the Wine prefix")?;
        build_prng_shim(&shim)?;
    }
    let mut cmd = shell::cargo();
    cmd.args(["test", "--target", WINDOWS, "--lib", "--bins"]).current_dir(crate::root());
    for package in WINE_TESTED {
        cmd.args(["--package", package]);
    }
    cmd.env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE).env("WINEPREFIX", &prefix).env("WINEDEBUG", "-all");
    shell::run(&mut cmd).context("the Windows unit tests under Wine")
}

/// `bcryptprimitives.dll` with the one function Rust's std needs from it.
fn build_prng_shim(dll: &std::path::Path) -> Result<()> {
    let dir = crate::build_dir().join("wine-shim");
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("prng.c");
    std::fs::write(
        &source,
        "#include <windows.h>\n\
         BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);\n\
         BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {\n\
             while (len > 0) {\n\
                 ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;\n\
                 if (!SystemFunction036(data, chunk)) return FALSE;\n\
                 data += chunk; len -= chunk;\n\
             }\n\
             return TRUE;\n\
         }\n",
    )?;
    let def = dir.join("prng.def");
    std::fs::write(&def, "LIBRARY bcryptprimitives\nEXPORTS\n  ProcessPrng\n")?;
    shell::run(Command::new("x86_64-w64-mingw32-gcc").args(["-O2", "-shared", "-o"]).arg(dll).arg(&source).arg(&def).arg("-ladvapi32"))
        .context("build the bcryptprimitives.dll shim")
}

/// The venv zig lives in.
pub fn zig_venv() -> PathBuf {
    crate::build_dir().join("zig")
}

/// zig as the C compiler (and `ar`) for the arm64 guest's static agent
/// (`aarch64-linux-musl`): musl's own headers, where Debian's cross gcc has glibc's
/// (whose `open64` and friends musl no longer has).
pub fn zig_musl_cc() -> Result<(PathBuf, PathBuf)> {
    zig_tools("cc-aarch64-linux-musl", "aarch64-linux-musl -fno-sanitize=all")
}

/// `build/zig/cc-aarch64-macos` and `build/zig/ar`, for the macOS check.
fn zig_wrappers() -> Result<(PathBuf, PathBuf)> {
    zig_tools("cc-aarch64-macos", "aarch64-macos")
}

/// Writes `build/zig/<cc_name>` (zig's C compiler for `target`, after it the flags in
/// `target`) and `build/zig/ar`, each run, so a moved tree still points at its own zig.
fn zig_tools(cc_name: &str, target: &str) -> Result<(PathBuf, PathBuf)> {
    let venv = zig_venv();
    let python = venv.join("bin/python");
    if !python.exists() {
        bail!("zig is missing: run `cargo xtask setup` (it installs PyPI's ziglang {ZIG_VERSION} in {})", venv.display());
    }
    // cc-rs passes `-arch arm64` and a `--target` for Apple's clang (and a `--target`
    // for others); zig takes its own `-target`, and knows no `arm64` arch name.
    let cc = format!(
        "#!/bin/sh\n# zig as a C compiler (written by cargo xtask)\nskip=\nfor a in \"$@\"; do\n  shift\n  if [ -n \"$skip\" ]; then skip=; continue; fi\n  case \"$a\" in\n    -arch) skip=1; continue ;;\n    --target=*|-mmacosx-version-min=*) continue ;;\n  esac\n  set -- \"$@\" \"$a\"\ndone\nexec '{}' -m ziglang cc -target {target} \"$@\"\n",
        python.display()
    );
    let ar = format!("#!/bin/sh\nexec '{}' -m ziglang ar \"$@\"\n", python.display());
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        // Written aside and renamed: the arm64 image and the macOS check may run at
        // once (`cargo xtask test`), and one must never run the other's half-written `ar`.
        let path = venv.join(name);
        let aside = venv.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&aside, text).with_context(|| format!("write {}", aside.display()))?;
        std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&aside, &path).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    };
    Ok((write(cc_name, &cc)?, write("ar", &ar)?))
}
