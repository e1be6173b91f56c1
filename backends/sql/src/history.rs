//! history at instance, type and system level, with `_since`, `_at`, paging and snapshots
//! (<https://hl7.org/fhir/R4/http.html#history>).
//!
//! A snapshot is where each position bucket's writes stood: a version is inside it when its
//! `pos` is at most its bucket's entry. Each store makes positions commit-ordered within a
//! bucket, so "every version inside the snapshot" is exactly what the store held at that moment,
//! and no later commit ever joins it.
//!
//! - SQLite has one bucket, and its positions are one global order: one file, one writer
//!   thread, so drawing a position (`AUTOINCREMENT`) and committing are never interleaved with
//!   another writer's, at no cost. History is in that order, newest first.
//! - PostgreSQL has 16 buckets (`write_bucket`, migration 0006), so no sequence or lock is shared
//!   by every write (on Citus, by every node). Instance history is in version order; type and
//!   system history in `last_updated` order, then bucket and position: a total order that is
//!   fixed for a fixed snapshot, so `offset` pages neither repeat nor skip.

use fhirgate_engine::storage::{HistoryPage, HistoryQuery, HistorySnapshot};

use crate::Error;
use crate::bind::{Bind, Binder, Dialect, Sql};
use crate::driver::Driver;
use crate::instant::{millis_ceil, millis_floor, version_from_sql};
use crate::read::{COLUMNS, decoded};

/// One page of history, newest first, with the total inside the snapshot.
pub async fn page(db: &mut dyn Driver, query: &HistoryQuery) -> Result<HistoryPage, Error> {
    let snapshot = match &query.snapshot {
        Some(snapshot) => snapshot.clone(),
        None => taken(db, query).await?,
    };

    let mut b = Binder::new(db.dialect());
    let filter = filter(&mut b, db.dialect(), query, &snapshot)?;
    let count = Sql { text: format!("SELECT COUNT(*) FROM resource_version v WHERE {filter}"), binds: b.binds.clone() };
    let total = version_from_sql(db.integer(&count).await?.unwrap_or(0))?;

    let order = match (db.dialect(), &query.id) {
        (_, Some(_)) => "v.version DESC",
        (Dialect::Sqlite, None) => "v.pos DESC",
        (Dialect::Postgres, None) => "v.last_updated DESC, v.bucket DESC, v.pos DESC",
    };
    let limit = b.bind(Bind::Int(i64::from(query.count)));
    let offset = b.bind(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    let text = format!(
        "SELECT {COLUMNS} FROM resource_version v WHERE {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let versions = decoded(db, &Sql { text, binds: b.binds }).await?;
    Ok(HistoryPage { versions, total, snapshot })
}

/// The snapshot of a first page.
async fn taken(db: &mut dyn Driver, query: &HistoryQuery) -> Result<HistorySnapshot, Error> {
    let mut b = Binder::new(db.dialect());
    let text = match (db.dialect(), &query.resource_type, &query.id) {
        // The newest position of each bucket holding a version of the instance: a later write
        // of it waits for the resource's row, then draws a higher position in its bucket; a
        // bucket it has no version in is at 0 (nothing). One shard on Citus.
        (Dialect::Postgres, Some(resource_type), Some(id)) => format!(
            "SELECT CAST(v.bucket AS TEXT), CAST(MAX(v.pos) AS TEXT) FROM resource_version v \
             WHERE v.resource_type = {} AND v.id = {} GROUP BY v.bucket",
            b.text(resource_type),
            b.text(id)
        ),
        // Every bucket's last position: a writer holds its bucket's row until it commits, so
        // what is committed up to these positions is all there will ever be.
        (Dialect::Postgres, ..) => "SELECT CAST(bucket AS TEXT), CAST(pos AS TEXT) FROM write_bucket".to_owned(),
        // The newest position of what this history lists (an instance's, a type's, all): later
        // writes to it get higher positions all the same.
        (Dialect::Sqlite, resource_type, id) => {
            let mut text =
                "SELECT '0', CAST(COALESCE(MAX(v.pos), 0) AS TEXT) FROM resource_version v WHERE 1 = 1".to_owned();
            if let Some(resource_type) = resource_type {
                text.push_str(&format!(" AND v.resource_type = {}", b.text(resource_type)));
            }
            if let Some(id) = id {
                text.push_str(&format!(" AND v.id = {}", b.text(id)));
            }
            text
        }
    };
    let mut positions = Vec::new();
    for (bucket, pos) in db.pairs(&Sql { text, binds: b.binds }).await? {
        let corrupt = || Error::Corrupt(format!("write position `{pos}` of bucket `{bucket}`"));
        let bucket: usize = bucket.parse().map_err(|_| corrupt())?;
        let pos: u64 = pos.parse().map_err(|_| corrupt())?;
        if bucket >= 1024 {
            return Err(corrupt());
        }
        if positions.len() <= bucket {
            positions.resize(bucket + 1, 0);
        }
        positions[bucket] = pos;
    }
    Ok(HistorySnapshot(positions))
}

/// The `WHERE` condition of a history query, shared by the count and the page.
fn filter(b: &mut Binder, dialect: Dialect, query: &HistoryQuery, snapshot: &HistorySnapshot) -> Result<String, Error> {
    let inside = inside(b, dialect, snapshot);
    let mut sql = inside("v");
    if let Some(resource_type) = &query.resource_type {
        sql.push_str(&format!(" AND v.resource_type = {}", b.text(resource_type)));
    }
    if let Some(id) = &query.id {
        sql.push_str(&format!(" AND v.id = {}", b.text(id)));
    }
    if let Some(since) = query.since {
        sql.push_str(&format!(" AND v.last_updated >= {}", b.bind(Bind::Int(millis_ceil(since)?))));
    }
    if let Some(at) = query.at {
        // The version current at `at`: written by then, not a deletion, and no later version of
        // the same resource written by then (within the snapshot).
        let at = b.bind(Bind::Int(millis_floor(at)?));
        sql.push_str(&format!(
            " AND v.last_updated <= {at} AND v.kind <> 'delete' AND NOT EXISTS (SELECT 1 FROM resource_version n \
             WHERE n.resource_type = v.resource_type AND n.id = v.id AND n.version > v.version \
             AND {} AND n.last_updated <= {at})",
            inside("n")
        ));
    }
    Ok(sql)
}

/// The condition "version `alias` is inside `snapshot`", for any alias (its parameters bound
/// once). SQLite has one bucket: `pos <= p`.
fn inside(b: &mut Binder, dialect: Dialect, snapshot: &HistorySnapshot) -> Box<dyn Fn(&str) -> String> {
    let bound = |b: &mut Binder, p: u64| b.bind(Bind::Int(i64::try_from(p).unwrap_or(i64::MAX)));
    match dialect {
        Dialect::Sqlite => {
            let p = bound(b, snapshot.0.first().copied().unwrap_or(0));
            Box::new(move |alias: &str| format!("{alias}.pos <= {p}"))
        }
        Dialect::Postgres => {
            let cases: Vec<String> =
                snapshot.0.iter().enumerate().map(|(n, p)| format!("WHEN {n} THEN {}", bound(b, *p))).collect();
            let cases = cases.join(" ");
            Box::new(move |alias: &str| {
                if cases.is_empty() {
                    "1 = 0".to_owned()
                } else {
                    format!("{alias}.pos <= CASE {alias}.bucket {cases} ELSE -1 END")
                }
            })
        }
    }
}
