//! `cargo xtask codegen [--check]`: the UI's TypeScript types, generated from the Rust
//! types (ts-rs) into ui/src/bindings. `--check` fails when the committed files drift.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::shell;

pub fn run(args: &[String]) -> Result<()> {
    let check = args.iter().any(|a| a == "--check");
    let generated = generate()?;
    let target = crate::root().join("ui/src/bindings");
    let committed = read_dir_files(&target)?;
    if check {
        if generated != committed {
            let mut names: Vec<&String> = generated.keys().chain(committed.keys()).collect();
            names.sort();
            names.dedup();
            let drifted: Vec<&str> = names.into_iter().filter(|n| generated.get(*n) != committed.get(*n)).map(String::as_str).collect();
            bail!("ui/src/bindings is out of date ({}); run `cargo xtask codegen`", drifted.join(", "));
        }
        check_commands(&generated)?;
        println!("codegen: ui/src/bindings is up to date ({} files), and the app registers every command", generated.len());
        return Ok(());
    }
    fs::create_dir_all(&target)?;
    for name in committed.keys().filter(|n| !generated.contains_key(*n)) {
        fs::remove_file(target.join(name))?;
    }
    for (name, text) in &generated {
        fs::write(target.join(name), text)?;
    }
    println!("codegen: wrote {} files to {}", generated.len(), target.display());
    Ok(())
}

/// The app registers exactly the commands `berth_host::ui::names::Command` names (the UI's
/// `Command` type): compares `Command.ts` with src-tauri's `generate_handler!` list.
fn check_commands(generated: &BTreeMap<String, String>) -> Result<()> {
    let ts = generated.get("Command.ts").context("no Command.ts among the generated types")?;
    let union = ts.split("export type Command =").nth(1).context("Command.ts has no `export type Command`")?;
    let mut named: Vec<String> =
        union.split('|').map(|p| p.trim().trim_end_matches(';').trim().trim_matches('"').to_owned()).filter(|p| !p.is_empty()).collect();
    let main = fs::read_to_string(crate::root().join("src-tauri/src/main.rs"))?;
    let list =
        main.split("generate_handler![").nth(1).and_then(|rest| rest.split(']').next()).context("src-tauri/src/main.rs has no generate_handler! list")?;
    let mut registered: Vec<String> = list.split(',').map(|p| p.trim().rsplit("::").next().unwrap_or_default().to_owned()).filter(|p| !p.is_empty()).collect();
    named.sort();
    registered.sort();
    if named != registered {
        let missing: Vec<&String> = named.iter().filter(|n| !registered.contains(n)).collect();
        let extra: Vec<&String> = registered.iter().filter(|n| !named.contains(n)).collect();
        bail!("the app's commands drifted from berth_host::ui::names::Command: not registered {missing:?}, not named {extra:?}");
    }
    Ok(())
}

/// Runs ts-rs' export tests into a scratch folder and reads what they wrote.
fn generate() -> Result<BTreeMap<String, String>> {
    let scratch = crate::build_dir().join("codegen");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)?;
    shell::run(
        shell::cargo()
            .args(["test", "--quiet", "--package", "berth-host", "--features", "ts", "--lib", "export_bindings"])
            .env("TS_RS_EXPORT_DIR", &scratch)
            .env("TS_RS_LARGE_INT", "number")
            .current_dir(crate::root()),
    )
    .context("generate TypeScript types")?;
    let files = read_dir_files(&scratch)?;
    if files.is_empty() {
        bail!("ts-rs wrote no files into {}", scratch.display());
    }
    Ok(files)
}

fn read_dir_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ts") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.insert(name, fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}
