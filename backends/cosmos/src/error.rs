//! The Cosmos store's errors, and how they become the engine's [`StoreError`]s.

use std::time::Duration;

use azure_data_cosmos::CosmosError;
use fhirgate_engine::storage::StoreError;

/// What can go wrong in the Cosmos store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Cosmos DB answered with an error status (after the SDK's own retries, throttling
    /// included).
    #[error("Cosmos DB answered {status}: {message}")]
    Service { status: u16, message: String, retry_after: Option<Duration> },
    /// The configuration cannot work (missing setting, bad endpoint, credential that cannot
    /// be built).
    #[error("{0}")]
    Config(String),
    /// The database or container is missing and the store may not create it.
    #[error("{0}")]
    Missing(String),
    /// A stored document makes no sense.
    #[error("{0}")]
    Corrupt(String),
    /// Something this store cannot do (a transaction Cosmos DB cannot make atomic, a search
    /// it cannot express).
    #[error("{0}")]
    Unsupported(String),
    /// Another transaction holds a resource or a guard this write needs (partitioned layout): the
    /// write is tried again, and answers 503 if it keeps losing.
    #[error("{0}")]
    Contended(String),
    /// The test hook stopped the writer before this protocol step, as if its process died.
    #[error("crashed (test hook) before `{0}`")]
    Crashed(&'static str),
    /// A store error passed through unchanged (version conflicts, matched guards).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CosmosError> for Error {
    fn from(error: CosmosError) -> Self {
        let status = u16::from(error.status().status_code());
        let retry_after = error.response().and_then(|r| r.headers().retry_after_ms).map(Duration::from_millis);
        Self::Service { status, message: error.to_string(), retry_after }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::Corrupt(format!("a Cosmos DB document does not decode: {error}"))
    }
}

impl Error {
    /// The HTTP status of a service error.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        match error {
            Error::Store(e) => e,
            Error::Unsupported(m) => Self::Unsupported(m),
            Error::Corrupt(m) => Self::Corrupt(m),
            Error::Service { status: 408, message, .. } => Self::Timeout(message),
            Error::Service { status: 413, message, .. } => Self::Unsupported(format!(
                "the writes are larger than Cosmos DB accepts in one transactional batch (2 MB): {message}"
            )),
            // Throttled beyond the retry budget, unreachable, or any other service failure: the
            // request can be tried again later (503 with Retry-After).
            e @ (Error::Service { .. }
            | Error::Config(_)
            | Error::Missing(_)
            | Error::Contended(_)
            | Error::Crashed(_)) => Self::Unavailable(e.to_string()),
        }
    }
}
