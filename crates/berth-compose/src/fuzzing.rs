//! The fuzz target for compose files (`cargo xtask fuzz compose_load`): loading with
//! interpolation, merge keys and the model must answer, never panic or hang. The unit
//! test replays every seed and every crash found (`fuzz/corpus/compose_load/`,
//! `fuzz/regressions/compose_load/`).

/// A compose file's bytes, through the loader and the model.
pub fn load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lookup = |name: &str| match name {
        "TAG" => Some("1.0".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    if let Ok(value) = crate::load::load_str(text, "fuzz.yaml", &lookup) {
        let _ = crate::model::from_value(value, "fuzz.yaml");
    }
    for line in text.lines().take(64) {
        let _ = crate::model::parse_port(line);
        let _ = crate::model::parse_volume(line);
        let _ = crate::model::split_shell(line);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seen = 0;
        for kind in ["corpus", "regressions"] {
            for entry in std::fs::read_dir(fuzz.join(kind).join("compose_load")).into_iter().flatten().flatten() {
                super::load(&std::fs::read(entry.path()).expect("read a seed"));
                seen += 1;
            }
        }
        assert!(seen > 0, "no seeds for compose_load");
    }
}
