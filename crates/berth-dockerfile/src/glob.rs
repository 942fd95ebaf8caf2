//! Path patterns with Go's `filepath.Match` semantics, one path component at a time:
//! `*` (any run of characters but `/`), `?` (one character but `/`), `[a-z]`, `[^a]`,
//! and `\x` (a literal `x`). COPY and ADD sources use them on the build context
//! ([`Glob`], [`select`]); `.dockerignore` adds `**` on top ([`crate::Ignore`]).
//!
//! A source pattern that matches a directory selects everything under it, as COPY copies
//! a directory's contents. Sources and context paths are cleaned the way Docker cleans
//! them: a leading `/` or `./` is dropped, `.` and empty components vanish, and `..`
//! never climbs above the context root.

use crate::error::GlobError;

/// One element of a compiled component pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Star,
    Any,
    Lit(char),
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A pattern for one path component (no `/` inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    elems: Vec<Elem>,
}

impl Component {
    /// Compiles `pattern`; `None` when it is malformed the way `filepath.Match` reports
    /// `ErrBadPattern` (an unclosed or empty class, a trailing escape, a bad range).
    pub(crate) fn compile(pattern: &str) -> Option<Self> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut elems = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if elems.last() != Some(&Elem::Star) {
                        elems.push(Elem::Star);
                    }
                    i += 1;
                }
                '?' => {
                    elems.push(Elem::Any);
                    i += 1;
                }
                '\\' => {
                    let c = *chars.get(i + 1)?;
                    elems.push(Elem::Lit(c));
                    i += 2;
                }
                '[' => {
                    i += 1;
                    let mut negated = false;
                    if chars.get(i) == Some(&'^') {
                        negated = true;
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        if chars.get(i) == Some(&']') && !ranges.is_empty() {
                            i += 1;
                            break;
                        }
                        let (lo, next) = class_char(&chars, i)?;
                        i = next;
                        let mut hi = lo;
                        if chars.get(i) == Some(&'-') {
                            let (h, next) = class_char(&chars, i + 1)?;
                            hi = h;
                            i = next;
                        }
                        ranges.push((lo, hi));
                    }
                    elems.push(Elem::Class { negated, ranges });
                }
                c => {
                    elems.push(Elem::Lit(c));
                    i += 1;
                }
            }
        }
        Some(Self { elems })
    }

    /// Whether the component pattern is exactly `**`.
    pub(crate) fn is_double_star(pattern: &str) -> bool {
        pattern == "**"
    }

    /// Whether `name` (one path component) matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        let p = &self.elems;
        // can[i][j]: p[i..] matches s[j..]; filled from the end (no backtracking blow-up).
        let mut can = vec![vec![false; s.len() + 1]; p.len() + 1];
        can[p.len()][s.len()] = true;
        for i in (0..p.len()).rev() {
            for j in (0..=s.len()).rev() {
                can[i][j] = match &p[i] {
                    Elem::Star => can[i + 1][j] || (j < s.len() && can[i][j + 1]),
                    Elem::Any => j < s.len() && can[i + 1][j + 1],
                    Elem::Lit(c) => j < s.len() && s[j] == *c && can[i + 1][j + 1],
                    Elem::Class { negated, ranges } => j < s.len() && ranges.iter().any(|(lo, hi)| *lo <= s[j] && s[j] <= *hi) != *negated && can[i + 1][j + 1],
                };
            }
        }
        can[0][0]
    }
}

/// One character of a class (`\`-escapes allowed), as Go's `getEsc`: the next index.
fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    let mut i = i;
    let c = *chars.get(i)?;
    if c == '-' || c == ']' {
        return None;
    }
    let c = if c == '\\' {
        i += 1;
        *chars.get(i)?
    } else {
        c
    };
    // Go refuses a class that ends right after a character.
    if i + 1 >= chars.len() {
        return None;
    }
    Some((c, i + 1))
}

/// The components of `path` cleaned as Docker cleans context paths: no leading `/` or
/// `./`, no empty or `.` components, `..` resolved and clamped at the root.
pub fn clean_components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out
}

/// `path` cleaned (see [`clean_components`]), joined with `/`; `.` for the root.
pub fn clean(path: &str) -> String {
    let parts = clean_components(path);
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Whether a COPY/ADD source has wildcard characters (`*`, `?`, `[`, or an escape), so
/// the builder must match it against the context instead of taking it as a path.
pub fn has_wildcards(source: &str) -> bool {
    source.contains(['*', '?', '[', '\\'])
}

/// A compiled COPY/ADD source pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    components: Vec<Component>,
}

impl Glob {
    /// Compiles a source as written after the instruction (already expanded).
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let components =
            clean_components(pattern).into_iter().map(|c| Component::compile(c).ok_or_else(|| GlobError(pattern.to_string()))).collect::<Result<_, _>>()?;
        Ok(Self { components })
    }

    /// Whether `path` (relative to the context) matches the pattern itself, component by
    /// component, as `filepath.Match` on the whole path.
    pub fn matches(&self, path: &str) -> bool {
        let parts = clean_components(path);
        parts.len() == self.components.len() && self.components.iter().zip(&parts).all(|(c, p)| c.matches(p))
    }

    /// Whether `path` is selected: it matches, or it is under a directory that matches
    /// (the root pattern `.` selects everything).
    pub fn selects(&self, path: &str) -> bool {
        let parts = clean_components(path);
        parts.len() >= self.components.len() && self.components.iter().zip(&parts).all(|(c, p)| c.matches(p))
    }
}

/// The context paths a COPY/ADD source selects, in the order given: the paths it
/// matches and everything under a matched directory. `context_paths` lists files and
/// directories relative to the context root.
pub fn select<'a, S: AsRef<str>>(pattern: &str, context_paths: &'a [S]) -> Result<Vec<&'a str>, GlobError> {
    let glob = Glob::new(pattern)?;
    Ok(context_paths.iter().map(AsRef::as_ref).filter(|p| !clean_components(p).is_empty() && glob.selects(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Component::compile(pattern).expect("valid pattern").matches(name)
    }

    #[test]
    fn star_and_question_match_within_a_component() {
        assert!(m("*.txt", "a.txt"));
        assert!(m("*", ""));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn classes_ranges_negation_and_escapes() {
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[a-c]x", "dx"));
        assert!(m("[^a]", "b"));
        assert!(!m("[^a]", "a"));
        assert!(m("[\\]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["[", "[]", "[a", "a\\", "[a-]", "[]a]"] {
            assert!(Component::compile(bad).is_none(), "{bad} should be refused");
        }
        assert_eq!(Glob::new("src/[").expect_err("fails").to_string(), "syntax error in pattern: src/[");
    }

    #[test]
    fn clean_strips_root_dot_and_clamps_dotdot() {
        assert_eq!(clean("/a//b/./c/"), "a/b/c");
        assert_eq!(clean("./a"), "a");
        assert_eq!(clean("../../a/../b"), "b");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), ".");
    }

    #[test]
    fn glob_matches_whole_paths_component_wise() {
        let g = Glob::new("src/*.rs").expect("succeeds");
        assert!(g.matches("src/lib.rs"));
        assert!(g.matches("./src/lib.rs"));
        assert!(!g.matches("src/a/lib.rs"));
        assert!(!g.matches("lib.rs"));
    }

    #[test]
    fn select_includes_the_contents_of_matched_directories() {
        let ctx = ["a.txt", "b.md", "dir", "dir/x.txt", "dir/sub/y", "other/z.txt"];
        assert_eq!(select("*.txt", &ctx).expect("succeeds"), vec!["a.txt"]);
        assert_eq!(select("di?", &ctx).expect("succeeds"), vec!["dir", "dir/x.txt", "dir/sub/y"]);
        assert_eq!(select("*/*.txt", &ctx).expect("succeeds"), vec!["dir/x.txt", "other/z.txt"]);
        assert_eq!(select(".", &ctx).expect("succeeds").len(), ctx.len());
        assert_eq!(select("/b.md", &ctx).expect("succeeds"), vec!["b.md"]);
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcards("*.go"));
        assert!(has_wildcards("file?"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("src/main.go"));
    }
}
