//! The one error type of the relational stores, and how it maps to the engine's [`StoreError`].

use fhirgate_engine::storage::{StoreError, Write};

/// What can go wrong in a relational store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database failed on a connection the backend runs itself, outside sqlx (SQLite's
    /// readers on the calling thread).
    #[error("database: {0}")]
    Driver(String),
    /// The schema could not be brought up to date.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store could not be opened as configured (a URL of another store, a directory that
    /// cannot be made...).
    #[error("{0}")]
    Open(String),
    /// A write's version precondition did not hold.
    #[error("version conflict on `{resource_type}/{id}`: expected current version {expected}, found {found}")]
    VersionConflict { resource_type: String, id: String, expected: u64, found: u64 },
    /// The engine asked for something the store cannot represent (version 0, an instant out of
    /// range...): a bug upstream, not a user error.
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// A stored row makes no sense.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A search the SQL translation cannot express.
    #[error("{0}")]
    Unsupported(String),
    /// A write committed together with others (SQLite's group commit) did not complete: the
    /// group's transaction failed, or the task running it was stopped. Nothing of it is stored.
    #[error("database: the shared commit failed: {0}")]
    GroupFailed(String),
    /// Guard `n` of a batch matched a resource; nothing was written.
    #[error("guard {0} of the batch matched a resource")]
    GuardMatched(usize),
}

impl Error {
    /// The version conflict of `write`: the store holds `found` where it expected `expected`.
    pub fn conflict(write: &Write, expected: u64, found: u64) -> Self {
        Self::VersionConflict {
            resource_type: write.version.resource_type.clone(),
            id: write.version.id.clone(),
            expected,
            found,
        }
    }

    /// The SQLSTATE (or SQLite's extended result code) of a database error, if this is one.
    pub fn code(&self) -> Option<String> {
        match self {
            Self::Database(sqlx::Error::Database(db)) => db.code().map(|code| code.into_owned()),
            _ => None,
        }
    }
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        match error {
            Error::VersionConflict { resource_type, id, expected, found } => {
                Self::VersionConflict { resource_type, id, expected, found }
            }
            Error::Database(
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_),
            )
            | Error::Invalid(_)
            | Error::Corrupt(_) => Self::Corrupt(error.to_string()),
            Error::Unsupported(message) => Self::Unsupported(message),
            Error::GuardMatched(n) => Self::GuardMatched(n),
            Error::Database(_) | Error::Driver(_) | Error::Migrate(_) | Error::Open(_) | Error::GroupFailed(_) => {
                Self::Unavailable(error.to_string())
            }
        }
    }
}
