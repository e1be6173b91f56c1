//! The crate's one error type, and how it maps to the engine's [`StoreError`].

use std::path::PathBuf;

use fhirgate_engine::storage::StoreError;

/// What can go wrong in the SQLite store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed or could not be reached.
    #[error("sqlite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("sqlite migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database's directory could not be created.
    #[error("cannot create directory `{}`: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// A write's version precondition did not hold.
    #[error("version conflict on `{resource_type}/{id}`: expected current version {expected}, found {found}")]
    VersionConflict { resource_type: String, id: String, expected: u64, found: u64 },
    /// The engine asked for something the store cannot represent (version 0, an instant out of
    /// range...): a bug upstream, not a user error.
    #[error("invalid request to the sqlite store: {0}")]
    Invalid(String),
    /// A stored row makes no sense.
    #[error("corrupt sqlite row: {0}")]
    Corrupt(String),
    /// A search the SQL translation cannot express.
    #[error("{0}")]
    Unsupported(String),
    /// Guard `n` of a batch matched a resource; nothing was written.
    #[error("guard {0} of the batch matched a resource")]
    GuardMatched(usize),
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        match error {
            Error::VersionConflict { resource_type, id, expected, found } => {
                Self::VersionConflict { resource_type, id, expected, found }
            }
            Error::Sqlite(
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_),
            )
            | Error::Invalid(_)
            | Error::Corrupt(_) => Self::Corrupt(error.to_string()),
            Error::Unsupported(message) => Self::Unsupported(message),
            Error::GuardMatched(n) => Self::GuardMatched(n),
            Error::Sqlite(_) | Error::Migrate(_) | Error::CreateDir { .. } => Self::Unavailable(error.to_string()),
        }
    }
}
