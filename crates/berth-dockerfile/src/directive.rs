//! Parser directives: `# escape=`, `# syntax=` and `# check=` comments at the very top
//! of a Dockerfile. As Docker's reference says, they are only looked for before the
//! first instruction, comment that is not a directive, or blank line; the names are
//! case-insensitive, each may appear once, and an unknown name ends the directives
//! (that line is then an ordinary comment).

use crate::error::{ParseError, ParseErrorKind};

/// One directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The name, lowercased: `escape`, `syntax` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The 1-based line.
    pub line: usize,
}

/// The parser directives of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (the default) or `` ` ``.
    pub escape: char,
    /// `# syntax=`: a BuildKit frontend image. Berth does not run frontends; the
    /// caller should tell the user it is ignored.
    pub syntax: Option<String>,
    /// `# check=`: BuildKit build-check settings, recorded and otherwise ignored.
    pub check: Option<String>,
    /// Every directive, in order.
    pub list: Vec<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Self { escape: '\\', syntax: None, check: None, list: Vec::new() }
    }
}

/// Reads the directives from the first lines.
pub(crate) fn parse(lines: &[&str]) -> Result<Directives, ParseError> {
    let mut directives = Directives::default();
    for (index, line) in lines.iter().enumerate() {
        let Some((name, value)) = split(line) else {
            break;
        };
        let line = index + 1;
        if directives.list.iter().any(|d| d.name == name) {
            return Err(ParseError::new(line, ParseErrorKind::DuplicateDirective(name)));
        }
        match name.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ParseError::new(line, ParseErrorKind::InvalidEscape(value))),
                }
            }
            "syntax" => directives.syntax = Some(value.clone()),
            "check" => directives.check = Some(value.clone()),
            _ => break,
        }
        directives.list.push(Directive { name, value, line });
    }
    Ok(directives)
}

/// `#  name = value` (after leading whitespace) as (lowercased name, trimmed value).
fn split(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let (name, value) = rest.split_once('=')?;
    let name = name.trim_end();
    let mut chars = name.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_directives() {
        let d = parse(&["FROM alpine"]).expect("succeeds");
        assert_eq!(d, Directives::default());
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn escape_syntax_and_check_are_recorded() {
        let d = parse(&["# escape=`", "#SYNTAX = docker/dockerfile:1", "# check=skip=all", "FROM x"]).expect("succeeds");
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.check.as_deref(), Some("skip=all"));
        assert_eq!(d.list.len(), 3);
        assert_eq!(d.list[1].line, 2);
        assert_eq!(d.list[1].name, "syntax");
    }

    #[test]
    fn directives_stop_at_blank_line_comment_or_unknown_name() {
        assert_eq!(parse(&["", "# escape=`"]).expect("succeeds").escape, '\\');
        assert_eq!(parse(&["# hello", "# escape=`"]).expect("succeeds").escape, '\\');
        assert_eq!(parse(&["# foo=bar", "# escape=`"]).expect("succeeds").escape, '\\');
        assert_eq!(parse(&["FROM x", "# escape=`"]).expect("succeeds").escape, '\\');
    }

    #[test]
    fn invalid_or_repeated_directives_are_errors() {
        let e = parse(&["# escape=x"]).expect_err("fails");
        assert_eq!(e.to_string(), "line 1: invalid escape token 'x' does not match ` or \\");
        let e = parse(&["# escape=\\", "# escape=`"]).expect_err("fails");
        assert_eq!(e.to_string(), "line 2: only one escape parser directive can be used");
    }
}
