//! Builder flags (`--name=value` words right after the instruction), extracted and
//! checked as Docker's `BFlags` does: a closed set per instruction, string flags once
//! each, boolean flags bare or `=true`/`=false`, list flags repeatable.

use crate::error::ParseErrorKind;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--name=value`, at most once.
    String,
    /// `--name`, `--name=true`, `--name=false`, at most once.
    Bool,
    /// `--name=value`, repeatable.
    List,
}

/// The flags an instruction accepts.
pub(crate) type Spec = &'static [(&'static str, Kind)];

/// The flags given, by name, in order.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.values.iter().any(|(n, v)| *n == name && v == "true")
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.clone()).collect()
    }
}

/// Splits the leading flag words off `args`: (flag words without quotes, the rest).
/// A bare `--` ends the flags and is dropped. Quotes inside a flag word are removed and
/// a backslash escapes the next character.
pub(crate) fn extract(args: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = args;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = trimmed.len();
        let mut chars = trimmed.char_indices();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        rest = &trimmed[end..];
        if word == "--" {
            return (flags, rest.trim_start());
        }
        flags.push(word);
    }
}

/// Checks the flag words against what `instruction` accepts.
pub(crate) fn parse(instruction: &'static str, words: &[String], spec: Spec) -> Result<Flags, ParseErrorKind> {
    let mut flags = Flags::default();
    for word in words {
        let body = word.trim_start_matches('-');
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some((name, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(ParseErrorKind::UnknownFlag { instruction, flag: name.to_string() });
        };
        if *kind != Kind::List && flags.values.iter().any(|(n, _)| n == name) {
            return Err(ParseErrorKind::DuplicateFlag(name.to_string()));
        }
        let value = match (kind, value) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => "true".to_string(),
            (Kind::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => "false".to_string(),
            (Kind::Bool, Some(v)) => return Err(ParseErrorKind::InvalidBool { flag: name.to_string(), value: v.to_string() }),
            (_, None) => return Err(ParseErrorKind::MissingFlagValue(name.to_string())),
            (_, Some(v)) => v.to_string(),
        };
        flags.values.push((name, value));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = &[("from", Kind::String), ("link", Kind::Bool), ("exclude", Kind::List)];

    #[test]
    fn extracts_leading_flags_only() {
        let (flags, rest) = extract("--from=a  --link src --not-a-flag dst");
        assert_eq!(flags, vec!["--from=a", "--link"]);
        assert_eq!(rest, "src --not-a-flag dst");
        let (flags, rest) = extract("--chown=\"a b\" x");
        assert_eq!(flags, vec!["--chown=a b"]);
        assert_eq!(rest, "x");
        let (flags, rest) = extract("--link -- --weird-name /d");
        assert_eq!(flags, vec!["--link"]);
        assert_eq!(rest, "--weird-name /d");
        let (flags, rest) = extract("  [\"a\"]");
        assert!(flags.is_empty());
        assert_eq!(rest, "[\"a\"]");
    }

    #[test]
    fn parses_string_bool_and_list_flags() {
        let words: Vec<String> = ["--from=build", "--link=false", "--exclude=*.md", "--exclude=tmp"].map(String::from).to_vec();
        let f = parse("COPY", &words, SPEC).expect("succeeds");
        assert_eq!(f.string("from").as_deref(), Some("build"));
        assert!(!f.bool("link"));
        assert_eq!(f.list("exclude"), vec!["*.md", "tmp"]);
    }

    #[test]
    fn flag_errors() {
        let p = |w: &[&str]| parse("COPY", &w.iter().map(|s| s.to_string()).collect::<Vec<_>>(), SPEC);
        assert_eq!(p(&["--chmod=1"]).expect_err("fails").to_string(), "unknown flag for COPY: --chmod");
        assert_eq!(p(&["--from=a", "--from=b"]).expect_err("fails"), ParseErrorKind::DuplicateFlag("from".into()));
        assert_eq!(p(&["--from"]).expect_err("fails"), ParseErrorKind::MissingFlagValue("from".into()));
        assert_eq!(p(&["--link=maybe"]).expect_err("fails").to_string(), "expecting boolean value for flag link, not: maybe");
        assert_eq!(p(&["--from="]).expect("succeeds").string("from").as_deref(), Some(""));
    }
}
