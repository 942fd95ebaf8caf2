//! The typed instructions: [`Instruction`] (where it is and what it says) around a
//! [`Command`] (one variant per Dockerfile instruction, flags included), and
//! [`InstructionKind`], the bare names with Docker's rules about them.
//!
//! Words are kept as written: quotes, escapes and `$variables` are still there.
//! [`Instruction::expand`] applies Docker's variable substitution to the instructions
//! that have it, which also removes the quotes.

use std::time::Duration;

use crate::error::ExpandError;
use crate::expand::{expand, expand_heredoc, expand_words, Lookup};
use crate::heredoc::Heredoc;
use crate::mount::Mount;

/// A Dockerfile instruction's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstructionKind {
    /// `ADD`
    Add,
    /// `ARG`
    Arg,
    /// `CMD`
    Cmd,
    /// `COPY`
    Copy,
    /// `ENTRYPOINT`
    Entrypoint,
    /// `ENV`
    Env,
    /// `EXPOSE`
    Expose,
    /// `FROM`
    From,
    /// `HEALTHCHECK`
    Healthcheck,
    /// `LABEL`
    Label,
    /// `MAINTAINER` (deprecated, still accepted)
    Maintainer,
    /// `ONBUILD`
    Onbuild,
    /// `RUN`
    Run,
    /// `SHELL`
    Shell,
    /// `STOPSIGNAL`
    Stopsignal,
    /// `USER`
    User,
    /// `VOLUME`
    Volume,
    /// `WORKDIR`
    Workdir,
}

impl InstructionKind {
    /// Every instruction.
    pub const ALL: [InstructionKind; 18] = [
        Self::Add,
        Self::Arg,
        Self::Cmd,
        Self::Copy,
        Self::Entrypoint,
        Self::Env,
        Self::Expose,
        Self::From,
        Self::Healthcheck,
        Self::Label,
        Self::Maintainer,
        Self::Onbuild,
        Self::Run,
        Self::Shell,
        Self::Stopsignal,
        Self::User,
        Self::Volume,
        Self::Workdir,
    ];

    /// The instructions whose words the builder expands (Docker's reference, plus ARG,
    /// which BuildKit and dockerd also expand). RUN, CMD and ENTRYPOINT are left to the
    /// shell; ONBUILD is expanded when its trigger runs.
    pub const EXPANDING: [InstructionKind; 11] =
        [Self::Add, Self::Arg, Self::Copy, Self::Env, Self::Expose, Self::From, Self::Label, Self::Stopsignal, Self::User, Self::Volume, Self::Workdir];

    /// The kind for a name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The name, uppercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Arg => "ARG",
            Self::Cmd => "CMD",
            Self::Copy => "COPY",
            Self::Entrypoint => "ENTRYPOINT",
            Self::Env => "ENV",
            Self::Expose => "EXPOSE",
            Self::From => "FROM",
            Self::Healthcheck => "HEALTHCHECK",
            Self::Label => "LABEL",
            Self::Maintainer => "MAINTAINER",
            Self::Onbuild => "ONBUILD",
            Self::Run => "RUN",
            Self::Shell => "SHELL",
            Self::Stopsignal => "STOPSIGNAL",
            Self::User => "USER",
            Self::Volume => "VOLUME",
            Self::Workdir => "WORKDIR",
        }
    }

    /// Whether the builder substitutes variables in this instruction's words.
    pub fn expands_variables(self) -> bool {
        Self::EXPANDING.contains(&self)
    }

    /// Whether the instruction may carry heredocs (RUN, COPY, ADD).
    pub fn takes_heredocs(self) -> bool {
        matches!(self, Self::Run | Self::Copy | Self::Add)
    }
}

impl std::fmt::Display for InstructionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A command in shell form (run with the stage's SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `RUN echo hi`: the text after the instruction and its flags.
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

impl CommandLine {
    /// The argv dockerd builds: shell form prefixed with `shell` (`["/bin/sh", "-c"]` by
    /// default); an empty shell form (a bare `CMD`) is no command at all.
    pub fn to_argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Self::Exec(argv) => argv.clone(),
            Self::Shell(s) if s.is_empty() => Vec::new(),
            Self::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
        }
    }
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image (or an earlier stage's name), as written.
    pub image: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// The stage name after `AS`, lowercased.
    pub name: Option<String>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// `default`.
    Default,
    /// `none`.
    None,
    /// `host`.
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `sandbox` (the default).
    Sandbox,
    /// `insecure`.
    Insecure,
}

/// `RUN [flags] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command; with heredocs, the shell form text still holds the `<<EOF` markers.
    pub command: CommandLine,
    /// Heredoc bodies, in the order of their markers.
    pub heredocs: Vec<Heredoc>,
    /// `--mount`, in order.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<Security>,
}

/// The sources and destination of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// Source paths, patterns or URLs, heredoc markers left out.
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<a.txt /dir/`): files named after the heredoc.
    pub heredocs: Vec<Heredoc>,
    /// The destination.
    pub dest: String,
    /// Whether the JSON form was used.
    pub json: bool,
}

/// `COPY [flags] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources and destination.
    pub files: Files,
    /// `--from`: a stage name or index, an image, or a named context.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` (repeatable).
    pub exclude: Vec<String>,
    /// `--parents`.
    pub parents: bool,
}

/// `ADD [flags] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Sources and destination.
    pub files: Files,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` (repeatable).
    pub exclude: Vec<String>,
    /// `--checksum` (for a remote source).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (for a Git source).
    pub keep_git_dir: bool,
}

/// A `key=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written (quotes kept until expanded).
    pub value: String,
}

/// One `name[=default]` of ARG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub name: String,
    /// The default, if given (`ARG a=` gives an empty one).
    pub default: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD command`.
    Cmd(HealthcheckCmd),
}

/// The command and timing of a HEALTHCHECK; `None` means "not given" (the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    /// The check: shell form becomes `CMD-SHELL`, exec form `CMD`.
    pub command: CommandLine,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

impl HealthcheckCmd {
    /// The image config's `Healthcheck.Test`: `["CMD", argv...]` or
    /// `["CMD-SHELL", command]`.
    pub fn test(&self) -> Vec<String> {
        match &self.command {
            CommandLine::Exec(argv) => ["CMD".to_string()].into_iter().chain(argv.iter().cloned()).collect(),
            CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        }
    }
}

/// One instruction's typed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ADD`
    Add(Add),
    /// `ARG name[=default] ...`
    Arg(Vec<ArgDef>),
    /// `CMD`; a bare `CMD` is an empty shell form.
    Cmd(CommandLine),
    /// `COPY`
    Copy(Copy),
    /// `ENTRYPOINT`; a bare `ENTRYPOINT` is an empty shell form.
    Entrypoint(CommandLine),
    /// `ENV k=v ...` (or the legacy `ENV k v`).
    Env(Vec<KeyValue>),
    /// `EXPOSE port[/proto] ...`
    Expose(Vec<String>),
    /// `FROM`
    From(From),
    /// `HEALTHCHECK`
    Healthcheck(Healthcheck),
    /// `LABEL k=v ...`
    Label(Vec<KeyValue>),
    /// `MAINTAINER name`
    Maintainer(String),
    /// `ONBUILD trigger`; the trigger's `original` is the text stored in the image.
    Onbuild(Box<Instruction>),
    /// `RUN`
    Run(Run),
    /// `SHELL ["exe", "arg"...]`
    Shell(Vec<String>),
    /// `STOPSIGNAL signal`
    Stopsignal(String),
    /// `USER user[:group]`
    User(String),
    /// `VOLUME path ...` or JSON
    Volume(Vec<String>),
    /// `WORKDIR path`
    Workdir(String),
}

impl Command {
    /// The instruction's name.
    pub fn kind(&self) -> InstructionKind {
        match self {
            Self::Add(_) => InstructionKind::Add,
            Self::Arg(_) => InstructionKind::Arg,
            Self::Cmd(_) => InstructionKind::Cmd,
            Self::Copy(_) => InstructionKind::Copy,
            Self::Entrypoint(_) => InstructionKind::Entrypoint,
            Self::Env(_) => InstructionKind::Env,
            Self::Expose(_) => InstructionKind::Expose,
            Self::From(_) => InstructionKind::From,
            Self::Healthcheck(_) => InstructionKind::Healthcheck,
            Self::Label(_) => InstructionKind::Label,
            Self::Maintainer(_) => InstructionKind::Maintainer,
            Self::Onbuild(_) => InstructionKind::Onbuild,
            Self::Run(_) => InstructionKind::Run,
            Self::Shell(_) => InstructionKind::Shell,
            Self::Stopsignal(_) => InstructionKind::Stopsignal,
            Self::User(_) => InstructionKind::User,
            Self::Volume(_) => InstructionKind::Volume,
            Self::Workdir(_) => InstructionKind::Workdir,
        }
    }
}

/// One instruction: its content and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The typed content.
    pub command: Command,
    /// The 1-based first line.
    pub line: usize,
    /// The 1-based last line, heredoc bodies included.
    pub end_line: usize,
    /// The instruction's text with continuation lines joined (Docker's `Original`),
    /// without heredoc bodies.
    pub original: String,
    /// The physical lines `line..=end_line` exactly as in the file.
    pub source: String,
}

impl Instruction {
    /// The instruction's name.
    pub fn kind(&self) -> InstructionKind {
        self.command.kind()
    }

    /// A copy with Docker's variable substitution applied, for the instructions that
    /// have it ([`InstructionKind::expands_variables`]); others come back unchanged.
    /// `env` holds the build args and environment in effect (for FROM, the global ARGs).
    ///
    /// Each word is expanded on its own, as dockerd and BuildKit do, except EXPOSE, whose
    /// words may split (`EXPOSE $PORTS`). COPY/ADD flag values (`--from`, `--chown`,
    /// `--chmod`, `--exclude`, `--checksum`) and the bodies of unquoted COPY/ADD
    /// heredocs are expanded too; `--mount` values are not.
    pub fn expand<L: Lookup + ?Sized>(&self, env: &L, escape: char) -> Result<Instruction, ExpandError> {
        let one = |w: &String| expand(w, env, escape);
        let opt = |w: &Option<String>| w.as_ref().map(|w| expand(w, env, escape)).transpose();
        let all = |ws: &[String]| ws.iter().map(one).collect::<Result<Vec<_>, _>>();
        let files = |f: &Files| -> Result<Files, ExpandError> {
            Ok(Files {
                sources: all(&f.sources)?,
                heredocs: f
                    .heredocs
                    .iter()
                    .map(|h| {
                        let mut h = h.clone();
                        if h.expand {
                            h.content = expand_heredoc(&h.content, env)?;
                        }
                        Ok(h)
                    })
                    .collect::<Result<_, ExpandError>>()?,
                dest: one(&f.dest)?,
                json: f.json,
            })
        };
        let pairs =
            |kvs: &[KeyValue]| kvs.iter().map(|kv| Ok(KeyValue { key: one(&kv.key)?, value: one(&kv.value)? })).collect::<Result<Vec<_>, ExpandError>>();
        let command = match &self.command {
            Command::From(f) => Command::From(From { image: one(&f.image)?, platform: opt(&f.platform)?, name: f.name.clone() }),
            Command::Copy(c) => Command::Copy(Copy {
                files: files(&c.files)?,
                from: opt(&c.from)?,
                chown: opt(&c.chown)?,
                chmod: opt(&c.chmod)?,
                link: c.link,
                exclude: all(&c.exclude)?,
                parents: c.parents,
            }),
            Command::Add(a) => Command::Add(Add {
                files: files(&a.files)?,
                chown: opt(&a.chown)?,
                chmod: opt(&a.chmod)?,
                link: a.link,
                exclude: all(&a.exclude)?,
                checksum: opt(&a.checksum)?,
                keep_git_dir: a.keep_git_dir,
            }),
            Command::Env(kvs) => Command::Env(pairs(kvs)?),
            Command::Label(kvs) => Command::Label(pairs(kvs)?),
            Command::Arg(args) => {
                Command::Arg(args.iter().map(|a| Ok(ArgDef { name: one(&a.name)?, default: opt(&a.default)? })).collect::<Result<_, ExpandError>>()?)
            }
            Command::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(expand_words(p, env, escape)?);
                }
                Command::Expose(out)
            }
            Command::Volume(paths) => Command::Volume(all(paths)?),
            Command::User(u) => Command::User(one(u)?),
            Command::Workdir(w) => Command::Workdir(one(w)?),
            Command::Stopsignal(s) => Command::Stopsignal(one(s)?),
            other => other.clone(),
        };
        Ok(Instruction { command, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn first(body: &str) -> Instruction {
        let df = parse(&format!("FROM base\n{body}")).expect("parses");
        df.stages[0].instructions[0].clone()
    }

    fn env() -> Vec<(&'static str, &'static str)> {
        vec![("name", "world"), ("ports", "80 443"), ("dir", "/srv"), ("stage", "build"), ("user", "app")]
    }

    #[test]
    fn kinds_by_name_and_expansion_rule() {
        assert_eq!(InstructionKind::from_name("healthcheck"), Some(InstructionKind::Healthcheck));
        assert_eq!(InstructionKind::from_name("nope"), None);
        for k in [InstructionKind::Run, InstructionKind::Cmd, InstructionKind::Entrypoint, InstructionKind::Onbuild] {
            assert!(!k.expands_variables(), "{k}");
        }
        for name in ["ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"] {
            assert!(InstructionKind::from_name(name).is_some_and(InstructionKind::expands_variables), "{name}");
        }
        assert_eq!(InstructionKind::ALL.len(), 18);
    }

    #[test]
    fn expand_env_and_label_removes_quotes() {
        let i = first(r#"ENV greeting="hello $name" 'raw'='$name' plain=${name:-x}"#).expand(&env(), '\\').expect("succeeds");
        let Command::Env(kvs) = &i.command else { panic!() };
        let got: Vec<_> = kvs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())).collect();
        assert_eq!(got, vec![("greeting", "hello world"), ("raw", "$name"), ("plain", "world")]);
        assert_eq!(i.original, r#"ENV greeting="hello $name" 'raw'='$name' plain=${name:-x}"#);
    }

    #[test]
    fn expand_expose_splits_words() {
        let i = first("EXPOSE $ports 8080/udp").expand(&env(), '\\').expect("succeeds");
        assert_eq!(i.command, Command::Expose(vec!["80".into(), "443".into(), "8080/udp".into()]));
    }

    #[test]
    fn expand_copy_sources_dest_and_flags() {
        let i = first("COPY --from=$stage --chown=$user:$user ${dir}/a.txt $dir/ ").expand(&env(), '\\').expect("succeeds");
        let Command::Copy(c) = &i.command else { panic!() };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.chown.as_deref(), Some("app:app"));
        assert_eq!(c.files.sources, vec!["/srv/a.txt"]);
        assert_eq!(c.files.dest, "/srv/");
    }

    #[test]
    fn expand_copy_heredoc_bodies_unless_quoted() {
        let df = parse("FROM a\nCOPY <<A <<'B' /d/\nhi $name\nA\nhi $name\nB\n").expect("succeeds");
        let i = df.stages[0].instructions[0].expand(&env(), '\\').expect("succeeds");
        let Command::Copy(c) = &i.command else { panic!() };
        assert_eq!(c.files.heredocs[0].content, "hi world\n");
        assert_eq!(c.files.heredocs[1].content, "hi $name\n");
    }

    #[test]
    fn run_cmd_and_onbuild_are_not_expanded() {
        for body in ["RUN echo $name", "CMD echo $name", "ONBUILD RUN echo $name"] {
            let i = first(body);
            assert_eq!(i.expand(&env(), '\\').expect("succeeds"), i, "{body}");
        }
    }

    #[test]
    fn expand_single_word_instructions_and_errors() {
        assert_eq!(first("WORKDIR $dir/app").expand(&env(), '\\').expect("succeeds").command, Command::Workdir("/srv/app".into()));
        assert_eq!(first("USER ${user}").expand(&env(), '\\').expect("succeeds").command, Command::User("app".into()));
        assert_eq!(first("VOLUME $dir").expand(&env(), '\\').expect("succeeds").command, Command::Volume(vec!["/srv".into()]));
        let e = first("WORKDIR ${missing:?set it}").expand(&env(), '\\').expect_err("fails");
        assert_eq!(e.to_string(), "missing: set it");
    }

    #[test]
    fn expand_from_image_and_platform_with_global_args() {
        let df = parse("ARG TAG=3.19\nFROM --platform=$P alpine:${TAG}").expect("succeeds");
        let args = [("TAG", "3.20"), ("P", "linux/arm64")];
        let i = df.stages[0].from_instruction.expand(&args[..], '\\').expect("succeeds");
        let Command::From(f) = &i.command else { panic!() };
        assert_eq!(f.image, "alpine:3.20");
        assert_eq!(f.platform.as_deref(), Some("linux/arm64"));
    }

    #[test]
    fn command_line_argv() {
        let sh = crate::default_shell();
        assert_eq!(CommandLine::Shell("echo hi".into()).to_argv(&sh), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(CommandLine::Exec(vec!["a".into()]).to_argv(&sh), vec!["a"]);
        assert!(CommandLine::Shell(String::new()).to_argv(&sh).is_empty());
    }
}
