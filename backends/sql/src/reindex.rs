//! Reindexing a current version: its index entries replaced (a custom search parameter was
//! added or changed), without a new version. Runs in one transaction that holds the resource's
//! `search_current` row (PostgreSQL: `FOR UPDATE`; SQLite: its write lock, taken at `BEGIN
//! IMMEDIATE` as the writer thread's groups take it), so a write racing
//! with it either waits or makes the reindex a no-op: rows of a newer version are never replaced.

use fhirgate_engine::storage::IndexEntry;
use sqlx::Pool;

use crate::bind::{Bind, Binder, Dialect, Sql};
use crate::driver::{Dialected, Driver};
use crate::instant::version_to_sql;
use crate::{Error, rows};

/// Replaces the index of `resource_type/id` version `version` by `index` if that version is
/// still current; whether it was.
pub async fn reindex<DB>(
    pool: &Pool<DB>,
    resource_type: &str,
    id: &str,
    version: u64,
    index: &[IndexEntry],
) -> Result<bool, Error>
where
    DB: Dialected,
    DB::Connection: Driver,
{
    let number = version_to_sql(version)?;
    let entries = serde_json::to_string(index)
        .map_err(|e| Error::Invalid(format!("the index of `{resource_type}/{id}` is not serialisable: {e}")))?;
    // A deferred SQLite transaction that read before the writer thread committed could not
    // upgrade to a write (SQLITE_BUSY_SNAPSHOT): take the write lock before the check.
    let begin = if DB::DIALECT == Dialect::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let mut tx = pool.begin_with(begin).await?;
    let db: &mut dyn Driver = &mut *tx;
    let dialect = db.dialect();
    let mut b = Binder::new(dialect);
    let lock = if dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
    let text = format!(
        "SELECT version FROM search_current WHERE resource_type = {} AND id = {}{lock}",
        b.text(resource_type),
        b.text(id)
    );
    if db.integer(&Sql { text, binds: b.binds }).await? != Some(number) {
        return Ok(false);
    }
    let mut b = Binder::new(dialect);
    let text = format!(
        "UPDATE resource_version SET index_entries = {} WHERE resource_type = {} AND id = {} AND version = {}",
        b.bind(Bind::Text(entries)),
        b.text(resource_type),
        b.text(id),
        b.bind(Bind::Int(number))
    );
    db.execute(&Sql { text, binds: b.binds }).await?;
    for statement in rows::reindexed(dialect, resource_type, id, index) {
        db.execute(&statement).await?;
    }
    tx.commit().await?;
    Ok(true)
}
