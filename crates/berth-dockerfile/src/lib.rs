//! Berth's Dockerfile frontend: everything `docker build` needs to know about the text
//! before it builds anything. Pure logic, no I/O and no engine dependency.
//!
//! - [`parse()`]: parser directives, line continuations, comments, heredocs, and every
//!   instruction with its flags as a typed [`Command`], grouped into [`Stage`]s.
//! - [`expand()`], [`expand_words`], [`Instruction::expand`]: variable substitution as
//!   Docker's shell lexer does it, for the instructions that have it
//!   ([`InstructionKind::expands_variables`]).
//! - [`Ignore`]: `.dockerignore` matching; [`glob`]: COPY/ADD source patterns.
//! - [`history`]: the image history's `created_by` strings, as dockerd writes them.
//!
//! ```
//! use berth_dockerfile::{default_shell, parse, Command};
//!
//! let df = parse("ARG TAG=3.20\nFROM alpine:${TAG} AS base\nENV GREETING=\"hello world\"\n")?;
//! let stage = df.stage_by_name_or_index("base").expect("named stage");
//! let env = stage.instructions[0].expand(&vec![("TAG", "3.20")], df.escape())?;
//! let Command::Env(pairs) = &env.command else { unreachable!() };
//! assert_eq!(pairs[0].value, "hello world");
//! assert_eq!(
//!     env.history_created_by(&default_shell()).as_deref(),
//!     Some("/bin/sh -c #(nop)  ENV GREETING=hello world")
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Invariant:** parsing never expands variables; a parsed [`Instruction`] holds its
//! words as written, and the builder expands them step by step with the build args and
//! environment in effect at that step.

pub mod directive;
pub mod dockerfile;
pub mod duration;
pub mod error;
pub mod expand;
mod flags;
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod heredoc;
pub mod history;
pub mod ignore;
pub mod instruction;
mod lexer;
pub mod mount;
mod parser;

pub use directive::{Directive, Directives};
pub use dockerfile::{parse, Dockerfile, Stage};
pub use error::{ExpandError, GlobError, IgnoreError, ParseError, ParseErrorKind};
pub use expand::{expand, expand_heredoc, expand_words, Lookup};
pub use heredoc::Heredoc;
pub use ignore::Ignore;
pub use instruction::{
    Add, ArgDef, Command, CommandLine, Copy, Files, From, Healthcheck, HealthcheckCmd, Instruction, InstructionKind, KeyValue, NetworkMode, Run, Security,
};
pub use mount::{Mount, MountType, Sharing};

/// The shell dockerd prefixes shell-form commands with on Linux.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}
