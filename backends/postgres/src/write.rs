//! Applying a batch of writes atomically, with each write's version precondition
//! (create, update, delete and transaction all end here; <https://hl7.org/fhir/R4/http.html#concurrency>).
//!
//! One transaction per batch, in two phases:
//! 1. lock: for each resource of the batch, in sorted order (so two batches never wait on each
//!    other in a cycle), make sure a `resource_current` row exists and lock it with
//!    `SELECT ... FOR UPDATE`; then check every precondition, in batch order, against the locked
//!    versions. Writers of different resources do not wait for each other here.
//! 2. append: take the global write-position lock (a transaction-level advisory lock, released
//!    by the commit), insert the versions (which draws their `pos`) and index entries, move
//!    `resource_current` on, commit. Holding that lock from drawing a `pos` to committing is
//!    what makes `pos` commit-ordered, so history snapshots are stable; it is the only part of
//!    a write that is serialised.
//!
//! Deadlocks and serialisation failures (which the sorted locking should prevent) are retried a
//! few times, then reported as a version conflict, never as an outage.

use std::collections::HashMap;

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Dialect, rows};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::Error;
use crate::instant::{millis_floor, version_from_sql, version_to_sql};

/// The key of the advisory lock that orders write positions ("fhirgate" in ASCII).
const WRITE_POSITION_LOCK: i64 = 0x6668_6972_6761_7465;
/// How many times a batch is tried when PostgreSQL aborts it for a deadlock or serialisation
/// failure.
const ATTEMPTS: u32 = 5;
/// SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
const RETRYABLE: [&str; 2] = ["40001", "40P01"];
/// SQLSTATE unique_violation: a version already stored (only if something bypassed the locks).
const UNIQUE_VIOLATION: &str = "23505";

/// Stores every write or none.
pub(crate) async fn transact(pool: &PgPool, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut attempt = 1;
    loop {
        match attempt_once(pool, &writes, guards).await {
            Err(error) if error.sqlstate().is_some_and(|code| RETRYABLE.contains(&code.as_str())) => {
                if attempt >= ATTEMPTS {
                    tracing::warn!(%error, attempt, "postgres write kept failing; reporting a conflict");
                    return Err(gave_up(pool, &writes).await);
                }
                tracing::debug!(%error, attempt, "postgres write aborted; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One try at a batch, in one transaction (rolled back when dropped uncommitted).
async fn attempt_once(pool: &PgPool, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    check_guards(&mut tx, guards).await?;
    let mut current = lock(&mut tx, writes).await?;
    for write in writes {
        let v = &write.version;
        let Some(expected) = v.version.checked_sub(1) else {
            return Err(Error::Invalid(format!("version 0 of `{}/{}`", v.resource_type, v.id)));
        };
        let found = current.get(&(v.resource_type.as_str(), v.id.as_str())).copied().unwrap_or(0);
        if found != expected {
            return Err(conflict(write, expected, found));
        }
        current.insert((v.resource_type.as_str(), v.id.as_str()), v.version);
    }

    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_POSITION_LOCK).execute(&mut *tx).await?;
    for write in writes {
        append(&mut tx, write).await?;
    }
    for ((resource_type, id), version) in current {
        sqlx::query("UPDATE resource_current SET version = $3 WHERE resource_type = $1 AND id = $2")
            .bind(resource_type)
            .bind(id)
            .bind(version_to_sql(version)?)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes a transaction-level advisory lock per guard key (in sorted order, so guarded batches
/// never wait on each other in a cycle), then checks that no guard matches. The lock is held to
/// commit, and each check is a new statement, so it sees whatever an earlier holder committed:
/// two batches guarded by the same criteria cannot both find nothing and both write.
async fn check_guards(conn: &mut PgConnection, guards: &[Guard]) -> Result<(), Error> {
    let mut keys: Vec<&str> = guards.iter().map(|g| g.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *conn).await?;
    }
    for (n, guard) in guards.iter().enumerate() {
        if crate::search::count_on(&mut *conn, &guard.query).await? > 0 {
            return Err(Error::GuardMatched(n));
        }
    }
    Ok(())
}

/// Locks the `resource_current` row of every resource the batch writes, in sorted order, and
/// returns their current versions (0 for a resource that never existed).
async fn lock<'w>(conn: &mut PgConnection, writes: &'w [Write]) -> Result<HashMap<(&'w str, &'w str), u64>, Error> {
    let mut keys: Vec<(&str, &str)> =
        writes.iter().map(|w| (w.version.resource_type.as_str(), w.version.id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut current = HashMap::with_capacity(keys.len());
    for (resource_type, id) in keys {
        // A concurrent creator's uncommitted row makes this wait for its outcome, then do nothing.
        sqlx::query(
            "INSERT INTO resource_current (resource_type, id, version) VALUES ($1, $2, 0) \
             ON CONFLICT (resource_type, id) DO NOTHING",
        )
        .bind(resource_type)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM resource_current WHERE resource_type = $1 AND id = $2 FOR UPDATE")
                .bind(resource_type)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
        current.insert((resource_type, id), version_from_sql(version)?);
    }
    Ok(current)
}

/// Inserts one version and its index entries (one statement each).
async fn append(conn: &mut PgConnection, write: &Write) -> Result<(), Error> {
    let v = &write.version;
    let pos: i64 = sqlx::query_scalar(
        "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING pos",
    )
    .bind(&v.resource_type)
    .bind(&v.id)
    .bind(version_to_sql(v.version)?)
    .bind(millis_floor(v.last_updated)?)
    .bind(v.kind.code())
    .bind(v.json.as_deref())
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::from)
    .map_err(|error| match error.sqlstate().as_deref() {
        Some(UNIQUE_VIOLATION) => conflict(write, v.version.saturating_sub(1), v.version),
        _ => error,
    })?;
    search_rows(conn, write).await?;
    if write.index.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(write.index.len());
    let mut params = Vec::with_capacity(write.index.len());
    let mut values = Vec::with_capacity(write.index.len());
    for (seq, entry) in (0_i32..).zip(&write.index) {
        let value = serde_json::to_string(&entry.value)
            .map_err(|e| Error::Invalid(format!("index entry `{}` is not serialisable: {e}", entry.param)))?;
        seqs.push(seq);
        params.push(entry.param.as_str());
        values.push(value);
    }
    sqlx::query(
        "INSERT INTO index_entry (pos, seq, param, value) \
         SELECT $1, e.seq, e.param, e.value FROM UNNEST($2::integer[], $3::text[], $4::text[]) AS e(seq, param, value)",
    )
    .bind(pos)
    .bind(seqs)
    .bind(params)
    .bind(values)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Replaces the resource's rows in the search tables with those of its new current version.
async fn search_rows(conn: &mut PgConnection, write: &Write) -> Result<(), Error> {
    let v = &write.version;
    let statements = rows::replace(Dialect::Postgres, write, version_to_sql(v.version)?, millis_floor(v.last_updated)?);
    for statement in &statements {
        let arguments = crate::search::arguments(statement)?;
        sqlx::query_with(AssertSqlSafe(statement.text.as_str()), arguments).execute(&mut *conn).await?;
    }
    Ok(())
}

fn conflict(write: &Write, expected: u64, found: u64) -> Error {
    Error::VersionConflict {
        resource_type: write.version.resource_type.clone(),
        id: write.version.id.clone(),
        expected,
        found,
    }
}

/// The conflict to report after the last retry: the first write whose precondition does not
/// hold now (or the first write, with what is current now, if they all hold).
async fn gave_up(pool: &PgPool, writes: &[Write]) -> Error {
    let mut first = None;
    for write in writes {
        let v = &write.version;
        let expected = v.version.saturating_sub(1);
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM resource_version WHERE resource_type = $1 AND id = $2",
        )
        .bind(&v.resource_type)
        .bind(&v.id)
        .fetch_one(pool)
        .await
        .ok();
        let found = found.and_then(|f| u64::try_from(f).ok()).unwrap_or(expected);
        if found != expected {
            return conflict(write, expected, found);
        }
        first.get_or_insert((write, expected, found));
    }
    match first {
        Some((write, expected, found)) => conflict(write, expected, found),
        None => Error::Invalid("empty batch".into()),
    }
}
