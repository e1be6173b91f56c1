//! The one error type of the crate: everything that stops a script from being loaded or a run
//! from being written. Failed assertions are results, not errors (see `run::result`).

use std::path::PathBuf;

/// What went wrong outside the assertions themselves.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// JSON that does not parse.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// XML that does not parse or is not FHIR XML.
    #[error("invalid FHIR XML: {0}")]
    Xml(String),
    /// A file that is not a TestScript, or a TestScript the runner cannot use.
    #[error("invalid TestScript: {0}")]
    Script(String),
    /// An XPath expression outside the subset the runner translates to FHIRPath.
    #[error("unsupported XPath `{0}`")]
    XPath(String),
    /// A FHIRPath expression that does not parse or evaluate.
    #[error("FHIRPath `{expression}`: {message}")]
    FhirPath { expression: String, message: String },
    /// The HTTP exchange itself failed (connection refused, timeout, bad URL).
    #[error("HTTP: {0}")]
    Http(String),
    /// The bearer token command failed.
    #[error("token command: {0}")]
    Token(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
