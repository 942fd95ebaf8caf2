//! Variable substitution as Docker's builder does it (BuildKit's shell lexer), for the
//! instructions that expand words (see [`crate::InstructionKind::expands_variables`]).
//!
//! Supported: `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`,
//! `${name+word}`, `${name:?message}`, `${name?message}`, nesting (`${a:-${b}}`), and
//! the pattern forms `${name#pat}`, `${name##pat}`, `${name%pat}`, `${name%%pat}`,
//! `${name/pat/repl}`, `${name//pat/repl}` (`*` and `?` wildcards). Outside quotes the
//! escape character makes the next character literal and is removed; inside double
//! quotes it only escapes `"`, `$` and itself; single quotes take everything literally.
//! Quotes are removed from the result. An unset variable expands to nothing.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::error::ExpandError;

/// Where variable values come from (build args and the stage's environment).
pub trait Lookup {
    /// The value of `name`, if it is set (case-sensitive, as on Linux).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Pairs; a later pair wins over an earlier one with the same name.
impl<K: AsRef<str>, V: AsRef<str>> Lookup for [(K, V)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Lookup for Vec<(K, V)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// Expands one word: variables substituted, quotes and escapes removed, whitespace kept.
pub fn expand<L: Lookup + ?Sized>(word: &str, env: &L, escape: char) -> Result<String, ExpandError> {
    Lexer::new(word, env, escape, Mode::Word).run().map(|(word, _)| word)
}

/// Expands a word and splits the result into words at unquoted whitespace, including
/// whitespace that came from a variable (`EXPOSE $PORTS` with `PORTS="80 443"` gives
/// two ports). Empty words are dropped.
pub fn expand_words<L: Lookup + ?Sized>(word: &str, env: &L, escape: char) -> Result<Vec<String>, ExpandError> {
    Lexer::new(word, env, escape, Mode::Word).run().map(|(_, words)| words)
}

/// Expands the body of an unquoted heredoc (`COPY <<EOF`): variables are substituted,
/// quotes are ordinary characters, and a backslash only escapes `$`, `` ` `` and
/// itself, as in a POSIX shell heredoc.
pub fn expand_heredoc<L: Lookup + ?Sized>(content: &str, env: &L) -> Result<String, ExpandError> {
    Lexer::new(content, env, '\\', Mode::Heredoc).run().map(|(text, _)| text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Word,
    Heredoc,
}

/// Words being split while a word is expanded.
#[derive(Debug, Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a, L: ?Sized> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a L,
    mode: Mode,
    raw_escapes: bool,
}

impl<'a, L: Lookup + ?Sized> Lexer<'a, L> {
    fn new(text: &str, env: &'a L, escape: char, mode: Mode) -> Self {
        Self { chars: text.chars().collect(), pos: 0, escape, env, mode, raw_escapes: false }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn run(mut self) -> Result<(String, Vec<String>), ExpandError> {
        self.until(None, false, ExpandError::MissingBrace)
    }

    /// Processes up to `stop` (consumed) or the end; `on_eof` when `stop` never comes.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool, on_eof: ExpandError) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.until_inner(stop, on_eof);
        self.raw_escapes = saved;
        out
    }

    fn until_inner(&mut self, stop: Option<char>, on_eof: ExpandError) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = self.mode == Mode::Word;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' if quotes => {
                    let text = self.single_quote()?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                '"' if quotes => {
                    let text = self.double_quote()?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape && self.mode == Mode::Heredoc {
                        match self.peek() {
                            Some(n @ ('$' | '`' | '\\')) => {
                                self.pos += 1;
                                result.push(n);
                            }
                            _ => result.push(c),
                        }
                        continue;
                    }
                    if c == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // A trailing escape character is dropped.
                        let Some(n) = self.next() else { break };
                        words.add_raw_char(n);
                        result.push(n);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        if stop.is_some() {
            return Err(on_eof);
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedSingleQuote),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            Some(_) => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    fn value(&self, name: &str) -> Option<String> {
        self.env.lookup(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.value(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let c = self.next().ok_or(ExpandError::MissingBrace)?;
        match c {
            '}' => Ok(self.value(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (modifier, null_is_unset) = if c == ':' { (self.next().ok_or(ExpandError::MissingBrace)?, true) } else { (c, false) };
                if null_is_unset && !matches!(modifier, '+' | '-' | '?') {
                    return Err(ExpandError::UnsupportedModifier(format!(":{modifier}")));
                }
                let raw = matches!(modifier, '#' | '%');
                let (word, _) = self.until(Some('}'), raw, ExpandError::MissingBrace)?;
                let value = self.value(&name);
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match modifier {
                    '-' => Ok(if unset { word } else { value.unwrap_or_default() }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if unset {
                            let message = if !word.is_empty() {
                                word
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            return Err(ExpandError::Required { name, message });
                        }
                        Ok(value.unwrap_or_default())
                    }
                    _ => {
                        let (greedy, pattern) = match word.strip_prefix(modifier) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let pattern = ShellPattern::new(pattern);
                        let value: Vec<char> = value.unwrap_or_default().chars().collect();
                        Ok(if modifier == '#' { pattern.trim_prefix(&value, greedy) } else { pattern.trim_suffix(&value, greedy) })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pattern, _) = self.until(Some('/'), true, ExpandError::MissingSlash)?;
                let (replacement, _) = self.until(Some('}'), true, ExpandError::MissingBrace)?;
                let value: Vec<char> = self.value(&name).unwrap_or_default().chars().collect();
                Ok(ShellPattern::new(&pattern).replace(&value, &replacement, all))
            }
            other => Err(ExpandError::UnsupportedModifier(other.to_string())),
        }
    }

    /// A variable name: letters, digits and `_`; or all digits (positional); or one
    /// special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// A shell wildcard pattern (`*`, `?`, `\x`) for `${a#p}`, `${a%p}` and `${a/p/r}`.
struct ShellPattern {
    elems: Vec<Option<char>>,
    stars: Vec<bool>,
}

impl ShellPattern {
    fn new(pattern: &str) -> Self {
        let mut elems = Vec::new();
        let mut stars = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    elems.push(None);
                    stars.push(true);
                }
                '?' => {
                    elems.push(None);
                    stars.push(false);
                }
                '\\' => {
                    if let Some(n) = chars.next() {
                        elems.push(Some(n));
                        stars.push(false);
                    }
                }
                c => {
                    elems.push(Some(c));
                    stars.push(false);
                }
            }
        }
        Self { elems, stars }
    }

    fn matches(&self, s: &[char]) -> bool {
        let n = self.elems.len();
        let mut can = vec![vec![false; s.len() + 1]; n + 1];
        can[n][s.len()] = true;
        for i in (0..n).rev() {
            for j in (0..=s.len()).rev() {
                can[i][j] = if self.stars[i] {
                    can[i + 1][j] || (j < s.len() && can[i][j + 1])
                } else {
                    j < s.len() && self.elems[i].is_none_or(|c| c == s[j]) && can[i + 1][j + 1]
                };
            }
        }
        can[0][0]
    }

    fn trim_prefix(&self, v: &[char], greedy: bool) -> String {
        let mut lens: Vec<usize> = (0..=v.len()).collect();
        if greedy {
            lens.reverse();
        }
        match lens.into_iter().find(|&k| self.matches(&v[..k])) {
            Some(k) => v[k..].iter().collect(),
            None => v.iter().collect(),
        }
    }

    fn trim_suffix(&self, v: &[char], greedy: bool) -> String {
        let mut starts: Vec<usize> = (0..=v.len()).collect();
        if !greedy {
            starts.reverse();
        }
        match starts.into_iter().find(|&k| self.matches(&v[k..])) {
            Some(k) => v[..k].iter().collect(),
            None => v.iter().collect(),
        }
    }

    /// The leftmost-longest match at or after `from`.
    fn find(&self, v: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=v.len()).find_map(|start| (start..=v.len()).rev().find(|&end| self.matches(&v[start..end])).map(|end| (start, end)))
    }

    fn replace(&self, v: &[char], replacement: &str, all: bool) -> String {
        let mut out = String::new();
        let mut pos = 0;
        while let Some((start, end)) = self.find(v, pos) {
            out.extend(&v[pos..start]);
            out.push_str(replacement);
            pos = end;
            if start == end {
                if let Some(c) = v.get(pos) {
                    out.push(*c);
                }
                pos += 1;
            }
            if !all || pos > v.len() {
                break;
            }
        }
        if pos <= v.len() {
            out.extend(&v[pos..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(&'static str, &'static str)> {
        vec![("a", "A"), ("b", "B"), ("empty", ""), ("path", "/usr/local/bin/tool.tar.gz"), ("ports", "80 443")]
    }

    fn x(word: &str) -> String {
        expand(word, &env(), '\\').expect("expands")
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(x("$a"), "A");
        assert_eq!(x("${a}"), "A");
        assert_eq!(x("x${a}y"), "xAy");
        assert_eq!(x("$a$b"), "AB");
        assert_eq!(x("$a-$b"), "A-B");
        assert_eq!(x("$unset"), "");
        assert_eq!(x("${unset}x"), "x");
    }

    #[test]
    fn lone_dollar_stays_literal() {
        assert_eq!(x("$"), "$");
        assert_eq!(x("a$ b"), "a$ b");
        assert_eq!(x("100$%"), "100$%");
    }

    #[test]
    fn default_and_alternative_modifiers() {
        assert_eq!(x("${unset:-d}"), "d");
        assert_eq!(x("${empty:-d}"), "d");
        assert_eq!(x("${empty-d}"), "");
        assert_eq!(x("${unset-d}"), "d");
        assert_eq!(x("${a:-d}"), "A");
        assert_eq!(x("${a:+alt}"), "alt");
        assert_eq!(x("${empty:+alt}"), "");
        assert_eq!(x("${empty+alt}"), "alt");
        assert_eq!(x("${unset+alt}"), "");
    }

    #[test]
    fn nested_substitution() {
        assert_eq!(x("${unset:-${a}}"), "A");
        assert_eq!(x("${unset:-${also_unset:-deep}}"), "deep");
        assert_eq!(x("${a:+[${b}]}"), "[B]");
    }

    #[test]
    fn required_variables_fail_with_docker_messages() {
        let e = expand("${unset:?}", &env(), '\\').expect_err("fails");
        assert_eq!(e.to_string(), "unset: is not allowed to be unset");
        let e = expand("${empty:?}", &env(), '\\').expect_err("fails");
        assert_eq!(e.to_string(), "empty: is not allowed to be empty");
        let e = expand("${unset?must be set}", &env(), '\\').expect_err("fails");
        assert_eq!(e.to_string(), "unset: must be set");
        assert_eq!(x("${empty?x}"), "");
        assert_eq!(x("${a:?x}"), "A");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$a'"), "$a");
        assert_eq!(x("\"$a\""), "A");
        assert_eq!(x("\\$a"), "$a");
        assert_eq!(x("\"a \\\"q\\\" \\n\""), "a \"q\" \\n");
        assert_eq!(x("it'\"s'"), "it\"s");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(x("end\\"), "end");
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand("`$a", &env(), '`').expect("succeeds"), "$a");
        assert_eq!(expand("c:\\dir", &env(), '`').expect("succeeds"), "c:\\dir");
    }

    #[test]
    fn syntax_errors() {
        let err = |w: &str| expand(w, &env(), '\\').expect_err("fails");
        assert_eq!(err("${a"), ExpandError::MissingBrace);
        assert_eq!(err("${a:-x"), ExpandError::MissingBrace);
        assert_eq!(err("${}"), ExpandError::BadSubstitution);
        assert_eq!(err("${:a}"), ExpandError::BadSubstitution);
        assert_eq!(err("${a:=b}"), ExpandError::UnsupportedModifier(":=".into()));
        assert_eq!(err("${a!}"), ExpandError::UnsupportedModifier("!".into()));
        assert_eq!(err("'open"), ExpandError::UnterminatedSingleQuote);
        assert_eq!(err("\"open"), ExpandError::UnterminatedDoubleQuote);
        assert_eq!(err("${a/x"), ExpandError::MissingSlash);
    }

    #[test]
    fn pattern_trimming_and_replacement() {
        assert_eq!(x("${path#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(x("${path##*/}"), "tool.tar.gz");
        assert_eq!(x("${path%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(x("${path%%.*}"), "/usr/local/bin/tool");
        assert_eq!(x("${path/local/opt}"), "/usr/opt/bin/tool.tar.gz");
        assert_eq!(x("${path//\\//_}"), "_usr_local_bin_tool.tar.gz");
        assert_eq!(x("${a#zzz}"), "A");
    }

    #[test]
    fn word_splitting_splits_unquoted_expansions() {
        let words = |w: &str| expand_words(w, &env(), '\\').expect("succeeds");
        assert_eq!(words("$ports"), vec!["80", "443"]);
        assert_eq!(words("\"$ports\""), vec!["80 443"]);
        assert_eq!(words("a 'b c'  d"), vec!["a", "b c", "d"]);
        assert_eq!(words("x\\ y"), vec!["x y"]);
        assert!(words("$unset").is_empty());
        assert_eq!(expand("$ports", &env(), '\\').expect("succeeds"), "80 443");
    }

    #[test]
    fn heredoc_expansion_keeps_quotes_and_other_backslashes() {
        let out = expand_heredoc("say \"$a\" '${b}' \\$a \\n\n", &env()).expect("succeeds");
        assert_eq!(out, "say \"A\" 'B' $a \\n\n");
    }

    #[test]
    fn lookups_from_maps() {
        let mut map = HashMap::new();
        map.insert("k".to_string(), "v".to_string());
        assert_eq!(expand("$k", &map, '\\').expect("succeeds"), "v");
        let tree: BTreeMap<String, String> = [("k".to_string(), "t".to_string())].into();
        assert_eq!(expand("${k}", &tree, '\\').expect("succeeds"), "t");
        let pairs = [("k", "first"), ("k", "second")];
        assert_eq!(expand("$k", &pairs[..], '\\').expect("succeeds"), "second");
    }
}
