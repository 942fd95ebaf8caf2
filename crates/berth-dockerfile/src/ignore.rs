//! `.dockerignore`: which context paths the client leaves out of the build context.
//!
//! The file format and matching follow Docker's: one pattern per line; a line whose
//! first character is `#` is a comment; blank lines are skipped; surrounding whitespace
//! is trimmed; a leading `!` makes an exception (re-includes); patterns are cleaned
//! (`./a` is `a`, `a/` is `a`) and a leading `/` is dropped. Each path component is
//! matched with Go's `filepath.Match` semantics (see [`crate::glob`]) and a `**`
//! component matches any number of directories (at the end of a pattern, at least one,
//! as Docker's regular expression does). A pattern that matches a directory also
//! matches everything under it. The last pattern that matches a path decides.

use crate::error::IgnoreError;
use crate::glob::{clean_components, Component};

#[derive(Debug, Clone)]
enum Segment {
    DoubleStar,
    Name(Component),
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    /// `None` when the pattern climbs above the context (`../x`): it never matches.
    segments: Option<Vec<Segment>>,
}

/// A parsed `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let mut line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let exception = line.starts_with('!');
            if exception {
                line = line[1..].trim();
                if line.is_empty() {
                    continue;
                }
            }
            let (text, segments) = compile(line).ok_or_else(|| IgnoreError { line: index + 1, pattern: raw.to_string() })?;
            patterns.push(Pattern { text, exception, segments });
        }
        Ok(Self { patterns })
    }

    /// The cleaned patterns in file order, each with whether it is an exception (`!`).
    pub fn patterns(&self) -> impl Iterator<Item = (&str, bool)> {
        self.patterns.iter().map(|p| (p.text.as_str(), p.exception))
    }

    /// Whether the file has any `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `rel_path` (relative to the context root; cleaned first) is left out of
    /// the context. The root itself is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let parts = clean_components(rel_path);
        if parts.is_empty() {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the answer is tried, as Docker does.
            if pattern.exception != excluded {
                continue;
            }
            let Some(segments) = &pattern.segments else {
                continue;
            };
            let hit = (1..=parts.len()).any(|n| matches(segments, &parts[..n]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether an excluded directory may still hold re-included paths, so a context
    /// walker must descend into it (and test each path with [`Ignore::is_excluded`])
    /// instead of skipping it. Conservative: `true` when some exception could match a
    /// path under `dir`.
    ///
    /// Docker's legacy walker only descends when an exception pattern literally starts
    /// with `dir/`, so with `*` and `!**/keep` it drops `sub/keep`; BuildKit walks such
    /// directories. This answers as BuildKit does.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let parts = clean_components(dir);
        self.patterns.iter().filter(|p| p.exception).filter_map(|p| p.segments.as_deref()).any(|segments| could_match_below(segments, &parts))
    }
}

/// Cleans a pattern as Docker does and compiles it; `None` when it is malformed.
fn compile(pattern: &str) -> Option<(String, Option<Vec<Segment>>)> {
    let mut parts: Vec<&str> = Vec::new();
    let mut above_root = false;
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    above_root = true;
                }
            }
            p => parts.push(p),
        }
    }
    let text = if above_root { format!("../{}", parts.join("/")) } else { parts.join("/") };
    let segments = parts
        .iter()
        .map(|p| if Component::is_double_star(p) { Some(Segment::DoubleStar) } else { Component::compile(p).map(Segment::Name) })
        .collect::<Option<Vec<_>>>()?;
    let mut segments = segments;
    // `**/**` means what `**` means; one is cheaper to match.
    segments.dedup_by(|a, b| matches!((a, b), (Segment::DoubleStar, Segment::DoubleStar)));
    Some((text, (!above_root).then_some(segments)))
}

/// Whether the pattern segments match the path components exactly.
fn matches(segments: &[Segment], parts: &[&str]) -> bool {
    match segments.split_first() {
        None => parts.is_empty(),
        Some((Segment::DoubleStar, [])) => !parts.is_empty(),
        Some((Segment::DoubleStar, rest)) => (0..=parts.len()).any(|n| matches(rest, &parts[n..])),
        Some((Segment::Name(c), rest)) => match parts.split_first() {
            Some((first, tail)) => c.matches(first) && matches(rest, tail),
            None => false,
        },
    }
}

/// Whether the pattern could match `dir` itself, an ancestor, or a path below `dir`.
fn could_match_below(segments: &[Segment], dir: &[&str]) -> bool {
    match (segments.split_first(), dir.split_first()) {
        (None, _) | (_, None) => true,
        (Some((Segment::DoubleStar, _)), _) => true,
        (Some((Segment::Name(c), rest)), Some((first, tail))) => c.matches(first) && could_match_below(rest, tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).expect("valid .dockerignore")
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let i = ignore("# comment\n\n   \n  node_modules  \r\n #not a comment\n");
        let pats: Vec<_> = i.patterns().collect();
        assert_eq!(pats, vec![("node_modules", false), ("#not a comment", false)]);
        assert!(i.is_excluded("node_modules"));
        assert!(i.is_excluded("#not a comment"));
    }

    #[test]
    fn leading_slash_and_dot_slash_are_stripped_and_patterns_cleaned() {
        let i = ignore("/build/\n./tmp//x\n");
        assert_eq!(i.patterns().map(|p| p.0).collect::<Vec<_>>(), vec!["build", "tmp/x"]);
        assert!(i.is_excluded("build"));
        assert!(i.is_excluded("./build/out.o"));
        assert!(i.is_excluded("tmp/x"));
        assert!(!i.is_excluded("tmp"));
    }

    #[test]
    fn a_directory_match_excludes_its_contents() {
        let i = ignore("docs");
        assert!(i.is_excluded("docs/a/b.md"));
        assert!(!i.is_excluded("src/docs2"));
        assert!(!i.is_excluded("src/docs"), "patterns are anchored at the root");
    }

    #[test]
    fn star_does_not_cross_directories() {
        let i = ignore("*.md\n*/temp*");
        assert!(i.is_excluded("README.md"));
        assert!(!i.is_excluded("docs/README.md"));
        assert!(i.is_excluded("somedir/temporary.txt"));
        assert!(!i.is_excluded("somedir/sub/temporary.txt"));
    }

    #[test]
    fn double_star_matches_any_number_of_directories() {
        let i = ignore("**/*.go\n");
        assert!(i.is_excluded("main.go"));
        assert!(i.is_excluded("a/b/c/main.go"));
        assert!(!i.is_excluded("a/b/main.rs"));
        let mid = ignore("a/**/z");
        assert!(mid.is_excluded("a/z"));
        assert!(mid.is_excluded("a/b/c/z"));
        assert!(!mid.is_excluded("b/z"));
    }

    #[test]
    fn trailing_double_star_needs_something_below() {
        let i = ignore("cache/**");
        assert!(i.is_excluded("cache/x"));
        assert!(i.is_excluded("cache/x/y"));
        assert!(!i.is_excluded("cache"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        let i = ignore("file?.txt\n[a-c].log\n[^x]y\nlit\\*");
        assert!(i.is_excluded("file1.txt"));
        assert!(!i.is_excluded("file10.txt"));
        assert!(i.is_excluded("b.log"));
        assert!(!i.is_excluded("d.log"));
        assert!(i.is_excluded("ay"));
        assert!(!i.is_excluded("xy"));
        assert!(i.is_excluded("lit*"));
        assert!(!i.is_excluded("lits"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let i = ignore("*.md\n!README.md\n");
        assert!(i.is_excluded("CHANGES.md"));
        assert!(!i.is_excluded("README.md"));
        let again = ignore("*.md\n!README*.md\nREADME-secret.md");
        assert!(!again.is_excluded("README.md"));
        assert!(again.is_excluded("README-secret.md"));
        let order = ignore("!README.md\n*.md");
        assert!(order.is_excluded("README.md"), "an exception before the exclusion loses");
    }

    #[test]
    fn exceptions_under_an_excluded_directory() {
        let i = ignore("logs\n!logs/keep.txt");
        assert!(i.is_excluded("logs/a.txt"));
        assert!(!i.is_excluded("logs/keep.txt"));
        assert!(i.is_excluded("logs"));
        assert!(i.may_reinclude_under("logs"));
        assert!(!i.may_reinclude_under("other"));
    }

    #[test]
    fn may_reinclude_under_follows_wildcards_and_double_star() {
        let i = ignore("*\n!**/keep\n!src/*/main.rs");
        assert!(i.may_reinclude_under("anything/deep"));
        assert!(!i.is_excluded("x/y/keep"));
        let narrow = ignore("*\n!src/*/main.rs");
        assert!(narrow.may_reinclude_under("src"));
        assert!(narrow.may_reinclude_under("src/app"));
        assert!(!narrow.may_reinclude_under("docs"));
        assert!(!ignore("*").may_reinclude_under("src"));
        assert!(!ignore("*").has_exceptions());
    }

    #[test]
    fn root_is_never_excluded_and_dotdot_patterns_never_match() {
        let i = ignore("**\n../outside");
        assert!(!i.is_excluded("."));
        assert!(!i.is_excluded(""));
        assert!(i.is_excluded("anything"));
        let up = ignore("../a");
        assert_eq!(up.patterns().next(), Some(("../a", false)));
        assert!(!up.is_excluded("a"));
    }

    #[test]
    fn malformed_pattern_reports_its_line() {
        let err = Ignore::parse("ok\n\n[abc\n").expect_err("fails");
        assert_eq!(err.line, 3);
        assert_eq!(err.to_string(), "line 3: syntax error in pattern: [abc");
    }

    #[test]
    fn repeated_double_stars_collapse() {
        let i = ignore("**/**/**/target");
        assert!(i.is_excluded("target"));
        assert!(i.is_excluded("a/b/c/d/e/f/g/h/target/debug"));
        assert!(!i.is_excluded("a/b/targets"));
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let i = ignore("\u{feff}secret.txt");
        assert!(i.is_excluded("secret.txt"));
    }
}
