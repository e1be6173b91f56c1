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

/// Checks the guards, then each write's precondition against what is stored, and inserts it.
async fn apply(db: &mut dyn Driver, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    write::check_guards(db, guards).await?;
    for w in writes {
        let expected = write::expected(w)?;
        let found = write::stored_version(db, &w.version.resource_type, &w.version.id).await?;
        if found != expected {
            return Err(Error::conflict(w, expected, found));
        }
        write::append(db, w).await?;
    }
    Ok(())
}
