//! The server's own records of asynchronous jobs (`$export`): kept by the store beside the FHIR
//! data, never part of it (no search, history or count sees them).
//!
//! A record is an opaque JSON text the engine reads and writes whole, with a version number that
//! works as a resource's does: a put of version `n` succeeds only if the stored version is
//! `n - 1` (0: no record), so two replicas updating one job (taking it over, checkpointing its
//! progress) never overwrite each other unseen.

/// One job's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Unique among every job of the store.
    pub id: String,
    /// What the job does (`export`); [`super::Store::jobs`] lists one kind.
    pub kind: String,
    /// 1 for a new record, one more at each update.
    pub version: u64,
    /// The job's state, as the engine wrote it.
    pub body: String,
}

/// The error of a store that keeps no job records.
pub(crate) fn unsupported(kind: &str) -> super::StoreError {
    super::StoreError::Unsupported(format!(
        "the `{kind}` store keeps no job records: asynchronous operations are not available on it"
    ))
}
