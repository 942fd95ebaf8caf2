//! Physical lines to logical lines: leading whitespace, comments (also inside a run of
//! continuation lines), blank lines, and line continuations with the escape character,
//! as Docker's parser joins them. Heredoc bodies are read raw from the same source.

use crate::error::{ParseError, ParseErrorKind};

/// One instruction's text, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// The joined text, leading whitespace of the first line and every continuation
    /// character removed (Docker's `Node.Original`).
    pub text: String,
    /// The 1-based first line.
    pub start: usize,
    /// The 1-based last line (before any heredoc body).
    pub end: usize,
}

/// The physical lines of a Dockerfile, consumed front to back.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        if text.ends_with('\n') || text.is_empty() {
            lines.pop();
        }
        Self { lines, next: 0 }
    }

    pub(crate) fn lines(&self) -> &[&'a str] {
        &self.lines
    }

    /// The number of the last line consumed.
    pub(crate) fn consumed(&self) -> usize {
        self.next
    }

    /// The physical lines `start..=end` (1-based) joined with newlines.
    pub(crate) fn text_of(&self, start: usize, end: usize) -> String {
        self.lines[start - 1..end].join("\n")
    }

    /// The next logical line, or `None` at the end of the file.
    pub(crate) fn next_logical(&mut self, escape: char) -> Result<Option<LogicalLine>, ParseError> {
        while self.next < self.lines.len() {
            let raw = self.lines[self.next];
            self.next += 1;
            let start = self.next;
            let first = raw.trim_start();
            if first.starts_with('#') {
                continue;
            }
            let (mut text, mut more) = continuation(first, escape);
            if !more && text.trim().is_empty() {
                continue;
            }
            while more {
                let Some(raw) = self.lines.get(self.next) else {
                    if text.trim().is_empty() {
                        return Err(ParseError::new(start, ParseErrorKind::EmptyContinuation));
                    }
                    break;
                };
                self.next += 1;
                let trimmed = raw.trim_start();
                if trimmed.starts_with('#') || trimmed.is_empty() {
                    continue;
                }
                let (part, again) = continuation(raw, escape);
                text.push_str(&part);
                more = again;
            }
            return Ok(Some(LogicalLine { text, start, end: self.next }));
        }
        Ok(None)
    }

    /// Reads a heredoc body up to its terminator line (consumed). With `strip_tabs`
    /// (`<<-`) leading tabs are removed from the body and before the terminator.
    /// `None` when the file ends first.
    pub(crate) fn heredoc(&mut self, name: &str, strip_tabs: bool) -> Option<String> {
        let mut content = String::new();
        while let Some(raw) = self.lines.get(self.next) {
            self.next += 1;
            let line = if strip_tabs { raw.trim_start_matches('\t') } else { raw };
            if line == name {
                return Some(content);
            }
            content.push_str(line);
            content.push('\n');
        }
        None
    }
}

/// Removes a trailing continuation (`escape` then optional blanks): (text, continues).
fn continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), true),
        None => (line.to_string(), false),
    }
}

/// Splits at whitespace outside quotes, keeping quotes and escapes in the words, as
/// Docker's parser splits ENV, LABEL and ARG arguments (and looks for heredocs). A
/// trailing lone escape character is dropped.
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None => {
                if c.is_whitespace() {
                    if started {
                        words.push(std::mem::take(&mut word));
                        started = false;
                    }
                    continue;
                }
                started = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    word.push(c);
                } else if c == escape {
                    if let Some(n) = chars.next() {
                        word.push(c);
                        word.push(n);
                    }
                } else {
                    word.push(c);
                }
            }
            Some(q) => {
                if c == q {
                    quote = None;
                    word.push(c);
                } else if c == escape && q != '\'' {
                    if let Some(n) = chars.next() {
                        word.push(c);
                        word.push(n);
                    } else {
                        quote = None;
                    }
                } else {
                    word.push(c);
                }
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(text: &str, escape: char) -> Vec<(String, usize, usize)> {
        let mut src = Source::new(text);
        let mut out = Vec::new();
        while let Some(l) = src.next_logical(escape).expect("succeeds") {
            out.push((l.text, l.start, l.end));
        }
        out
    }

    #[test]
    fn blank_lines_comments_and_leading_whitespace() {
        let got = logical("\n# c\n   FROM a  \n\t# c2\n  RUN x\n", '\\');
        assert_eq!(got, vec![("FROM a  ".into(), 3, 3), ("RUN x".into(), 5, 5)]);
    }

    #[test]
    fn continuations_join_without_adding_spaces() {
        let got = logical("RUN a \\\n  && b\\\n c", '\\');
        assert_eq!(got, vec![("RUN a   && b c".into(), 1, 3)]);
    }

    #[test]
    fn comments_and_blank_lines_inside_continuations_are_skipped() {
        let got = logical("RUN a \\\n# note\n\n    # indented note\n  b\nFROM x", '\\');
        assert_eq!(got, vec![("RUN a   b".into(), 1, 5), ("FROM x".into(), 6, 6)]);
    }

    #[test]
    fn continuation_with_trailing_blanks_and_backtick() {
        assert_eq!(logical("RUN a \\  \t\n b", '\\')[0].0, "RUN a  b");
        let got = logical("RUN dir c:\\ `\n  d", '`');
        assert_eq!(got[0].0, "RUN dir c:\\   d");
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(logical("RUN a \\", '\\'), vec![("RUN a ".into(), 1, 1)]);
        let mut src = Source::new("FROM a\n\\\n");
        assert!(src.next_logical('\\').expect("succeeds").is_some());
        let err = src.next_logical('\\').expect_err("fails");
        assert_eq!(err.to_string(), "line 2: empty line continuation at end of file");
    }

    #[test]
    fn crlf_and_bom() {
        let got = logical("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n", '\\');
        assert_eq!(got, vec![("FROM a".into(), 1, 1), ("RUN b  c".into(), 2, 3)]);
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(split_words(r#"a=1 b="x y"  c='p q'"#, '\\'), vec!["a=1", r#"b="x y""#, "c='p q'"]);
        assert_eq!(split_words(r"a=x\ y b", '\\'), vec![r"a=x\ y", "b"]);
        assert_eq!(split_words(r#"a="q\"uote" z"#, '\\'), vec![r#"a="q\"uote""#, "z"]);
        assert_eq!(split_words("a=''", '\\'), vec!["a=''"]);
    }
}
