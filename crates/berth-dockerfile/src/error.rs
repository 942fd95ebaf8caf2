//! The errors, one per operation: [`ParseError`] for [`crate::parse`], [`ExpandError`] for
//! variable substitution, [`IgnoreError`] for `.dockerignore` files and [`GlobError`] for
//! COPY/ADD source patterns. Messages are lowercase without a trailing period; instruction
//! and flag names keep the spelling a Dockerfile uses.

/// A Dockerfile that could not be parsed: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The 1-based line the offending instruction (or directive) starts on.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> Self {
        Self { line, kind }
    }
}

/// What is wrong with a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// `# escape=` with something other than a backslash or a backtick.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// The same parser directive twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// Nothing but comments, directives and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// Instructions (only ARGs) but no FROM.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// An instruction other than ARG before the first FROM.
    #[error("no build stage in current context: {0} comes before the first FROM")]
    BeforeFrom(String),
    /// An instruction Docker does not know (uppercased, as Docker prints it).
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// The file ends in a line continuation with nothing to continue.
    #[error("empty line continuation at end of file")]
    EmptyContinuation,
    /// A heredoc whose terminator never comes.
    #[error("unterminated heredoc: {0}")]
    UnterminatedHeredoc(String),
    /// A flag the instruction does not take.
    #[error("unknown flag for {instruction}: --{flag}")]
    UnknownFlag {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The flag, without its dashes.
        flag: String,
    },
    /// A flag given twice that may appear once.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// `--flag` without `=value` on a flag that needs one.
    #[error("missing a value on flag: --{0}")]
    MissingFlagValue(String),
    /// A boolean flag with a value other than true or false.
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    InvalidBool {
        /// The flag, without its dashes.
        flag: String,
        /// What was given.
        value: String,
    },
    /// A flag whose value does not parse.
    #[error("invalid value {value:?} for --{flag}: {reason}")]
    InvalidFlagValue {
        /// The flag, without its dashes.
        flag: String,
        /// What was given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A `RUN --mount` that does not parse.
    #[error("invalid mount {spec:?}: {reason}")]
    InvalidMount {
        /// The flag's value.
        spec: String,
        /// Why it is refused.
        reason: String,
    },
    /// Wrong number of arguments; `rule` reads like "at least two arguments".
    #[error("{instruction} requires {rule}")]
    Arguments {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// What it requires.
        rule: &'static str,
    },
    /// `FROM image AS <bad name>`.
    #[error("invalid name for build stage: {0:?}, name can't start with a number or contain symbols")]
    InvalidStageName(String),
    /// Two stages with the same name.
    #[error("duplicate stage name: {0:?}")]
    DuplicateStageName(String),
    /// `ENV a=b c` or `LABEL a=b c`: a later word without `=`.
    #[error("syntax error - can't find = in {word:?}, must be of the form: name=value")]
    MissingEquals {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The word without `=`.
        word: String,
    },
    /// `ENV =x`, `LABEL =x`, `ARG =x`.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// SHELL in shell form.
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    /// `ONBUILD ONBUILD ...`.
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(&'static str),
    /// `HEALTHCHECK NONE something`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// `HEALTHCHECK CMD` and nothing else.
    #[error("missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// `HEALTHCHECK FOO ...`.
    #[error("unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// `VOLUME [""]`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
}

/// Variable substitution failed, as Docker's shell lexer fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// `${name` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${name/pattern` without the second slash.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// A modifier Docker does not know, such as `${a:=b}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// A `'` without its match.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` without its match.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${name:?message}` or `${name?message}` with the variable unset (or empty with `:`).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The word after `?`, or Docker's default text.
        message: String,
    },
}

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: syntax error in pattern: {pattern}")]
pub struct IgnoreError {
    /// The 1-based line of the pattern.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
}

/// A COPY/ADD source that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern: {0}")]
pub struct GlobError(pub String);
