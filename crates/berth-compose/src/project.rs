//! Project names: `-p`, else `COMPOSE_PROJECT_NAME`, else the top-level `name:`, else
//! the project directory's name; normalised as compose does (lowercase, only
//! `[a-z0-9_-]`, starting with a letter or digit).

/// Normalises a candidate; None when nothing valid is left.
pub fn normalise(name: &str) -> Option<String> {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let trimmed = lowered.trim_start_matches(['_', '-']);
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Whether `name` is already a valid project name (what `-p` must give).
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Picks the project name by compose's precedence.
pub fn choose(flag: Option<&str>, env: Option<&str>, top_level: Option<&str>, directory: &str) -> Result<String, String> {
    if let Some(flag) = flag.filter(|f| !f.is_empty()) {
        return if is_valid(flag) {
            Ok(flag.to_owned())
        } else {
            Err(format!("invalid project name {flag:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"))
        };
    }
    for candidate in [env, top_level].into_iter().flatten().filter(|c| !c.is_empty()) {
        if let Some(name) = normalise(candidate) {
            return Ok(name);
        }
    }
    normalise(directory).ok_or_else(|| format!("cannot make a project name from the directory {directory:?}: use -p"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_normalisation() {
        assert_eq!(normalise("My App.v2"), Some("myappv2".into()));
        assert_eq!(normalise("__x"), Some("x".into()));
        assert_eq!(normalise("..."), None);
        assert_eq!(choose(Some("web"), Some("env"), Some("top"), "dir").as_deref(), Ok("web"));
        assert!(choose(Some("Web"), None, None, "dir").is_err());
        assert_eq!(choose(None, Some("Env Name"), Some("top"), "dir").as_deref(), Ok("envname"));
        assert_eq!(choose(None, None, Some("top"), "dir").as_deref(), Ok("top"));
        assert_eq!(choose(None, None, None, "My-Project").as_deref(), Ok("my-project"));
    }
}
