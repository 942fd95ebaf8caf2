//! The image history's `created_by` strings, in the formats dockerd's classic builder
//! writes (moby `builder/dockerfile`): the builder commits each step with a container
//! config whose `Cmd` is `shell + ["#(nop) ", comment]` (most metadata instructions),
//! `shell + ["#(nop) " + comment]` (WORKDIR, COPY, ADD), or the RUN command itself,
//! and the history records that `Cmd` joined with spaces. Hence the two spaces after
//! `#(nop)` for ENV but one for WORKDIR.
//!
//! Values inside the comments use Go's `fmt` verbs as dockerd does: `%q` on a string
//! slice (`CMD ["/bin/sh" "-c" "echo hi"]`, space-separated), `%v` on a string slice
//! (`VOLUME [/data /logs]`), and `%q` on the health config struct for HEALTHCHECK.
//!
//! The HEALTHCHECK struct is printed as dockerd up to API 1.43 prints it (checked against
//! dockerd 20.10 by the compatibility suite's Dockerfile corpus): three durations
//! (interval, timeout, start period) before the retries; API 1.44 added a fourth, the
//! start interval, which Berth (serving 1.43) leaves out. Go's `%q` keeps every
//! printable Unicode character; here every non-control character counts as printable.
//! EXPOSE lists its ports sorted as strings (dockerd's parser sorts them), and a
//! COPY/ADD `--chown` runs into the source hash with no space, as dockerd writes it.

use std::fmt::Write;

use crate::duration;
use crate::instruction::{Command, Healthcheck, Instruction};

/// `shell #(nop)  comment`: the two-argument form (ENV, LABEL, CMD, USER, ...).
pub fn nop(shell: &[String], comment: &str) -> String {
    join(shell.iter().map(String::as_str).chain(["#(nop) ", comment]))
}

/// `shell #(nop) comment`: the one-argument form (WORKDIR, COPY, ADD).
pub fn nop_single(shell: &[String], comment: &str) -> String {
    join(shell.iter().map(String::as_str).chain([format!("#(nop) {comment}").as_str()]))
}

/// COPY/ADD, which the caller builds once it has hashed the sources:
/// `/bin/sh -c #(nop) COPY [--chown=u:g]file:<hash> in /dest ` (note the trailing
/// space, and no space after the chown: dockerd's format). `source_hash` is dockerd's
/// `file:<sha256>`, `dir:<sha256>` or `multi:<sha256>`, or the bare hash of a URL's
/// download; `dest` the destination as written.
pub fn copy_created_by(shell: &[String], instruction: &str, chown: Option<&str>, source_hash: &str, dest: &str) -> String {
    let chown = chown.map(|c| format!("--chown={c}")).unwrap_or_default();
    nop_single(shell, &format!("{instruction} {chown}{source_hash} in {dest} "))
}

/// RUN: the argv joined with spaces, prefixed with `|N k=v ...` when build args are in
/// use (sorted as strings, as dockerd sorts them). The caller passes only the args that
/// count (dockerd leaves out unreferenced predefined proxy args).
pub fn run_created_by(argv: &[String], build_args: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !build_args.is_empty() {
        let mut pairs: Vec<String> = build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        parts.push(format!("|{}", pairs.len()));
        parts.extend(pairs);
    }
    parts.extend(argv.iter().cloned());
    parts.join(" ")
}

impl Instruction {
    /// The history `created_by` for this (already expanded) instruction under `shell`
    /// (the stage's SHELL, `["/bin/sh", "-c"]` by default); see
    /// [`Instruction::history_created_by_with_args`].
    pub fn history_created_by(&self, shell: &[String]) -> Option<String> {
        self.history_created_by_with_args(shell, &[])
    }

    /// The history `created_by` for this (already expanded) instruction, with the build
    /// args in use for RUN. `None` for FROM (no history entry of its own) and for COPY
    /// and ADD, which need the sources' hash: see [`copy_created_by`]. For WORKDIR pass
    /// the instruction with its path resolved against the previous WORKDIR, as dockerd
    /// records the resolved path.
    pub fn history_created_by_with_args(&self, shell: &[String], build_args: &[(String, String)]) -> Option<String> {
        let comment = match &self.command {
            Command::From(_) | Command::Copy(_) | Command::Add(_) => return None,
            Command::Run(run) => return Some(run_created_by(&run.command.to_argv(shell), build_args)),
            Command::Workdir(path) => return Some(nop_single(shell, &format!("WORKDIR {path}"))),
            Command::Cmd(c) => format!("CMD {}", go_quoted_slice(&c.to_argv(shell))),
            Command::Entrypoint(c) => format!("ENTRYPOINT {}", go_quoted_slice(&c.to_argv(shell))),
            Command::Env(kvs) => pairs("ENV", kvs.iter().map(|kv| (&kv.key, Some(&kv.value)))),
            Command::Label(kvs) => pairs("LABEL", kvs.iter().map(|kv| (&kv.key, Some(&kv.value)))),
            Command::Arg(args) => pairs("ARG", args.iter().map(|a| (&a.name, a.default.as_ref()))),
            Command::Expose(ports) => {
                let mut sorted = ports.clone();
                sorted.sort();
                format!("EXPOSE {}", sorted.join(" "))
            }
            Command::Volume(paths) => format!("VOLUME {}", go_slice(paths)),
            Command::Shell(argv) => format!("SHELL {}", go_slice(argv)),
            Command::User(user) => format!("USER {user}"),
            Command::Stopsignal(signal) => format!("STOPSIGNAL {signal}"),
            Command::Maintainer(name) => format!("MAINTAINER {name}"),
            Command::Onbuild(trigger) => format!("ONBUILD {}", trigger.original),
            Command::Healthcheck(h) => format!("HEALTHCHECK {}", health(h)),
        };
        Some(nop(shell, &comment))
    }
}

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}

fn pairs<'a>(name: &str, kvs: impl Iterator<Item = (&'a String, Option<&'a String>)>) -> String {
    let mut out = name.to_string();
    for (k, v) in kvs {
        out.push(' ');
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// Go's `%q` of a health config pointer: `&{["CMD-SHELL" "x"] "30s" "5s" "0s" '\x03'}`.
fn health(h: &Healthcheck) -> String {
    let (test, durations, retries) = match h {
        Healthcheck::None => (vec!["NONE".to_string()], [None; 3], 0),
        Healthcheck::Cmd(c) => (c.test(), [c.interval, c.timeout, c.start_period], c.retries.unwrap_or(0)),
    };
    let mut out = format!("&{{{}", go_quoted_slice(&test));
    for d in durations {
        let _ = write!(out, " {}", go_quote(&duration::format(d.unwrap_or_default())));
    }
    let _ = write!(out, " {}}}", go_quote_rune(retries));
    out
}

/// Go's `%v` of a string slice: `[a b]`.
pub(crate) fn go_slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(crate) fn go_quoted_slice(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" "))
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` of an integer: a quoted rune literal (`'\x03'`, `'A'`).
fn go_quote_rune(n: u32) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, char::from_u32(n).unwrap_or('\u{fffd}'), '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{default_shell, parse};

    fn created_by(body: &str) -> Option<String> {
        let df = parse(&format!("FROM base\n{body}")).expect("parses");
        let i = df.stages[0].instructions[0].expand(&Vec::<(String, String)>::new(), '\\').expect("expands");
        i.history_created_by(&default_shell())
    }

    #[test]
    fn two_argument_nop_has_two_spaces() {
        assert_eq!(created_by("ENV a=b c=\"d e\"").expect("succeeds"), "/bin/sh -c #(nop)  ENV a=b c=d e");
        assert_eq!(created_by("LABEL version=1").expect("succeeds"), "/bin/sh -c #(nop)  LABEL version=1");
        assert_eq!(created_by("ARG a=1 b").expect("succeeds"), "/bin/sh -c #(nop)  ARG a=1 b");
        assert_eq!(created_by("USER app").expect("succeeds"), "/bin/sh -c #(nop)  USER app");
        assert_eq!(created_by("EXPOSE 80/tcp 443").expect("succeeds"), "/bin/sh -c #(nop)  EXPOSE 443 80/tcp");
        assert_eq!(created_by("STOPSIGNAL SIGTERM").expect("succeeds"), "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM");
        assert_eq!(created_by("MAINTAINER me").expect("succeeds"), "/bin/sh -c #(nop)  MAINTAINER me");
    }

    #[test]
    fn workdir_uses_the_single_argument_nop() {
        assert_eq!(created_by("WORKDIR /x").expect("succeeds"), "/bin/sh -c #(nop) WORKDIR /x");
    }

    #[test]
    fn cmd_and_entrypoint_use_go_quoted_slices() {
        assert_eq!(created_by(r#"CMD ["sh"]"#).expect("succeeds"), r#"/bin/sh -c #(nop)  CMD ["sh"]"#);
        assert_eq!(created_by("CMD echo \"hi\"").expect("succeeds"), r#"/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \"hi\""]"#);
        assert_eq!(
            created_by(r#"ENTRYPOINT ["nginx", "-g", "daemon off;"]"#).expect("succeeds"),
            r#"/bin/sh -c #(nop)  ENTRYPOINT ["nginx" "-g" "daemon off;"]"#
        );
        assert_eq!(created_by("CMD").expect("succeeds"), "/bin/sh -c #(nop)  CMD []");
    }

    #[test]
    fn volume_and_shell_use_go_plain_slices() {
        assert_eq!(created_by("VOLUME /data /logs").expect("succeeds"), "/bin/sh -c #(nop)  VOLUME [/data /logs]");
        assert_eq!(created_by(r#"SHELL ["/bin/bash", "-c"]"#).expect("succeeds"), "/bin/sh -c #(nop)  SHELL [/bin/bash -c]");
    }

    #[test]
    fn run_with_and_without_build_args() {
        let df = parse("FROM a\nRUN echo hi\nRUN [\"echo\", \"x\"]").expect("succeeds");
        let sh = default_shell();
        let run = &df.stages[0].instructions[0];
        assert_eq!(run.history_created_by(&sh).expect("succeeds"), "/bin/sh -c echo hi");
        let args = vec![("c".to_string(), "d".to_string()), ("a".to_string(), "b".to_string())];
        assert_eq!(run.history_created_by_with_args(&sh, &args).expect("succeeds"), "|2 a=b c=d /bin/sh -c echo hi");
        assert_eq!(df.stages[0].instructions[1].history_created_by(&sh).expect("succeeds"), "echo x");
    }

    #[test]
    fn healthcheck_prints_the_go_struct() {
        assert_eq!(
            created_by("HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/").expect("succeeds"),
            r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/"] "30s" "0s" "0s" '\x03'}"#
        );
        assert_eq!(created_by("HEALTHCHECK NONE").expect("succeeds"), r#"/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\x00'}"#);
    }

    #[test]
    fn onbuild_records_the_trigger_text() {
        assert_eq!(created_by("ONBUILD RUN make $X").expect("succeeds"), "/bin/sh -c #(nop)  ONBUILD RUN make $X");
    }

    #[test]
    fn copy_add_and_from_are_built_by_the_caller() {
        assert_eq!(created_by("COPY a /b"), None);
        let sh = default_shell();
        assert_eq!(copy_created_by(&sh, "COPY", None, "file:abc", "/dst"), "/bin/sh -c #(nop) COPY file:abc in /dst ");
        assert_eq!(copy_created_by(&sh, "ADD", Some("1:1"), "dir:def", "/"), "/bin/sh -c #(nop) ADD --chown=1:1dir:def in / ");
    }

    #[test]
    fn go_quoting_escapes() {
        assert_eq!(go_quote("a\tb\n\"c\"\\\u{1}é"), r#""a\tb\n\"c\"\\\x01é""#);
        assert_eq!(go_quote_rune(65), "'A'");
        assert_eq!(go_quote_rune(39), r"'\''");
    }
}
