//! Reading one compose file: YAML into a tree, every string interpolated, the obsolete
//! top-level `version:` dropped. Errors name the file, and the line (YAML errors) or
//! the key (interpolation errors).

use serde_norway::Value;

use crate::interpolate::{interpolate, InterpolateError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read it: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}:{column}: {message}")]
    Yaml { file: String, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    YamlNoLocation { file: String, message: String },
    #[error("{file}: the top level must be a mapping")]
    NotAMapping { file: String },
    #[error("{file}: {key}: {source}")]
    Interpolate { file: String, key: String, source: InterpolateError },
}

/// Parses and interpolates `text`, which came from `file`.
pub fn load_str(text: &str, file: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, LoadError> {
    let mut value: Value = serde_norway::from_str(text).map_err(|e| match e.location() {
        Some(at) => LoadError::Yaml { file: file.to_owned(), line: at.line(), column: at.column(), message: yaml_message(&e) },
        None => LoadError::YamlNoLocation { file: file.to_owned(), message: e.to_string() },
    })?;
    // YAML merge keys (`<<: *base`, `<<: [*a, *b]`), as compose files use them with
    // anchors for shared settings.
    value.apply_merge().map_err(|e| LoadError::YamlNoLocation { file: file.to_owned(), message: yaml_message(&e) })?;
    let Value::Mapping(top) = &mut value else {
        return Err(LoadError::NotAMapping { file: file.to_owned() });
    };
    top.remove("version");
    walk(&mut value, "", file, lookup)?;
    Ok(value)
}

/// Reads and loads a file.
pub fn load_file(path: &std::path::Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { file: file.clone(), source })?;
    load_str(&text, &file, lookup)
}

/// serde_norway puts the location in its message too; keep only the reason.
fn yaml_message(e: &serde_norway::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn walk(value: &mut Value, key: &str, file: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), LoadError> {
    match value {
        Value::String(s) => {
            *s = interpolate(s, lookup).map_err(|source| LoadError::Interpolate { file: file.to_owned(), key: key.to_owned(), source })?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{key}[{i}]"), file, lookup)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other).unwrap_or_default().trim().to_owned(),
                };
                let path = if key.is_empty() { name } else { format!("{key}.{name}") };
                walk(v, &path, file, lookup)?;
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, key, file, lookup)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn merge_keys_merge_and_own_keys_win() {
        let text = "x-base: &base\n  image: busybox\n  environment: {A: \"1\"}\nservices:\n  web:\n    <<: *base\n    environment: {B: \"2\"}\n  db:\n    <<: [*base]\n";
        let value = load_str(text, "compose.yaml", &|_| None).expect("load");
        assert_eq!(value["services"]["web"]["image"].as_str(), Some("busybox"));
        assert_eq!(value["services"]["web"]["environment"]["B"].as_str(), Some("2"));
        assert!(value["services"]["web"].get("<<").is_none());
        assert_eq!(value["services"]["db"]["image"].as_str(), Some("busybox"));
    }

    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TAG").then(|| "1.2".to_owned())
    }

    #[test]
    fn strings_are_interpolated_and_version_is_dropped() {
        let text = "version: '3.8'\nservices:\n  web:\n    image: \"nginx:${TAG}\"\n    command: [\"echo\", \"$$HOME\"]\n";
        let value = load_str(text, "compose.yaml", &env).expect("load");
        assert!(value.get("version").is_none());
        assert_eq!(value["services"]["web"]["image"], Value::String("nginx:1.2".into()));
        assert_eq!(value["services"]["web"]["command"][1], Value::String("$HOME".into()));
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let err = load_str("services:\n  web:\n    image: [unclosed\n", "compose.yaml", &env).expect_err("bad yaml");
        let text = err.to_string();
        assert!(text.starts_with("compose.yaml:"), "{text}");
        assert!(matches!(err, LoadError::Yaml { line: 3 | 4, .. }), "{err:?}");
        let err = load_str("services:\n  db:\n    environment:\n      PASSWORD: ${DB_PASSWORD:?set it}\n", "compose.yaml", &env).expect_err("required");
        assert_eq!(err.to_string(), "compose.yaml: services.db.environment.PASSWORD: required variable DB_PASSWORD is missing a value: set it");
        assert!(matches!(load_str("- a\n- b\n", "x.yml", &env), Err(LoadError::NotAMapping { .. })));
    }
}
