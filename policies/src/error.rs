//! The one error enum of the policies crate.

use std::fmt;

/// Where in a policy file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem found in a policy set, with its place when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// What can go wrong loading policies or building a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy set does not parse or does not validate against the schema.
    #[error("invalid policy set:\n{}", list(.0))]
    Invalid(Vec<Problem>),
    /// A policy file or directory could not be read.
    #[error("cannot read `{path}`: {message}")]
    Io { path: String, message: String },
    /// No shipped policy set has this name.
    #[error("unknown policy set `{0}` (shipped: {1})")]
    UnknownSet(String, String),
    /// The built-in schema or a request could not be turned into Cedar (a bug, or bad input).
    #[error("cedar request: {0}")]
    Request(String),
    /// A symbolic proof could not be carried out (solver missing or failing, a policy the
    /// symbolic compiler cannot take).
    #[error("proof: {0}")]
    Proof(String),
    /// A policy test case file is malformed.
    #[error("test case `{file}`: {message}")]
    TestCase { file: String, message: String },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}
