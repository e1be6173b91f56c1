//! The crate's one error type, and how it maps to the engine's [`StoreError`].

use fhirgate_engine::storage::StoreError;

/// What can go wrong in the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL failed or could not be reached.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("postgres migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL is not a `postgres://` or `postgresql://` URL.
    #[error("not a postgres url: `{0}` (expected `postgres://` or `postgresql://`)")]
    Url(String),
    /// A write's version precondition did not hold.
    #[error("version conflict on `{resource_type}/{id}`: expected current version {expected}, found {found}")]
    VersionConflict { resource_type: String, id: String, expected: u64, found: u64 },
    /// The engine asked for something the store cannot represent (version 0, an instant out of
    /// range...): a bug upstream, not a user error.
    #[error("invalid request to the postgres store: {0}")]
    Invalid(String),
    /// A stored row makes no sense.
    #[error("corrupt postgres row: {0}")]
    Corrupt(String),
    /// A search the SQL translation cannot express.
    #[error("{0}")]
    Unsupported(String),
    /// Guard `n` of a batch matched a resource; nothing was written.
    #[error("guard {0} of the batch matched a resource")]
    GuardMatched(usize),
}

impl Error {
    /// The SQLSTATE of a database error, if this is one.
    pub(crate) fn sqlstate(&self) -> Option<String> {
        match self {
            Self::Postgres(sqlx::Error::Database(db)) => db.code().map(|code| code.into_owned()),
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
            Error::Postgres(
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_),
            )
            | Error::Invalid(_)
            | Error::Corrupt(_) => Self::Corrupt(error.to_string()),
            Error::Unsupported(message) => Self::Unsupported(message),
            Error::GuardMatched(n) => Self::GuardMatched(n),
            Error::Postgres(_) | Error::Migrate(_) | Error::Url(_) => Self::Unavailable(error.to_string()),
        }
    }
}
