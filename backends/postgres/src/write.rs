//! Applying a batch of writes atomically on PostgreSQL, with each write's version precondition
//! (create, update, delete and transaction all end here; <https://hl7.org/fhir/R4/http.html#concurrency>).
//! The steps both stores share are `fhirgate_sql::write`'s; this file is how they are made safe
//! with many writers on many servers.
//!
//! One transaction per batch, in two phases:
//! 1. lock: the `resource_current` row of every resource of the batch, in sorted order (so two
//!    batches never wait on each other in a cycle), is inserted or, if there, locked
//!    (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, one statement for the batch); then
//!    every precondition is checked, in batch order, against the locked versions. Writers of
//!    different resources do not wait for each other here.
//! 2. append: draw the versions' write positions from their buckets (`src/position.rs`): one
//!    `UPDATE write_bucket ... RETURNING pos` per bucket the batch writes, in bucket order,
//!    which locks that bucket's row until the commit; insert the versions with their bucket and
//!    position and their search rows, move `resource_current` on, commit. Holding a bucket's
//!    row from drawing its positions to committing makes positions commit-ordered within the
//!    bucket, so a snapshot (every bucket's last position) never gains a version; writers of
//!    resources in different buckets do not wait for each other, and no sequence or lock is
//!    shared by every write. A batch of one resource draws its position first and writes the
//!    rest as one statement (`fhirgate_sql::write`); a batch of many (a transaction Bundle,
//!    whose resources fall in every bucket) writes a statement per table for all of them
//!    (`bulk.rs`) and draws the positions just before its versions go in, so that other
//!    batches wait on its buckets for that and the commit only.
//!
//! Conditional creates are serialised by a row lock too: a guard's row in `write_guard` (keyed
//! by a hash of its criteria) is inserted if missing and locked (`SELECT ... FOR UPDATE`)
//! before the guard is checked. Locks are taken in one order — guard rows, then resource rows,
//! then bucket rows, each sorted — so two batches never wait on each other in a cycle.
//!
//! Deadlocks and serialisation failures (which the sorted locking should prevent) are retried a
//! few times, then reported as a version conflict, never as an outage.

use std::collections::{BTreeMap, HashMap};

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Bind, Error, Sql, version_to_sql, write};
use sqlx::{PgConnection, PgPool};

use crate::{bulk, position};
/// How many times a batch is tried when PostgreSQL aborts it for a deadlock or serialisation
/// failure.
const ATTEMPTS: u32 = 5;
/// SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
const RETRYABLE: [&str; 2] = ["40001", "40P01"];
/// SQLSTATE unique_violation: a version already stored (only if something bypassed the locks).
const UNIQUE_VIOLATION: &str = "23505";

/// Stores every write or none.
pub(crate) async fn transact(pool: &PgPool, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut attempt = 1;
    loop {
        match attempt_once(pool, writes, guards).await {
            Err(error) if error.code().is_some_and(|code| RETRYABLE.contains(&code.as_str())) => {
                if attempt >= ATTEMPTS {
                    tracing::warn!(%error, attempt, "postgres write kept failing; reporting a conflict");
                    return Err(gave_up(pool, writes).await);
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
    lock_guards(&mut tx, guards).await?;
    write::check_guards(&mut *tx, guards).await?;
    let mut current = lock(&mut tx, writes).await?;
    for w in writes {
        let v = &w.version;
        let expected = write::expected(w)?;
        let found = current.get(&(v.resource_type.as_str(), v.id.as_str())).copied().unwrap_or(0);
        if found != expected {
            return Err(Error::conflict(w, expected, found));
        }
        current.insert((v.resource_type.as_str(), v.id.as_str()), v.version);
    }

    append(&mut tx, writes, &current).await.map_err(|error| match error.code().as_deref() {
        // Only if something bypassed the locks; the batch's first write stands for it.
        Some(UNIQUE_VIOLATION) => {
            let w = &writes[0];
            Error::conflict(w, w.version.version.saturating_sub(1), w.version.version)
        }
        _ => error,
    })?;
    tx.commit().await?;
    Ok(())
}

/// Draws the write positions of `writes` and inserts their versions and search rows; moves the
/// `resource_current` rows to the versions in `current`.
async fn append(conn: &mut PgConnection, writes: &[Write], current: &HashMap<(&str, &str), u64>) -> Result<(), Error> {
    if writes.len() > 1 && current.len() == writes.len() {
        // Many resources (a transaction Bundle): a statement per table for all of them, and the
        // positions drawn last, so the buckets' rows, which every batch writing to them waits
        // for, are held while the versions go in and the commit, not while everything does.
        bulk::search_rows(conn, writes).await?;
        bulk::move_current(conn, current).await?;
        let positions = positions(conn, writes).await?;
        return bulk::versions(conn, writes, &positions).await;
    }
    // One resource (or one more than once, in order): its bucket's positions drawn first, then
    // its version, rows and move as one statement.
    let positions = positions(conn, writes).await?;
    let mut moves = Vec::with_capacity(current.len());
    for (&(resource_type, id), &version) in current {
        moves.push(Sql {
            text: "UPDATE resource_current SET version = $1 WHERE resource_type = $2 AND id = $3".into(),
            binds: vec![Bind::Int(version_to_sql(version)?), Bind::Text(resource_type.into()), Bind::Text(id.into())],
        });
    }
    write::append_then(conn, writes.iter().zip(positions.into_iter().map(Some)), moves).await
}

/// The write position of each of `writes` (bucket, position), in batch order: per bucket, in
/// bucket order, the bucket's row is moved on by the number of versions it gets (which locks it
/// until the commit) and they take the positions in between, in batch order.
pub(crate) async fn positions(conn: &mut PgConnection, writes: &[Write]) -> Result<Vec<(i64, i64)>, Error> {
    let mut by_bucket: BTreeMap<i16, Vec<usize>> = BTreeMap::new();
    for (n, w) in writes.iter().enumerate() {
        by_bucket.entry(position::bucket(&w.version.resource_type, &w.version.id)).or_default().push(n);
    }
    let mut positions = vec![(0, 0); writes.len()];
    for (bucket, members) in by_bucket {
        let drawn = i64::try_from(members.len()).map_err(|_| Error::Invalid("batch too large".into()))?;
        let last: i64 = sqlx::query_scalar("UPDATE write_bucket SET pos = pos + $2 WHERE bucket = $1 RETURNING pos")
            .bind(bucket)
            .bind(drawn)
            .fetch_one(&mut *conn)
            .await?;
        for (k, n) in members.into_iter().enumerate() {
            let k = i64::try_from(k).map_err(|_| Error::Invalid("batch too large".into()))?;
            positions[n] = (i64::from(bucket), last - drawn + 1 + k);
        }
    }
    Ok(positions)
}

/// Locks the `write_guard` row of every guard key (inserting those missing; in sorted order, so
/// guarded batches never wait on each other in a cycle) before the guards are checked. The lock
/// is held to commit, and each check is a new statement, so it sees whatever an earlier holder
/// committed: two batches guarded by the same criteria cannot both find nothing and both write.
/// A batch that finds another's uncommitted row waits for that batch in the `INSERT`.
async fn lock_guards(conn: &mut PgConnection, guards: &[Guard]) -> Result<(), Error> {
    let mut rows: Vec<i64> = guards.iter().map(|g| position::guard_row(&g.key)).collect();
    rows.sort_unstable();
    rows.dedup();
    for row in rows {
        sqlx::query("INSERT INTO write_guard (key_hash) VALUES ($1) ON CONFLICT (key_hash) DO NOTHING")
            .bind(row)
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT key_hash FROM write_guard WHERE key_hash = $1 FOR UPDATE")
            .bind(row)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Locks the `resource_current` row of every resource the batch writes, in sorted order (one
/// statement), and returns their current versions (0 for a resource that never existed).
async fn lock<'w>(conn: &mut PgConnection, writes: &'w [Write]) -> Result<HashMap<(&'w str, &'w str), u64>, Error> {
    let mut keys: Vec<(&str, &str)> =
        writes.iter().map(|w| (w.version.resource_type.as_str(), w.version.id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut current = HashMap::with_capacity(keys.len());
    for (resource_type, id, version) in bulk::lock_current(conn, &keys).await? {
        let n = keys
            .binary_search(&(resource_type.as_str(), id.as_str()))
            .map_err(|_| Error::Invalid(format!("`{resource_type}/{id}` was locked but not asked for")))?;
        current.insert(keys[n], version);
    }
    Ok(current)
}

/// The conflict to report after the last retry: the first write whose precondition does not
/// hold now (or the first write, with what is current now, if they all hold).
async fn gave_up(pool: &PgPool, writes: &[Write]) -> Error {
    let mut conn = pool.acquire().await.ok();
    let mut first = None;
    for w in writes {
        let expected = w.version.version.saturating_sub(1);
        let found = match conn.as_deref_mut() {
            Some(conn) => write::stored_version(conn, &w.version.resource_type, &w.version.id).await.ok(),
            None => None,
        };
        let found = found.unwrap_or(expected);
        if found != expected {
            return Error::conflict(w, expected, found);
        }
        first.get_or_insert((w, expected, found));
    }
    match first {
        Some((w, expected, found)) => Error::conflict(w, expected, found),
        None => Error::Invalid("empty batch".into()),
    }
}
