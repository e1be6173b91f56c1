//! The one error type of the benchmark tool: everything that stops a run early.

use std::path::PathBuf;

/// Why a benchmark run could not go on. Failed requests during a measurement are not errors:
/// they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("i/o on `{path}`: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("http: {0}")]
    Http(String),
    #[error("server: {0}")]
    Server(String),
    #[error("invalid argument: {0}")]
    Usage(String),
    #[error("dataset: {0}")]
    Dataset(String),
}

impl BenchError {
    /// An i/o error with the path it happened on.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::File { path, source }
    }
}

impl From<hyper::Error> for BenchError {
    fn from(e: hyper::Error) -> Self {
        Self::Http(e.to_string())
    }
}

impl From<hyper::http::Error> for BenchError {
    fn from(e: hyper::http::Error) -> Self {
        Self::Http(e.to_string())
    }
}
