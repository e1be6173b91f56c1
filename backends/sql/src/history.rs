//! history at instance, type and system level, with `_since`, `_at`, paging and snapshots
//! (<https://hl7.org/fhir/R4/http.html#history>).
//!
//! The snapshot is `resource_version.pos`. Each store makes positions commit-ordered (SQLite: a
//! single writer; PostgreSQL: a lock held from drawing a position to committing), so "every row
//! with `pos <= snapshot`" is exactly what the store held at that moment.

use fhirgate_engine::storage::{HistoryPage, HistoryQuery};

use crate::Error;
use crate::bind::{Bind, Binder, Sql};
use crate::driver::Driver;
use crate::instant::{millis_ceil, millis_floor, version_from_sql};
use crate::read::{COLUMNS, decoded};

/// One page of history, newest first, with the total inside the snapshot.
pub async fn page(db: &mut dyn Driver, query: &HistoryQuery) -> Result<HistoryPage, Error> {
    let snapshot = match query.snapshot {
        Some(snapshot) => snapshot,
        None => {
            // The newest position of what this history lists (an instance's, a type's, all):
            // later writes to it get higher positions all the same, and the statement stays
            // on the rows it pages (on a distributed table, one shard for an instance).
            let mut b = Binder::new(db.dialect());
            let mut text = "SELECT COALESCE(MAX(v.pos), 0) FROM resource_version v WHERE 1 = 1".to_owned();
            if let Some(resource_type) = &query.resource_type {
                text.push_str(&format!(" AND v.resource_type = {}", b.text(resource_type)));
            }
            if let Some(id) = &query.id {
                text.push_str(&format!(" AND v.id = {}", b.text(id)));
            }
            let max = db.integer(&Sql { text, binds: b.binds }).await?.unwrap_or(0);
            u64::try_from(max).map_err(|_| Error::Corrupt(format!("write position `{max}` is negative")))?
        }
    };

    let mut b = Binder::new(db.dialect());
    let filter = filter(&mut b, query, snapshot)?;
    let count = Sql { text: format!("SELECT COUNT(*) FROM resource_version v WHERE {filter}"), binds: b.binds.clone() };
    let total = version_from_sql(db.integer(&count).await?.unwrap_or(0))?;

    let limit = b.bind(Bind::Int(i64::from(query.count)));
    let offset = b.bind(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    let text = format!(
        "SELECT {COLUMNS} FROM resource_version v WHERE {filter} ORDER BY v.pos DESC LIMIT {limit} OFFSET {offset}"
    );
    let versions = decoded(db, &Sql { text, binds: b.binds }).await?;
    Ok(HistoryPage { versions, total, snapshot })
}

/// The `WHERE` condition of a history query, shared by the count and the page.
fn filter(b: &mut Binder, query: &HistoryQuery, snapshot: u64) -> Result<String, Error> {
    let snapshot = b.bind(Bind::Int(i64::try_from(snapshot).unwrap_or(i64::MAX)));
    let mut sql = format!("v.pos <= {snapshot}");
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
             AND n.pos <= {snapshot} AND n.last_updated <= {at})"
        ));
    }
    Ok(sql)
}
