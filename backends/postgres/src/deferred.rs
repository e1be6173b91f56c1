//! The search indexes an initial load into an empty store sets aside and builds at its end
//! ([`Store::load_begins`], [`Store::load_ends`]), as on SQLite (fhirgate-sqlite's `deferred.rs`
//! tells why): a load then appends to the search tables, and `CREATE INDEX` builds each index
//! in one sorted pass (on several workers, `max_parallel_maintenance_workers`).
//!
//! Only an empty store's indexes (no `resource_current` row) are set aside. Meanwhile every
//! answer stays right: the planner scans the tables instead, and a write that replaces a
//! resource's search rows finds them by scanning (slow, not wrong). What is set aside is recorded
//! in `deferred_index` in the transaction that drops it; each index is built in the transaction
//! that removes its record. Replicas take turns through a transaction-level advisory lock. A
//! load a crash ended leaves its indexes recorded: the job's next run (another replica's, after
//! the lease) builds them at its end, and so does any worker's sweep when no initial load runs.
//!
//! [`Store::load_begins`]: fhirgate_engine::storage::Store::load_begins
//! [`Store::load_ends`]: fhirgate_engine::storage::Store::load_ends

use fhirgate_sql::Error;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

/// The advisory lock key of setting aside and building (the bytes of "fgdefer").
const LOCK: i64 = 0x0066_6764_6566_6572;

/// Sets aside the search tables' indexes if the store holds no resource and none are set aside
/// already.
pub(crate) async fn set_aside(pool: &PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    locked(&mut tx).await?;
    let aside: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deferred_index)").fetch_one(&mut *tx).await?;
    let holds: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM resource_current)").fetch_one(&mut *tx).await?;
    if aside || holds {
        return Ok(());
    }
    // Indexes of the search tables that back no constraint (a primary key stays).
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() \
         AND i.tablename LIKE 'search\\_%' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.indexname",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (name, sql) in &indexes {
        sqlx::query("INSERT INTO deferred_index (name, sql) VALUES ($1, $2)")
            .bind(name)
            .bind(sql)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    if !indexes.is_empty() {
        tracing::info!(indexes = indexes.len(), "initial load: search indexes set aside until it ends");
    }
    Ok(())
}

/// Builds one index set aside; `true` if more remain.
pub(crate) async fn build_one(pool: &PgPool) -> Result<bool, Error> {
    // One round trip when nothing is set aside (every sweep asks), before a transaction and a lock.
    if !sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM deferred_index)").fetch_one(pool).await? {
        return Ok(false);
    }
    let mut tx = pool.begin().await?;
    locked(&mut tx).await?;
    let next: Option<(String, String)> =
        sqlx::query_as("SELECT name, sql FROM deferred_index ORDER BY name LIMIT 1").fetch_optional(&mut *tx).await?;
    let Some((name, sql)) = next else { return Ok(false) };
    let started = std::time::Instant::now();
    // However long the build takes: a configured statement timeout is for requests.
    sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await?;
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM deferred_index WHERE name = $1").bind(&name).execute(&mut *tx).await?;
    let more: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deferred_index)").fetch_one(&mut *tx).await?;
    if !more {
        // The load is complete: the planner gets the tables' statistics now rather than when
        // autovacuum next analyses them (until then it plans as for empty tables).
        sqlx::query("ANALYZE").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    tracing::info!(index = %name, seconds = started.elapsed().as_secs_f64(), "search index built");
    Ok(more)
}

/// Waits for any other replica setting aside or building, until the transaction ends.
async fn locked(tx: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(tx).await?;
    Ok(())
}
