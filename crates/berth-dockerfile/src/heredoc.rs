//! Heredocs (`RUN <<EOF`, `COPY <<a.txt <<b.txt /dir/`): finding the markers in an
//! instruction's words, as BuildKit does (a word of the form `[n]<<[-]NAME`).

use crate::expand::expand;

/// One heredoc body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator, quotes removed: also the file name for COPY and ADD.
    pub name: String,
    /// The body, each line ending in a newline; with `<<-`, leading tabs removed.
    pub content: String,
    /// Whether variables in the body are expanded: false when the name was quoted
    /// (`<<"EOF"` or `<<'EOF'`).
    pub expand: bool,
    /// Whether the marker was `<<-` (leading tabs stripped).
    pub strip_tabs: bool,
    /// A file descriptor before the marker (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// A heredoc marker before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub expand: bool,
    pub strip_tabs: bool,
    pub fd: Option<u32>,
}

impl Marker {
    pub(crate) fn with_content(self, content: String) -> Heredoc {
        Heredoc { name: self.name, content, expand: self.expand, strip_tabs: self.strip_tabs, fd: self.fd }
    }
}

/// The marker a word is, if any: `[digits]<<[-]rest` with no `<` in `rest`.
pub(crate) fn marker(word: &str, escape: char) -> Option<Marker> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let fd = if digits > 0 { Some(word[..digits].parse().ok()?) } else { None };
    let rest = word[digits..].strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let no_vars: [(&str, &str); 0] = [];
    let name = expand(rest, &no_vars[..], escape).ok()?;
    if name.is_empty() {
        return None;
    }
    Some(Marker { name, expand: !rest.contains(['\'', '"']), strip_tabs, fd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_plain_quoted_chomped_and_with_fd() {
        let m = marker("<<EOF", '\\').expect("succeeds");
        assert_eq!((m.name.as_str(), m.expand, m.strip_tabs, m.fd), ("EOF", true, false, None));
        let m = marker("<<-\"END\"", '\\').expect("succeeds");
        assert_eq!((m.name.as_str(), m.expand, m.strip_tabs), ("END", false, true));
        let m = marker("<<'x.txt'", '\\').expect("succeeds");
        assert_eq!((m.name.as_str(), m.expand), ("x.txt", false));
        assert_eq!(marker("3<<IN", '\\').expect("succeeds").fd, Some(3));
    }

    #[test]
    fn non_markers() {
        for w in ["<<", "<<<word", "a<<EOF", "\"<<EOF\"", "<EOF", "<<''", "echo"] {
            assert!(marker(w, '\\').is_none(), "{w}");
        }
    }
}
