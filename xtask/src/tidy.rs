//! Tidy checks run by the unit tier: ARCHITECTURE.md names only paths that exist, and
//! the engine's top-level modules import one another without loops.
//!
//! A path in backticks is checked when it is one of the repository's own:
//! - it starts with a top-level entry of the repository (`crates/…`, `ui/…`), and must
//!   exist from the root;
//! - or it names a source file (`.rs`, `.svelte`, `.ts`, `.proto`, `.py`) on its own or
//!   under a folder (`container/copy.rs`), and some file of the tree must end with it.
//!
//! `*` matches within one path component. Paths of the engine's data (`content/blobs/`)
//! or of the machine (`/run/docker.sock`) are not the tree's and are not checked.

use std::path::Path;

const SOURCE_EXTENSIONS: &[&str] = &["rs", "svelte", "ts", "proto", "py"];
/// Folders of the tree not worth walking for source files.
const SKIPPED: &[&str] = &["target", "node_modules", ".git", "dist", "gen"];

/// The paths `text` names in backticks that are the repository's (see the module docs).
pub fn named_paths(text: &str, top_level: &[String]) -> Vec<String> {
    let mut paths = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        // Odd pieces are inside backticks; a path has no spaces, `<`, `$` or `=`.
        if i % 2 == 0 || span.is_empty() || span.contains([' ', '<', '>', '$', '=', '{', '(']) || span.starts_with(['/', '-', '.']) {
            continue;
        }
        let first = span.split('/').next().unwrap_or_default();
        let rooted = span.contains('/') && top_level.iter().any(|t| t == first);
        let source = Path::new(span).extension().is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|s| e == *s));
        if rooted || source {
            paths.push(span.trim_end_matches('/').to_owned());
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

/// Whether `name` matches `pattern` (`*` within one component).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((before, after)) => {
            name.len() >= before.len() + after.len() && name.starts_with(before) && {
                let rest = &name[before.len()..];
                (0..=rest.len()).filter(|&k| rest.is_char_boundary(k)).any(|k| matches(after, &rest[k..]))
            }
        }
    }
}

/// Every file and folder under `dir` (relative, with `/`), skipping [`SKIPPED`].
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        }
    }
}

/// Whether `named` is in `tree`: from the root when `rooted`, else as the tail of a path.
fn present(named: &str, rooted: bool, tree: &[String]) -> bool {
    let wanted: Vec<&str> = named.split('/').collect();
    tree.iter().any(|path| {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() < wanted.len() || (rooted && parts.len() != wanted.len()) {
            return false;
        }
        let tail = &parts[parts.len() - wanted.len()..];
        tail.iter().zip(&wanted).all(|(part, pattern)| matches(pattern, part))
    })
}

/// The paths ARCHITECTURE.md names that the tree at `root` lacks.
pub fn missing_paths(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let top_level: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !SKIPPED.contains(&n.as_str()))
        .collect();
    let mut tree = Vec::new();
    walk(root, root, &mut tree);
    named_paths(&text, &top_level)
        .into_iter()
        .filter(|named| {
            let rooted = top_level.iter().any(|t| named.split('/').next() == Some(t.as_str())) && named.contains('/');
            !present(named, rooted, &tree)
        })
        .collect()
}

/// The engine crate's top-level modules and, for each, the others it names as
/// `crate::<module>` outside its tests (lib.rs, the root, is no module here).
pub fn module_imports(src: &Path) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut modules: Vec<String> = std::fs::read_dir(src)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().trim_end_matches(".rs").to_owned())
        .filter(|m| m != "lib" && m != "main")
        .collect();
    modules.sort();
    let mut imports = std::collections::BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            walk(&dir, &dir, &mut files);
            files = files.into_iter().filter(|f| f.ends_with(".rs")).map(|f| dir.join(f).display().to_string()).collect();
        } else {
            files.push(src.join(format!("{module}.rs")).display().to_string());
        }
        let mut named = std::collections::BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            // A module's tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        // `use crate::{a, b::c}`
                        Some(group) => {
                            group.split('}').next().unwrap_or_default().split(',').map(|n| n.trim().split("::").next().unwrap_or_default()).collect()
                        }
                        None => vec![rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default()],
                    };
                    named.extend(names.into_iter().filter(|n| *n != module && modules.iter().any(|m| m == n)).map(str::to_owned));
                }
            }
        }
        imports.insert(module.clone(), named);
    }
    imports
}

/// Each module that imports one that (directly or not) imports it back: `a -> b -> a`.
pub fn import_loops(imports: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Vec<String> {
    let mut loops = Vec::new();
    for (from, targets) in imports {
        for to in targets {
            // A path from `to` back to `from`, breadth first, for the message.
            let mut paths = vec![vec![to.clone()]];
            let mut seen = std::collections::BTreeSet::new();
            while let Some(path) = (!paths.is_empty()).then(|| paths.remove(0)) {
                let last = path.last().cloned().unwrap_or_default();
                if last == *from {
                    loops.push(format!("{from} -> {}", path.join(" -> ")));
                    break;
                }
                for next in imports.get(&last).into_iter().flatten() {
                    if seen.insert(next.clone()) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        paths.push(longer);
                    }
                }
            }
        }
    }
    loops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_has_no_import_loops() {
        let imports = module_imports(&crate::root().join("crates/berth-engine/src"));
        assert!(imports.contains_key("container") && imports.contains_key("docker"), "{imports:?}");
        let loops = import_loops(&imports);
        assert!(loops.is_empty(), "engine modules that import one another back: {loops:#?}");
    }

    #[test]
    fn a_loop_is_found_and_named() {
        let map = |pairs: &[(&str, &[&str])]| -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
        };
        assert!(import_loops(&map(&[("docker", &["container", "image"]), ("container", &["image"]), ("image", &[])])).is_empty());
        let loops = import_loops(&map(&[("container", &["volume"]), ("volume", &["ids", "container"]), ("ids", &[])]));
        assert_eq!(loops, ["container -> volume -> container", "volume -> container -> volume"]);
    }

    #[test]
    fn every_path_architecture_names_exists() {
        let missing = missing_paths(&crate::root());
        assert!(missing.is_empty(), "ARCHITECTURE.md names paths the tree does not have: {missing:?}");
    }

    #[test]
    fn the_check_finds_what_it_should() {
        let top = vec!["crates".to_owned(), "ui".to_owned()];
        let text = "`crates/a/src/x.rs`, `container/copy.rs`, `content/blobs/`, `/run/docker.sock`, `--cpuset-cpus/-mems`, `<root>/netns/<id>`, `proto/berth/v1/*.proto`, `run --rm`";
        assert_eq!(named_paths(text, &top), ["container/copy.rs", "crates/a/src/x.rs", "proto/berth/v1/*.proto"]);
        let tree: Vec<String> = ["crates", "crates/a", "crates/a/src", "crates/a/src/x.rs", "crates/p/proto/berth/v1/images.proto"].map(String::from).to_vec();
        assert!(present("crates/a/src/x.rs", true, &tree));
        assert!(!present("a/src/x.rs", true, &tree));
        assert!(present("a/src/x.rs", false, &tree));
        assert!(present("proto/berth/v1/*.proto", false, &tree));
        assert!(!present("proto/berth/v1/*.rs", false, &tree));
        assert!(!present("crates/b", true, &tree));
        assert!(matches("*.test.ts", "App.test.ts") && !matches("*.test.ts", "App.ts"));
    }
}
