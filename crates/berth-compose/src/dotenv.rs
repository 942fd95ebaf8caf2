//! `.env` files as compose reads them: `KEY=VALUE` lines, optional `export `, `#`
//! comments (whole lines, or after an unquoted value and a space), single quotes
//! (literal), double quotes (`\n`, `\t`, `\"`, `\\` escapes, and interpolation of
//! earlier variables), unquoted values with interpolation too.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    #[error("{file}:{line}: {reason}")]
    Syntax { file: String, line: usize, reason: String },
}

/// Parses `text` (from `file`, for messages). Values may use variables defined earlier
/// in the file or in `outer` (the process environment).
pub fn parse(text: &str, file: &str, outer: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let err = |reason: &str| DotenvError::Syntax { file: file.to_owned(), line: line_no, reason: reason.to_owned() };
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v),
            // A bare name takes its value from the environment, if any.
            None => {
                let key = line.trim();
                if let Some(v) = outer(key) {
                    vars.insert(key.to_owned(), v);
                }
                continue;
            }
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            return Err(err(&format!("invalid variable name {key:?}")));
        }
        let lookup = |name: &str| vars.get(name).cloned().or_else(|| outer(name));
        let value = value.trim_start();
        let parsed = if let Some(rest) = value.strip_prefix('\'') {
            let end = rest.find('\'').ok_or_else(|| err("a single quote is not closed"))?;
            rest[..end].to_owned()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some(other) => out.push(other),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(err("a double quote is not closed"));
            }
            crate::interpolate::interpolate(&out, &lookup).map_err(|e| err(&e.to_string()))?
        } else {
            let unquoted = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            crate::interpolate::interpolate(unquoted.trim_end(), &lookup).map_err(|e| err(&e.to_string()))?
        };
        vars.insert(key.to_owned(), parsed);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quotes_comments_and_references() {
        let text = "# comment\n\nexport A=1\nB = two words # trailing\nC='lit $A \\n'\nD=\"esc\\tand $A\"\nE=${A}-${HOME_X:-h}\nFROM_ENV\n";
        let outer = |name: &str| (name == "FROM_ENV").then(|| "outer".to_owned());
        let vars = parse(text, ".env", &outer).expect("parse");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "lit $A \\n");
        assert_eq!(vars["D"], "esc\tand 1");
        assert_eq!(vars["E"], "1-h");
        assert_eq!(vars["FROM_ENV"], "outer");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let none = |_: &str| None;
        let err = parse("A=1\nB=\"open\n", "stack/.env", &none).expect_err("unclosed");
        assert_eq!(err.to_string(), "stack/.env:2: a double quote is not closed");
        let err = parse("BAD KEY=1\n", ".env", &none).expect_err("bad name");
        assert!(err.to_string().starts_with(".env:1: invalid variable name"), "{err}");
    }
}
