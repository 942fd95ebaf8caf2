//! The fuzz target for Dockerfiles and `.dockerignore` (`cargo xtask fuzz
//! dockerfile_parse`): parsing, expanding every instruction and writing its history
//! must answer, never panic or hang. The unit test replays every seed and every crash
//! found (`fuzz/corpus/dockerfile_parse/`, `fuzz/regressions/dockerfile_parse/`).

/// A Dockerfile's bytes, parsed, each instruction expanded with a few build args.
pub fn parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(dockerfile) = crate::parse(text) {
        let args = vec![("TAG", "1"), ("EMPTY", "")];
        for stage in &dockerfile.stages {
            for instruction in &stage.instructions {
                if let Ok(expanded) = instruction.expand(&args, dockerfile.escape()) {
                    let _ = expanded.history_created_by(&crate::default_shell());
                }
            }
        }
    }
    if let Ok(ignore) = crate::Ignore::parse(text) {
        for path in ["a", "a/b/c.txt", "node_modules/x", ".git/config"] {
            let _ = ignore.is_excluded(path);
            let _ = ignore.may_reinclude_under(path);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seen = 0;
        for kind in ["corpus", "regressions"] {
            for entry in std::fs::read_dir(fuzz.join(kind).join("dockerfile_parse")).into_iter().flatten().flatten() {
                super::parse(&std::fs::read(entry.path()).expect("read a seed"));
                seen += 1;
            }
        }
        assert!(seen > 0, "no seeds for dockerfile_parse");
    }
}
