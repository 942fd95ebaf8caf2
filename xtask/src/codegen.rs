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
            let drifted: Vec<&str> = names
                .into_iter()
                .filter(|n| generated.get(*n) != committed.get(*n))
                .map(String::as_str)
                .collect();
            bail!("ui/src/bindings is out of date ({}); run `cargo xtask codegen`", drifted.join(", "));
        }
        println!("codegen: ui/src/bindings is up to date ({} files)", generated.len());
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
