//! One logical line to one typed [`Instruction`]: the instruction's name, its flags,
//! its arguments by Docker's rules for each instruction (JSON or shell form, `k=v`
//! pairs, whitespace-separated words), and its heredoc bodies.

use crate::duration;
use crate::error::{ParseError, ParseErrorKind};
use crate::flags::{self, Flags, Kind, Spec};
use crate::heredoc::{self, Heredoc};
use crate::instruction::{
    Add, ArgDef, Command, CommandLine, Copy, Files, From, Healthcheck, HealthcheckCmd, Instruction, InstructionKind, KeyValue, NetworkMode, Run, Security,
};
use crate::lexer::{split_words, LogicalLine, Source};
use crate::mount;

const RUN_FLAGS: Spec = &[("mount", Kind::List), ("network", Kind::String), ("security", Kind::String)];
const COPY_FLAGS: Spec =
    &[("from", Kind::String), ("chown", Kind::String), ("chmod", Kind::String), ("link", Kind::Bool), ("exclude", Kind::List), ("parents", Kind::Bool)];
const ADD_FLAGS: Spec = &[
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("exclude", Kind::List),
    ("checksum", Kind::String),
    ("keep-git-dir", Kind::Bool),
];
const FROM_FLAGS: Spec = &[("platform", Kind::String)];
const HEALTHCHECK_FLAGS: Spec =
    &[("interval", Kind::String), ("timeout", Kind::String), ("start-period", Kind::String), ("start-interval", Kind::String), ("retries", Kind::String)];
const NO_FLAGS: Spec = &[];

/// Parses the logical line, reading any heredoc bodies that follow it from `source`.
pub(crate) fn instruction(line: &LogicalLine, source: &mut Source<'_>, escape: char) -> Result<Instruction, ParseError> {
    let at = |kind| ParseError::new(line.start, kind);
    let original = line.text.trim_end().to_string();
    let (name, args) = split_name(&original);
    let kind = InstructionKind::from_name(name).ok_or_else(|| at(ParseErrorKind::UnknownInstruction(name.to_uppercase())))?;

    let mut heredocs = Vec::new();
    if kind.takes_heredocs() {
        for word in split_words(args, escape) {
            if let Some(marker) = heredoc::marker(&word, escape) {
                let name = marker.name.clone();
                let content = source.heredoc(&marker.name, marker.strip_tabs).ok_or_else(|| at(ParseErrorKind::UnterminatedHeredoc(name)))?;
                heredocs.push(marker.with_content(content));
            }
        }
    }
    let command = command(kind, args, heredocs, escape, line.start).map_err(at)?;
    let end_line = source.consumed().max(line.end);
    Ok(Instruction { command, line: line.start, end_line, source: source.text_of(line.start, end_line), original })
}

/// `NAME rest` split at the first run of whitespace.
fn split_name(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

fn command(kind: InstructionKind, args: &str, heredocs: Vec<Heredoc>, escape: char, line: usize) -> Result<Command, ParseErrorKind> {
    let name = kind.name();
    let (flag_words, rest) = flags::extract(args);
    let spec = match kind {
        InstructionKind::Run => RUN_FLAGS,
        InstructionKind::Copy => COPY_FLAGS,
        InstructionKind::Add => ADD_FLAGS,
        InstructionKind::From => FROM_FLAGS,
        InstructionKind::Healthcheck => HEALTHCHECK_FLAGS,
        _ => NO_FLAGS,
    };
    let flags = flags::parse(name, &flag_words, spec)?;
    let require = |ok: bool, rule: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(ParseErrorKind::Arguments { instruction: name, rule })
        }
    };
    Ok(match kind {
        InstructionKind::From => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let stage = match words.as_slice() {
                [_] => None,
                [_, as_, stage] if as_.eq_ignore_ascii_case("as") => Some(stage_name(stage)?),
                _ => return Err(ParseErrorKind::Arguments { instruction: name, rule: "either one or three arguments" }),
            };
            Command::From(From { image: words[0].to_string(), platform: flags.string("platform"), name: stage })
        }
        InstructionKind::Run => {
            require(!rest.is_empty() || !heredocs.is_empty(), "at least one argument")?;
            Command::Run(run(rest, heredocs, &flags)?)
        }
        InstructionKind::Cmd => Command::Cmd(maybe_json(rest)),
        InstructionKind::Entrypoint => Command::Entrypoint(maybe_json(rest)),
        InstructionKind::Shell => match maybe_json(rest) {
            CommandLine::Exec(argv) if !argv.is_empty() => Command::Shell(argv),
            CommandLine::Exec(_) => return Err(ParseErrorKind::Arguments { instruction: name, rule: "at least one argument" }),
            CommandLine::Shell(_) => return Err(ParseErrorKind::NotJson(name)),
        },
        InstructionKind::Copy => Command::Copy(Copy {
            files: files(name, rest, heredocs, escape)?,
            from: flags.string("from"),
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link"),
            exclude: flags.list("exclude"),
            parents: flags.bool("parents"),
        }),
        InstructionKind::Add => Command::Add(Add {
            files: files(name, rest, heredocs, escape)?,
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link"),
            exclude: flags.list("exclude"),
            checksum: flags.string("checksum"),
            keep_git_dir: flags.bool("keep-git-dir"),
        }),
        InstructionKind::Env => Command::Env(name_values(name, rest, escape)?),
        InstructionKind::Label => Command::Label(name_values(name, rest, escape)?),
        InstructionKind::Arg => {
            let words = split_words(rest, escape);
            require(!words.is_empty(), "at least one argument")?;
            let mut args = Vec::new();
            for word in words {
                let (arg_name, default) = match word.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (word, None),
                };
                if arg_name.is_empty() {
                    return Err(ParseErrorKind::BlankName(name));
                }
                args.push(ArgDef { name: arg_name, default });
            }
            Command::Arg(args)
        }
        InstructionKind::Workdir => {
            require(!rest.is_empty(), "exactly one argument")?;
            Command::Workdir(rest.to_string())
        }
        InstructionKind::User => {
            require(!rest.is_empty(), "exactly one argument")?;
            Command::User(rest.to_string())
        }
        InstructionKind::Stopsignal => {
            require(!rest.is_empty(), "exactly one argument")?;
            Command::Stopsignal(rest.to_string())
        }
        InstructionKind::Maintainer => {
            require(!rest.is_empty(), "exactly one argument")?;
            Command::Maintainer(rest.to_string())
        }
        InstructionKind::Expose => {
            let ports: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            require(!ports.is_empty(), "at least one argument")?;
            Command::Expose(ports)
        }
        InstructionKind::Volume => {
            let paths = match maybe_json(rest) {
                CommandLine::Exec(paths) => {
                    if paths.iter().any(|p| p.trim().is_empty()) {
                        return Err(ParseErrorKind::EmptyVolume);
                    }
                    paths
                }
                CommandLine::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
            };
            require(!paths.is_empty(), "at least one argument")?;
            Command::Volume(paths)
        }
        InstructionKind::Healthcheck => Command::Healthcheck(healthcheck(rest, &flags, !flag_words.is_empty())?),
        InstructionKind::Onbuild => {
            require(!rest.is_empty(), "at least one argument")?;
            let (trigger_name, trigger_args) = split_name(rest);
            let trigger_kind = InstructionKind::from_name(trigger_name).ok_or_else(|| ParseErrorKind::UnknownInstruction(trigger_name.to_uppercase()))?;
            match trigger_kind {
                InstructionKind::Onbuild => return Err(ParseErrorKind::OnbuildChain),
                InstructionKind::From | InstructionKind::Maintainer => return Err(ParseErrorKind::OnbuildTrigger(trigger_kind.name())),
                _ => {}
            }
            let trigger = command(trigger_kind, trigger_args, Vec::new(), escape, line)?;
            Command::Onbuild(Box::new(Instruction { command: trigger, line, end_line: line, original: rest.to_string(), source: rest.to_string() }))
        }
    })
}

/// Exec form when the text is a JSON array of strings, shell form otherwise.
fn maybe_json(rest: &str) -> CommandLine {
    let rest = rest.trim_start();
    if rest.starts_with('[') {
        if let Ok(argv) = serde_json::from_str::<Vec<String>>(rest) {
            return CommandLine::Exec(argv);
        }
    }
    CommandLine::Shell(rest.to_string())
}

fn stage_name(name: &str) -> Result<String, ParseErrorKind> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let valid =
        chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(lower)
    } else {
        Err(ParseErrorKind::InvalidStageName(lower))
    }
}

fn run(rest: &str, heredocs: Vec<Heredoc>, flags: &Flags) -> Result<Run, ParseErrorKind> {
    let mounts = flags
        .list("mount")
        .into_iter()
        .map(|spec| mount::parse(&spec).map_err(|reason| ParseErrorKind::InvalidMount { spec, reason }))
        .collect::<Result<_, _>>()?;
    let network = flags
        .string("network")
        .map(|v| match v.as_str() {
            "default" => Ok(NetworkMode::Default),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(invalid("network", &v, "expected default, none or host")),
        })
        .transpose()?;
    let security = flags
        .string("security")
        .map(|v| match v.as_str() {
            "sandbox" => Ok(Security::Sandbox),
            "insecure" => Ok(Security::Insecure),
            _ => Err(invalid("security", &v, "expected sandbox or insecure")),
        })
        .transpose()?;
    Ok(Run { command: maybe_json(rest), heredocs, mounts, network, security })
}

fn invalid(flag: &str, value: &str, reason: &str) -> ParseErrorKind {
    ParseErrorKind::InvalidFlagValue { flag: flag.to_string(), value: value.to_string(), reason: reason.to_string() }
}

/// COPY/ADD arguments: a JSON array or whitespace-separated words; the last is the
/// destination; heredoc markers (shell form only) become heredoc sources.
fn files(name: &'static str, rest: &str, heredocs: Vec<Heredoc>, escape: char) -> Result<Files, ParseErrorKind> {
    let (words, json) = match maybe_json(rest) {
        CommandLine::Exec(words) => (words, true),
        CommandLine::Shell(s) => (s.split_whitespace().map(str::to_string).collect(), false),
    };
    let Some((dest, sources)) = words.split_last().filter(|(_, sources)| !sources.is_empty()) else {
        return Err(ParseErrorKind::Arguments { instruction: name, rule: "at least two arguments" });
    };
    let sources = if json { sources.to_vec() } else { sources.iter().filter(|w| heredoc::marker(w, escape).is_none()).cloned().collect() };
    Ok(Files { sources, heredocs: if json { Vec::new() } else { heredocs }, dest: dest.clone(), json })
}

/// ENV and LABEL: `k=v k2="v 2"`, or the legacy `k v` (one pair, the rest is the value).
fn name_values(name: &'static str, rest: &str, escape: char) -> Result<Vec<KeyValue>, ParseErrorKind> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(ParseErrorKind::Arguments { instruction: name, rule: "at least one argument" });
    };
    if !first.contains('=') {
        let (key, value) = split_name(rest);
        if value.is_empty() {
            return Err(ParseErrorKind::Arguments { instruction: name, rule: "two arguments" });
        }
        return Ok(vec![KeyValue { key: key.to_string(), value: value.to_string() }]);
    }
    words
        .into_iter()
        .map(|word| {
            let Some((key, value)) = word.split_once('=') else {
                return Err(ParseErrorKind::MissingEquals { instruction: name, word });
            };
            if key.is_empty() {
                return Err(ParseErrorKind::BlankName(name));
            }
            Ok(KeyValue { key: key.to_string(), value: value.to_string() })
        })
        .collect()
}

fn healthcheck(rest: &str, flags: &Flags, any_flags: bool) -> Result<Healthcheck, ParseErrorKind> {
    let (kind, args) = split_name(rest);
    if kind.is_empty() {
        return Err(ParseErrorKind::Arguments { instruction: "HEALTHCHECK", rule: "at least one argument" });
    }
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() || any_flags {
                return Err(ParseErrorKind::HealthcheckNoneArguments);
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            let command = maybe_json(args);
            if command.to_argv(&[]).is_empty() {
                return Err(ParseErrorKind::HealthcheckMissingCommand);
            }
            let retries = flags
                .string("retries")
                .map(|v| match v.parse::<i64>() {
                    Ok(n) if n < 0 => Err(invalid("retries", &v, "cannot be negative")),
                    Ok(n) => u32::try_from(n).map_err(|_| invalid("retries", &v, "too large")),
                    Err(_) => Err(invalid("retries", &v, "not an integer")),
                })
                .transpose()?;
            Ok(Healthcheck::Cmd(HealthcheckCmd {
                command,
                interval: interval(flags, "interval")?,
                timeout: interval(flags, "timeout")?,
                start_period: interval(flags, "start-period")?,
                start_interval: interval(flags, "start-interval")?,
                retries,
            }))
        }
        other => Err(ParseErrorKind::HealthcheckType(other.to_string())),
    }
}

/// A HEALTHCHECK duration flag: Go syntax, zero or at least 1ms, as dockerd checks.
fn interval(flags: &Flags, name: &str) -> Result<Option<std::time::Duration>, ParseErrorKind> {
    let Some(value) = flags.string(name) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let d = duration::parse(&value).map_err(|reason| invalid(name, &value, &reason))?;
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        return Err(invalid(name, &value, "cannot be less than 1ms"));
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mount::MountType;
    use crate::parse;

    /// The commands of the first stage of `FROM base` + `body`.
    fn cmds(body: &str) -> Vec<Command> {
        let df = parse(&format!("FROM base\n{body}")).expect("parses");
        df.stages[0].instructions.iter().map(|i| i.command.clone()).collect()
    }

    fn one(body: &str) -> Command {
        let mut c = cmds(body);
        assert_eq!(c.len(), 1, "{c:?}");
        c.remove(0)
    }

    fn err(body: &str) -> String {
        parse(&format!("FROM base\n{body}")).expect_err("fails").to_string()
    }

    #[test]
    fn instructions_are_case_insensitive() {
        assert!(matches!(one("run echo"), Command::Run(_)));
        assert!(matches!(one("WorkDir /x"), Command::Workdir(_)));
    }

    #[test]
    fn unknown_instruction_is_reported_uppercase_with_its_line() {
        assert_eq!(err("form x"), "line 2: unknown instruction: FORM");
    }

    #[test]
    fn from_with_platform_and_stage_name() {
        let df = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build").expect("succeeds");
        let from = &df.stages[0].from;
        assert_eq!(from.image, "golang:1.22");
        assert_eq!(from.platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(from.name.as_deref(), Some("build"));
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    }

    #[test]
    fn from_errors() {
        assert_eq!(parse("FROM a b").expect_err("fails").to_string(), "line 1: FROM requires either one or three arguments");
        assert_eq!(
            parse("FROM a AS 1st").expect_err("fails").to_string(),
            "line 1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
        );
        assert_eq!(parse("FROM --plat=x a").expect_err("fails").to_string(), "line 1: unknown flag for FROM: --plat");
    }

    #[test]
    fn run_shell_and_exec_forms() {
        let Command::Run(r) = one("RUN echo $HOME  &&  ls") else { panic!() };
        assert_eq!(r.command, CommandLine::Shell("echo $HOME  &&  ls".into()));
        let Command::Run(r) = one(r#"RUN ["echo", "a b"]"#) else { panic!() };
        assert_eq!(r.command, CommandLine::Exec(vec!["echo".into(), "a b".into()]));
    }

    #[test]
    fn invalid_json_falls_back_to_shell_form() {
        let Command::Run(r) = one("RUN [ -f x ] && echo yes") else { panic!() };
        assert_eq!(r.command, CommandLine::Shell("[ -f x ] && echo yes".into()));
        let Command::Cmd(c) = one("CMD ['single', 'quotes']") else { panic!() };
        assert_eq!(c, CommandLine::Shell("['single', 'quotes']".into()));
        let Command::Cmd(c) = one(r#"CMD ["a", 1]"#) else { panic!() };
        assert!(matches!(c, CommandLine::Shell(_)));
    }

    #[test]
    fn run_flags_mounts_network_security() {
        let Command::Run(r) = one("RUN --mount=type=cache,target=/var/cache/apt --mount=type=secret,id=tok --network=none --security=insecure make") else {
            panic!()
        };
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.mounts[0].kind, MountType::Cache);
        assert_eq!(r.mounts[1].kind, MountType::Secret);
        assert_eq!(r.network, Some(NetworkMode::None));
        assert_eq!(r.security, Some(Security::Insecure));
        assert_eq!(r.command, CommandLine::Shell("make".into()));
    }

    #[test]
    fn run_flag_errors() {
        assert_eq!(err("RUN --network=bridge x"), "line 2: invalid value \"bridge\" for --network: expected default, none or host");
        assert_eq!(err("RUN --mount=type=cache x"), "line 2: invalid mount \"type=cache\": mount type cache requires a target");
        assert_eq!(err("RUN --privileged x"), "line 2: unknown flag for RUN: --privileged");
        assert_eq!(err("RUN"), "line 2: RUN requires at least one argument");
    }

    #[test]
    fn copy_with_every_flag() {
        let Command::Copy(c) = one("COPY --from=build --chown=app:app --chmod=755 --link --exclude=*.md --exclude=tmp --parents a b /dst/") else { panic!() };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.chown.as_deref(), Some("app:app"));
        assert_eq!(c.chmod.as_deref(), Some("755"));
        assert!(c.link && c.parents);
        assert_eq!(c.exclude, vec!["*.md", "tmp"]);
        assert_eq!(c.files.sources, vec!["a", "b"]);
        assert_eq!(c.files.dest, "/dst/");
        assert!(!c.files.json);
    }

    #[test]
    fn copy_json_form_and_argument_count() {
        let Command::Copy(c) = one(r#"COPY ["with space.txt", "/d/"]"#) else { panic!() };
        assert_eq!(c.files.sources, vec!["with space.txt"]);
        assert!(c.files.json);
        assert_eq!(err("COPY onlyone"), "line 2: COPY requires at least two arguments");
        assert_eq!(err("COPY --checksum=x a b"), "line 2: unknown flag for COPY: --checksum");
    }

    #[test]
    fn add_specific_flags() {
        let Command::Add(a) = one("ADD --checksum=sha256:abc --keep-git-dir=true --chown=1:2 https://x/y.tgz /y") else { panic!() };
        assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
        assert!(a.keep_git_dir);
        assert_eq!(a.chown.as_deref(), Some("1:2"));
        assert_eq!(a.files.sources, vec!["https://x/y.tgz"]);
        assert_eq!(err("ADD --from=x a b"), "line 2: unknown flag for ADD: --from");
    }

    #[test]
    fn env_pairs_keep_quotes_until_expanded() {
        let Command::Env(kvs) = one(r#"ENV a=1 b="x y" c=z\ w"#) else { panic!() };
        let got: Vec<_> = kvs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())).collect();
        assert_eq!(got, vec![("a", "1"), ("b", "\"x y\""), ("c", "z\\ w")]);
    }

    #[test]
    fn env_legacy_form_takes_the_rest_as_value() {
        let Command::Env(kvs) = one("ENV PATH /usr/bin:/bin  extra") else { panic!() };
        assert_eq!(kvs, vec![KeyValue { key: "PATH".into(), value: "/usr/bin:/bin  extra".into() }]);
        assert_eq!(err("ENV lonely"), "line 2: ENV requires two arguments");
    }

    #[test]
    fn env_and_label_errors() {
        assert_eq!(err("ENV a=1 b"), "line 2: syntax error - can't find = in \"b\", must be of the form: name=value");
        assert_eq!(err("ENV =x"), "line 2: ENV names can not be blank");
        assert_eq!(err("LABEL"), "line 2: LABEL requires at least one argument");
    }

    #[test]
    fn label_pairs() {
        let Command::Label(kvs) = one(r#"LABEL org.opencontainers.image.title="My App" version=1.0"#) else { panic!() };
        assert_eq!(kvs[0].key, "org.opencontainers.image.title");
        assert_eq!(kvs[0].value, "\"My App\"");
        assert_eq!(kvs[1].value, "1.0");
    }

    #[test]
    fn arg_several_with_and_without_defaults() {
        let Command::Arg(args) = one("ARG a b=2 c=") else { panic!() };
        assert_eq!(
            args,
            vec![
                ArgDef { name: "a".into(), default: None },
                ArgDef { name: "b".into(), default: Some("2".into()) },
                ArgDef { name: "c".into(), default: Some(String::new()) },
            ]
        );
        assert_eq!(err("ARG =1"), "line 2: ARG names can not be blank");
    }

    #[test]
    fn simple_single_argument_instructions() {
        assert_eq!(one("WORKDIR /app/src"), Command::Workdir("/app/src".into()));
        assert_eq!(one("USER app:staff"), Command::User("app:staff".into()));
        assert_eq!(one("STOPSIGNAL SIGKILL"), Command::Stopsignal("SIGKILL".into()));
        assert_eq!(one("MAINTAINER Jane <j@x.org>"), Command::Maintainer("Jane <j@x.org>".into()));
        assert_eq!(err("WORKDIR"), "line 2: WORKDIR requires exactly one argument");
    }

    #[test]
    fn expose_and_volume() {
        assert_eq!(one("EXPOSE 80 443/tcp 53/udp"), Command::Expose(vec!["80".into(), "443/tcp".into(), "53/udp".into()]));
        assert_eq!(one("VOLUME /a /b"), Command::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(one(r#"VOLUME ["/data"]"#), Command::Volume(vec!["/data".into()]));
        assert_eq!(err(r#"VOLUME [""]"#), "line 2: VOLUME specified can not be an empty string");
        assert_eq!(err("EXPOSE"), "line 2: EXPOSE requires at least one argument");
    }

    #[test]
    fn cmd_entrypoint_and_shell() {
        assert_eq!(one(r#"CMD ["sh"]"#), Command::Cmd(CommandLine::Exec(vec!["sh".into()])));
        assert_eq!(one("ENTRYPOINT exec app"), Command::Entrypoint(CommandLine::Shell("exec app".into())));
        assert_eq!(one("CMD"), Command::Cmd(CommandLine::Shell(String::new())));
        assert_eq!(
            one(r#"SHELL ["/bin/bash", "-eo", "pipefail", "-c"]"#),
            Command::Shell(vec!["/bin/bash".into(), "-eo".into(), "pipefail".into(), "-c".into()])
        );
        assert_eq!(err("SHELL /bin/bash -c"), "line 2: SHELL requires the arguments to be in JSON form");
        assert_eq!(err("CMD --help"), "line 2: unknown flag for CMD: --help");
    }

    #[test]
    fn healthcheck_cmd_with_flags() {
        let Command::Healthcheck(Healthcheck::Cmd(h)) =
            one("HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1")
        else {
            panic!()
        };
        assert_eq!(h.interval, Some(Duration::from_secs(30)));
        assert_eq!(h.timeout, Some(Duration::from_secs(5)));
        assert_eq!(h.start_period, Some(Duration::from_secs(60)));
        assert_eq!(h.start_interval, Some(Duration::from_millis(500)));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.test(), vec!["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
        let Command::Healthcheck(Healthcheck::Cmd(h)) = one(r#"healthcheck cmd ["/bin/check", "-q"]"#) else { panic!() };
        assert_eq!(h.test(), vec!["CMD", "/bin/check", "-q"]);
        assert_eq!(h.interval, None);
    }

    #[test]
    fn healthcheck_none_and_errors() {
        assert_eq!(one("HEALTHCHECK NONE"), Command::Healthcheck(Healthcheck::None));
        assert_eq!(err("HEALTHCHECK NONE x"), "line 2: HEALTHCHECK NONE takes no arguments");
        assert_eq!(err("HEALTHCHECK CMD"), "line 2: missing command after HEALTHCHECK CMD");
        assert_eq!(err("HEALTHCHECK PING x"), "line 2: unknown type \"PING\" in HEALTHCHECK (try CMD)");
        assert_eq!(err("HEALTHCHECK --interval=10 CMD x"), "line 2: invalid value \"10\" for --interval: missing unit in duration");
        assert_eq!(err("HEALTHCHECK --timeout=10us CMD x"), "line 2: invalid value \"10us\" for --timeout: cannot be less than 1ms");
        assert_eq!(err("HEALTHCHECK --retries=-1 CMD x"), "line 2: invalid value \"-1\" for --retries: cannot be negative");
    }

    #[test]
    fn onbuild_nests_a_trigger() {
        let Command::Onbuild(trigger) = one("ONBUILD COPY --from=x . /app") else { panic!() };
        assert_eq!(trigger.original, "COPY --from=x . /app");
        assert_eq!(trigger.line, 2);
        let Command::Copy(c) = &trigger.command else { panic!() };
        assert_eq!(c.from.as_deref(), Some("x"));
    }

    #[test]
    fn onbuild_forbidden_triggers() {
        assert_eq!(err("ONBUILD ONBUILD RUN x"), "line 2: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        assert_eq!(err("ONBUILD FROM x"), "line 2: FROM isn't allowed as an ONBUILD trigger");
        assert_eq!(err("ONBUILD maintainer x"), "line 2: MAINTAINER isn't allowed as an ONBUILD trigger");
        assert_eq!(err("ONBUILD FOO x"), "line 2: unknown instruction: FOO");
    }

    #[test]
    fn run_heredoc_keeps_body_and_marker() {
        let df = parse("FROM a\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nUSER x\n").expect("succeeds");
        let inst = &df.stages[0].instructions[0];
        let Command::Run(r) = &inst.command else { panic!() };
        assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
        assert_eq!(r.heredocs.len(), 1);
        assert_eq!(r.heredocs[0].name, "EOF");
        assert_eq!(r.heredocs[0].content, "apt-get update\napt-get install -y curl\n");
        assert!(r.heredocs[0].expand);
        assert_eq!((inst.line, inst.end_line), (2, 5));
        assert_eq!(inst.original, "RUN <<EOF");
        assert_eq!(inst.source, "RUN <<EOF\napt-get update\napt-get install -y curl\nEOF");
        assert_eq!(df.stages[0].instructions[1].line, 6);
    }

    #[test]
    fn heredoc_strip_tabs_and_quoted_names() {
        let df = parse("FROM a\nRUN <<-'END' python3\n\tprint('$HOME')\n\t\tx\n\tEND\n").expect("succeeds");
        let Command::Run(r) = &df.stages[0].instructions[0].command else { panic!() };
        assert_eq!(r.heredocs[0].content, "print('$HOME')\nx\n");
        assert!(r.heredocs[0].strip_tabs);
        assert!(!r.heredocs[0].expand);
        assert_eq!(r.heredocs[0].name, "END");
    }

    #[test]
    fn several_heredocs_on_one_line() {
        let df = parse("FROM a\nRUN cat <<A > /a && cat 3<<\"B\" > /b\none\nA\ntwo\nB\nUSER u").expect("succeeds");
        let Command::Run(r) = &df.stages[0].instructions[0].command else { panic!() };
        let names: Vec<_> = r.heredocs.iter().map(|h| (h.name.as_str(), h.content.as_str(), h.fd)).collect();
        assert_eq!(names, vec![("A", "one\n", None), ("B", "two\n", Some(3))]);
        assert_eq!(df.stages[0].instructions.len(), 2);
    }

    #[test]
    fn copy_heredocs_become_named_sources() {
        let df = parse("FROM a\nCOPY <<a.txt <<b.txt /dir/\nalpha\na.txt\nbeta\nb.txt\n").expect("succeeds");
        let Command::Copy(c) = &df.stages[0].instructions[0].command else { panic!() };
        assert!(c.files.sources.is_empty());
        assert_eq!(c.files.dest, "/dir/");
        let got: Vec<_> = c.files.heredocs.iter().map(|h| (h.name.as_str(), h.content.as_str())).collect();
        assert_eq!(got, vec![("a.txt", "alpha\n"), ("b.txt", "beta\n")]);
        let df = parse("FROM a\nCOPY <<EOF /etc/motd\nhi\nEOF").expect("succeeds");
        let Command::Copy(c) = &df.stages[0].instructions[0].command else { panic!() };
        assert_eq!(c.files.heredocs[0].content, "hi\n");
    }

    #[test]
    fn unterminated_heredoc() {
        assert_eq!(err("RUN <<EOF\necho hi\n"), "line 2: unterminated heredoc: EOF");
    }

    #[test]
    fn heredoc_markers_only_in_run_copy_add() {
        let df = parse("FROM a\nCMD cat <<EOF\nUSER x").expect("succeeds");
        assert_eq!(df.stages[0].instructions.len(), 2);
    }

    #[test]
    fn heredoc_body_is_not_comment_stripped_or_joined() {
        let df = parse("FROM a\nRUN <<EOF\n# not a comment \\\n\n  indented\nEOF").expect("succeeds");
        let Command::Run(r) = &df.stages[0].instructions[0].command else { panic!() };
        assert_eq!(r.heredocs[0].content, "# not a comment \\\n\n  indented\n");
    }

    #[test]
    fn line_numbers_and_original_across_continuations() {
        let df = parse("FROM a\n\n# comment\nRUN apt-get update \\\n    # inner comment\n    && apt-get install -y \\\n       curl\nUSER x").expect("succeeds");
        let inst = &df.stages[0].instructions[0];
        assert_eq!((inst.line, inst.end_line), (4, 7));
        assert_eq!(inst.original, "RUN apt-get update     && apt-get install -y        curl");
        assert_eq!(df.stages[0].instructions[1].line, 8);
    }

    #[test]
    fn backtick_escape_directive_changes_continuations() {
        let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  && echo done").expect("succeeds");
        assert_eq!(df.escape(), '`');
        let Command::Run(r) = &df.stages[0].instructions[0].command else { panic!() };
        assert_eq!(r.command, CommandLine::Shell("dir c:\\   && echo done".into()));
    }
}
