//! Applying a batch of writes atomically, with each write's version precondition
//! (create, update, delete and transaction all end here; <https://hl7.org/fhir/R4/http.html#concurrency>).

use fhirgate_engine::storage::{Guard, Write};
use fhirgate_sql::{Dialect, rows};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use crate::Error;
use crate::instant::{millis_floor, version_to_sql};

/// Stores every write or none. `BEGIN IMMEDIATE` takes SQLite's write lock before the first
/// check, so no other writer (in this process or another) can slip in between a check and its
/// insert; in this process writers already queue for the pool's single connection.
/// Guards are checked first, inside the same transaction: with SQLite's single writer nothing
/// can be written between a guard's check and the batch's commit.
pub(crate) async fn transact(pool: &SqlitePool, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (n, guard) in guards.iter().enumerate() {
        if crate::search::count_on(&mut tx, &guard.query).await? > 0 {
            tx.rollback().await?;
            return Err(Error::GuardMatched(n));
        }
    }
    for write in &writes {
        if let Err(error) = apply(&mut tx, write).await {
            tx.rollback().await?;
            return Err(error);
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Checks one write's precondition and inserts its version and index entries.
async fn apply(conn: &mut SqliteConnection, write: &Write) -> Result<(), Error> {
    let v = &write.version;
    let Some(expected) = v.version.checked_sub(1) else {
        return Err(Error::Invalid(format!("version 0 of `{}/{}`", v.resource_type, v.id)));
    };
    let found: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(version), 0) FROM resource_version WHERE resource_type = ?1 AND id = ?2",
    )
    .bind(&v.resource_type)
    .bind(&v.id)
    .fetch_one(&mut *conn)
    .await?;
    let found = crate::instant::version_from_sql(found)?;
    if found != expected {
        return Err(Error::VersionConflict {
            resource_type: v.resource_type.clone(),
            id: v.id.clone(),
            expected,
            found,
        });
    }
    let pos: i64 = sqlx::query_scalar(
        "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING pos",
    )
    .bind(&v.resource_type)
    .bind(&v.id)
    .bind(version_to_sql(v.version)?)
    .bind(millis_floor(v.last_updated)?)
    .bind(v.kind.code())
    .bind(v.json.as_deref())
    .fetch_one(&mut *conn)
    .await?;
    search_rows(conn, write).await?;
    index_entries(conn, pos, write).await
}

/// Rows of `index_entry` per `INSERT` (4 parameters each, far under SQLite's 32,766).
const ENTRIES_PER_INSERT: usize = 250;

/// The version's index entries, a few statements for all of them: every statement is a round
/// trip to sqlx's SQLite thread, which dominated the ingest profile when it was one per entry.
async fn index_entries(conn: &mut SqliteConnection, pos: i64, write: &Write) -> Result<(), Error> {
    let mut seq = 0_i64;
    for chunk in write.index.chunks(ENTRIES_PER_INSERT) {
        let placeholders = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let text = format!("INSERT INTO index_entry (pos, seq, param, value) VALUES {placeholders}");
        let mut query = sqlx::query(AssertSqlSafe(text));
        for entry in chunk {
            let value = serde_json::to_string(&entry.value)
                .map_err(|e| Error::Invalid(format!("index entry `{}` is not serialisable: {e}", entry.param)))?;
            query = query.bind(pos).bind(seq).bind(&entry.param).bind(value);
            seq += 1;
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces the resource's rows in the search tables with those of its new current version.
async fn search_rows(conn: &mut SqliteConnection, write: &Write) -> Result<(), Error> {
    let v = &write.version;
    let statements = rows::replace(Dialect::Sqlite, write, version_to_sql(v.version)?, millis_floor(v.last_updated)?);
    for statement in &statements {
        let arguments = crate::search::arguments(statement)?;
        sqlx::query_with(AssertSqlSafe(statement.text.as_str()), arguments).execute(&mut *conn).await?;
    }
    Ok(())
}
