//! A whole Dockerfile: its parser directives, the ARGs before the first FROM, and its
//! build stages, as [`parse`] reads it.

use crate::directive::{self, Directives};
use crate::error::{ParseError, ParseErrorKind};
use crate::instruction::{ArgDef, Command, From, Instruction, InstructionKind};
use crate::lexer::Source;
use crate::parser;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The parser directives (escape character, `syntax`, `check`).
    pub directives: Directives,
    /// The ARG instructions before the first FROM (each is [`Command::Arg`]); only they
    /// can be used in FROM lines.
    pub global_args: Vec<Instruction>,
    /// The build stages, in order; never empty.
    pub stages: Vec<Stage>,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The name after `AS`, lowercased.
    pub name: Option<String>,
    /// The 0-based position (what `COPY --from=0` means).
    pub index: usize,
    /// The FROM.
    pub from: From,
    /// The FROM instruction itself (lines and text).
    pub from_instruction: Instruction,
    /// The instructions after the FROM.
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// The escape character in effect.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The stage called `name_or_index` (names compare case-insensitively, as Docker
    /// lowercases them), or else the stage at that index.
    pub fn stage_by_name_or_index(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())).or_else(|| name_or_index.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }

    /// The global ARG definitions, in order.
    pub fn global_arg_defs(&self) -> impl Iterator<Item = &ArgDef> {
        self.global_args.iter().flat_map(|i| match &i.command {
            Command::Arg(defs) => defs.as_slice(),
            _ => &[],
        })
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut source = Source::new(text);
    let directives = directive::parse(source.lines())?;
    let escape = directives.escape;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    while let Some(line) = source.next_logical(escape)? {
        let instruction = parser::instruction(&line, &mut source, escape)?;
        match (&instruction.command, stages.last_mut()) {
            (Command::From(from), _) => {
                if let Some(name) = &from.name {
                    if stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                        return Err(ParseError::new(instruction.line, ParseErrorKind::DuplicateStageName(name.clone())));
                    }
                }
                stages.push(Stage {
                    name: from.name.clone(),
                    index: stages.len(),
                    from: from.clone(),
                    from_instruction: instruction,
                    instructions: Vec::new(),
                });
            }
            (_, Some(stage)) => stage.instructions.push(instruction),
            (Command::Arg(_), None) => global_args.push(instruction),
            (other, None) => return Err(ParseError::new(instruction.line, ParseErrorKind::BeforeFrom(other.kind().name().to_string()))),
        }
    }
    let last = source.lines().len().max(1);
    if stages.is_empty() {
        let kind = if global_args.is_empty() { ParseErrorKind::NoInstructions } else { ParseErrorKind::NoStages };
        return Err(ParseError::new(last, kind));
    }
    debug_assert!(global_args.iter().all(|i| i.kind() == InstructionKind::Arg));
    Ok(Dockerfile { directives, global_args, stages })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "\
# syntax=docker/dockerfile:1
ARG GO=1.22
ARG BASE
FROM golang:${GO} AS build
RUN go build -o /app
FROM build AS Test
RUN go test ./...
FROM alpine
COPY --from=build /app /app
";

    #[test]
    fn stages_global_args_and_directives() {
        let df = parse(MULTI).expect("succeeds");
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        let args: Vec<_> = df.global_arg_defs().map(|a| (a.name.as_str(), a.default.as_deref())).collect();
        assert_eq!(args, vec![("GO", Some("1.22")), ("BASE", None)]);
        assert_eq!(df.stages.len(), 3);
        assert_eq!(df.stages[0].from.image, "golang:${GO}");
        assert_eq!(df.stages[1].name.as_deref(), Some("test"));
        assert_eq!(df.stages[2].name, None);
        assert_eq!(df.stages[2].index, 2);
        assert_eq!(df.stages[2].from_instruction.line, 8);
        assert_eq!(df.stages[0].instructions.len(), 1);
    }

    #[test]
    fn stage_lookup_by_name_or_index() {
        let df = parse(MULTI).expect("succeeds");
        assert_eq!(df.stage_by_name_or_index("build").map(|s| s.index), Some(0));
        assert_eq!(df.stage_by_name_or_index("TEST").map(|s| s.index), Some(1));
        assert_eq!(df.stage_by_name_or_index("2").map(|s| s.from.image.as_str()), Some("alpine"));
        assert!(df.stage_by_name_or_index("3").is_none());
        assert!(df.stage_by_name_or_index("nope").is_none());
    }

    #[test]
    fn instruction_before_from_is_an_error_unless_arg() {
        assert_eq!(parse("ARG a\nRUN x\nFROM b").expect_err("fails").to_string(), "line 2: no build stage in current context: RUN comes before the first FROM");
    }

    #[test]
    fn missing_from_and_empty_files() {
        assert_eq!(parse("ARG a\n").expect_err("fails").kind, ParseErrorKind::NoStages);
        assert_eq!(parse("").expect_err("fails").kind, ParseErrorKind::NoInstructions);
        assert_eq!(parse("# only\n\n# comments\n").expect_err("fails").to_string(), "line 3: file with no instructions");
    }

    #[test]
    fn duplicate_stage_names() {
        assert_eq!(parse("FROM a AS x\nFROM b AS X").expect_err("fails").to_string(), "line 2: duplicate stage name: \"x\"");
    }

    #[test]
    fn directive_after_instruction_is_a_comment() {
        let df = parse("FROM a\n# escape=`\nRUN a \\\n b").expect("succeeds");
        assert_eq!(df.escape(), '\\');
        assert_eq!(df.stages[0].instructions[0].original, "RUN a  b");
    }

    #[test]
    fn directive_errors_carry_their_line() {
        assert_eq!(parse("# syntax=a\n# syntax=b\nFROM x").expect_err("fails").to_string(), "line 2: only one syntax parser directive can be used");
    }
}
