//! An initial load's batch on SQLite (`$import` in `InitialLoad` mode, [`Store::load`]): version
//! 1 of many new resources in one transaction on the writer thread, each row inserted by a
//! single-row statement prepared once per connection and reused for every row of its shape,
//! values bound straight from the writes (no SQL text built per resource, no copies into
//! parameters, no deletes of earlier search rows: a new resource has none).
//!
//! The same rows as `write::group` of the same creates: each version's `resource_version` row
//! (its `index_entries` JSON included), then the `search_current` row and the index rows of
//! every resource, the latter in the order of their (type, id) key so that consecutive rows land
//! in the same pages of the `(resource_type, id, param)` indexes. A resource that exists or
//! existed (a deleted one keeps its versions), or appears twice in the batch, is a version
//! conflict and nothing of the batch is written.
//!
//! [`Store::load`]: fhirgate_engine::storage::Store::load

use std::collections::{HashMap, HashSet};

use fhirgate_engine::storage::{Write, encoding};
use fhirgate_sql::Error;
use fhirgate_sql::rows::{Row, rows};
use rusqlite::Connection;

use crate::readers::{bind_value, failed};

/// Stores every create of `writes` or none, in a transaction of its own: `BEGIN IMMEDIATE`
/// takes the write lock before the existence checks, so no other writer (the job records' sqlx
/// connection, another process) slips in between a check and its insert.
pub(crate) fn load(connection: &Connection, writes: &[Write]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    fhirgate_sql::write::only_creates(writes)?;
    let mut seen = HashSet::with_capacity(writes.len());
    if let Some(twice) = writes.iter().find(|w| !seen.insert((&w.version.resource_type, &w.version.id))) {
        // The second create of the same resource expects version 1.
        return Err(Error::conflict(twice, 0, 1));
    }
    drop(seen);
    crate::deferred::within(connection, || insert(connection, writes))
}

/// The checks and inserts of [`load`], inside its transaction.
fn insert(connection: &Connection, writes: &[Write]) -> Result<(), Error> {
    unclaimed(connection, writes)?;
    let mut version = connection
        .prepare_cached(
            "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json, index_entries) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)",
        )
        .map_err(failed)?;
    let mut times = Vec::with_capacity(writes.len());
    for w in writes {
        let v = &w.version;
        let at = encoding::millis_floor(v.last_updated).ok_or_else(|| {
            Error::Invalid(format!("instant `{}` of `{}/{}` is out of range", v.last_updated, v.resource_type, v.id))
        })?;
        let index = serde_json::to_string(&w.index).map_err(|e| {
            Error::Invalid(format!("the index of `{}/{}` is not serialisable: {e}", v.resource_type, v.id))
        })?;
        version.execute(rusqlite::params![v.resource_type, v.id, at, v.kind.code(), v.json, index]).map_err(failed)?;
        times.push(at);
    }
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_unstable_by_key(|&n| (&writes[n].version.resource_type, &writes[n].version.id));
    let mut current = connection
        .prepare_cached("INSERT INTO search_current (resource_type, id, version, last_updated) VALUES (?1, ?2, 1, ?3)")
        .map_err(failed)?;
    for &n in &order {
        let v = &writes[n].version;
        current.execute(rusqlite::params![v.resource_type, v.id, times[n]]).map_err(failed)?;
    }
    let mut texts = HashMap::new();
    for &n in &order {
        let v = &writes[n].version;
        for row in rows(&writes[n].index) {
            let shape = (row.table, row.columns.iter().map(|c| c.0).collect::<Vec<_>>());
            let text = texts.entry(shape).or_insert_with_key(|(table, names)| insert_text(table, names));
            index_row(connection, text, &v.resource_type, &v.id, &row)?;
        }
    }
    Ok(())
}

/// The single-row `INSERT` of an index row into `table` with value columns `names`.
fn insert_text(table: &str, names: &[&str]) -> String {
    let placeholders: Vec<String> = (4..4 + names.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO {table} (resource_type, id, param, {}) VALUES (?1, ?2, ?3, {})",
        names.join(", "),
        placeholders.join(", ")
    )
}

/// A version conflict for the first write whose resource has a version stored (it exists, or
/// existed and was deleted).
fn unclaimed(connection: &Connection, writes: &[Write]) -> Result<(), Error> {
    let mut newest = connection
        .prepare_cached("SELECT MAX(version) FROM resource_version WHERE resource_type = ?1 AND id = ?2")
        .map_err(failed)?;
    for w in writes {
        let v = &w.version;
        let found: Option<i64> =
            newest.query_row(rusqlite::params![v.resource_type, v.id], |row| row.get(0)).map_err(failed)?;
        if let Some(found) = found {
            return Err(Error::conflict(w, 0, fhirgate_sql::version_from_sql(found)?.max(1)));
        }
    }
    Ok(())
}

/// Inserts one index row of `resource_type/id` with `text`, the single-row statement of its
/// table and columns (prepared on the first row of that shape, then taken from the connection's
/// cache).
fn index_row(connection: &Connection, text: &str, resource_type: &str, id: &str, row: &Row) -> Result<(), Error> {
    let mut statement = connection.prepare_cached(text).map_err(failed)?;
    statement.raw_bind_parameter(1_usize, resource_type).map_err(failed)?;
    statement.raw_bind_parameter(2_usize, id).map_err(failed)?;
    statement.raw_bind_parameter(3_usize, row.param.as_str()).map_err(failed)?;
    for (at, (_, value)) in (4_usize..).zip(&row.columns) {
        bind_value(&mut statement, at, value)?;
    }
    statement.raw_execute().map_err(failed)?;
    Ok(())
}
