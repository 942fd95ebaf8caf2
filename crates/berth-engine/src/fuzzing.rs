//! Entry points for coverage-guided fuzzing (`cargo xtask fuzz`, the `fuzz/` crate)
//! and for the unit test that replays every seed and every crash ever found
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`). Each takes arbitrary
//! bytes and must neither panic nor hang; a property it checks is an assertion.

use std::io::Write;

use crate::content::Digest;
use crate::image::manifest::{self, Compression};

/// A layer tarball (plain, or gzip by its magic) unpacked into a fresh folder: it may
/// be refused, never write outside the folder, never panic.
pub fn unpack_layer(data: &[u8]) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("berth-fuzz-unpack-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    if std::fs::create_dir_all(&root).is_err() {
        return;
    }
    let blob = base.join("layer");
    let written = std::fs::File::create(&blob).and_then(|mut f| f.write_all(data));
    if written.is_ok() {
        let compression = if data.starts_with(&[0x1f, 0x8b]) { Compression::Gzip } else { Compression::None };
        // The diff ID of a plain layer is its own digest, so a fuzzed tar reaches the
        // entries; a gzip one stops at the digest check after unpacking.
        let diff_id = Digest::of(data);
        if let Ok(file) = std::fs::File::open(&blob) {
            let _ = crate::snapshot::unpack::unpack(file, compression, &diff_id, &root);
        }
    }
    // Nothing may have landed beside the root (a `..` or a symlink escape).
    let beside: Vec<_> = std::fs::read_dir(&base).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&base);
    assert!(beside.len() <= 2, "a layer wrote outside its root: {beside:?}");
}

/// An image reference: parsed or refused; a parsed one prints as something that
/// parses to the same reference.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = text.parse::<crate::registry::Reference>() {
        let printed = parsed.to_string();
        let again: crate::registry::Reference = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(again.to_string(), printed, "{text:?}");
    }
}

/// A manifest or index from a registry, and the platform strings in it.
pub fn manifest(data: &[u8]) {
    let _ = manifest::is_index("", data);
    if let Ok(m) = serde_json::from_slice::<manifest::Manifest>(data) {
        let _ = m.config.digest();
        for layer in &m.layers {
            let _ = layer.digest();
            let _ = manifest::layer_compression(&layer.media_type);
        }
    }
    if let Ok(index) = serde_json::from_slice::<manifest::Index>(data) {
        let host = manifest::Platform::host();
        for d in &index.manifests {
            let _ = d.digest();
            if let Some(p) = &d.platform {
                let _ = host.accepts(p);
                let _ = manifest::Platform::parse(&p.to_string());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = manifest::Platform::parse(text);
    }
}

/// The Docker API's request path without an engine (see `docker::fuzz_request`).
pub fn docker_request(data: &[u8]) {
    crate::docker::fuzz_request(data);
}

#[cfg(test)]
mod tests {
    /// Every seed and every crash fuzzing found, through its target (the unit tier's
    /// brief run of each; `cargo xtask fuzz` runs them for real).
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 4] =
            [("unpack_layer", super::unpack_layer), ("reference", super::reference), ("manifest", super::manifest), ("docker_request", super::docker_request)];
        for (name, target) in targets {
            let mut seen = 0;
            for kind in ["corpus", "regressions"] {
                for entry in std::fs::read_dir(fuzz.join(kind).join(name)).into_iter().flatten().flatten() {
                    target(&std::fs::read(entry.path()).expect("read a seed"));
                    seen += 1;
                }
            }
            assert!(seen > 0, "no seeds for {name}");
        }
    }
}
