//! The one error type of FHIRPath parsing and evaluation.

use std::fmt;

/// A FHIRPath syntax or evaluation error, with a lowercase message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirPathError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Whether the expression could not be parsed or failed while evaluating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Evaluation,
    /// A function or feature this implementation does not provide.
    Unsupported,
    /// The evaluation used up its work or time budget ([`super::Budget`]), or the expression
    /// nests deeper than evaluation allows.
    Budget,
}

impl FhirPathError {
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Syntax, message: message.into() }
    }

    pub(crate) fn eval(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Evaluation, message: message.into() }
    }

    pub(crate) fn budget(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Budget, message: message.into() }
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Unsupported, message: message.into() }
    }
}

impl fmt::Display for FhirPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Syntax => "fhirpath syntax error",
            ErrorKind::Evaluation => "fhirpath evaluation error",
            ErrorKind::Unsupported => "fhirpath unsupported",
            ErrorKind::Budget => "fhirpath too costly",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for FhirPathError {}

/// Result of FHIRPath operations.
pub type Result<T> = std::result::Result<T, FhirPathError>;
