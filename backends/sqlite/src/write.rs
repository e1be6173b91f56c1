//! Applying a batch of writes atomically on SQLite (create, update, delete and transaction all
//! end here; <https://hl7.org/fhir/R4/http.html#concurrency>); the steps themselves are
//! `fhirgate_sql::write`'s.

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Driver, Error, write};
use sqlx::SqlitePool;

/// Stores every write or none. `BEGIN IMMEDIATE` takes SQLite's write lock before the first
/// check, so no other writer (in this process or another) can slip in between a check and its
/// insert; in this process writers already queue for the pool's single connection. The
/// positions the inserts draw are therefore in commit order, and guards, checked first inside
/// the same transaction, still hold at the commit.
pub(crate) async fn transact(pool: &SqlitePool, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    match apply(&mut *tx, writes, guards).await {
        Ok(()) => Ok(tx.commit().await?),
        Err(error) => {
            tx.rollback().await?;
            Err(error)
        }
    }
}

/// Checks the guards, then each write's precondition against what is stored (read for the whole
/// batch at once; a later write of the same resource expects the version an earlier one
/// wrote), and inserts them all.
async fn apply(db: &mut dyn Driver, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    write::check_guards(db, guards).await?;
    let mut current = write::stored_versions(db, writes).await?;
    for w in writes {
        let expected = write::expected(w)?;
        let key = (w.version.resource_type.clone(), w.version.id.clone());
        let found = current.get(&key).copied().unwrap_or(0);
        if found != expected {
            return Err(Error::conflict(w, expected, found));
        }
        current.insert(key, w.version.version);
    }
    write::append_all(db, writes).await
}
