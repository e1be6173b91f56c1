//! Search (<https://hl7.org/fhir/R4/search.html>): runs the statements [`translate`] builds from
//! the neutral search expression over the search tables.

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{Keyed, SearchMatch};

use crate::driver::{Driver, KeyedRow};
use crate::instant::version_from_sql;
use crate::{Error, translate};

/// The matches of `query`, sorted, at most `limit`, with their sort key values.
pub async fn search(db: &mut dyn Driver, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, Error> {
    let mut target = target(db).await;
    let rows = loop {
        let select = translate::select(target, Definitions::r4(), query, limit).map_err(|u| Error::Unsupported(u.0))?;
        let rows = if select.walks {
            db.keyed_matches(&select.sql, &select.sort).await
        } else {
            planned_for_its_values(db, &select).await
        };
        match rows {
            Err(e) if gone(&e, &mut target, db) => {}
            rows => break rows?,
        }
    };
    rows.into_iter()
        .map(|((resource_type, id, version), sort)| {
            Ok(Keyed { matched: SearchMatch { resource_type, id, version: version_from_sql(version)? }, sort })
        })
        .collect()
}

/// A general statement's rows, planned for its values; the connection plans once for any
/// values again after it, whether it failed or not (inside a transaction it failed, the
/// transaction's end restores it).
async fn planned_for_its_values(db: &mut dyn Driver, select: &translate::Select) -> Result<Vec<KeyedRow>, Error> {
    db.plan_each_run(true).await?;
    let rows = db.keyed_matches(&select.sql, &select.sort).await;
    let restored = db.plan_each_run(false).await;
    let rows = rows?;
    restored?;
    Ok(rows)
}

/// How many resources match `query` (inside a write's transaction, for guards).
pub async fn count(db: &mut dyn Driver, query: &SearchQuery) -> Result<u64, Error> {
    let mut target = target(db).await;
    let n = loop {
        let sql = translate::count(target, Definitions::r4(), query).map_err(|u| Error::Unsupported(u.0))?;
        match db.integer(&sql).await {
            Err(e) if gone(&e, &mut target, db) => {}
            n => break n?.unwrap_or(0),
        }
    };
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count {n}")))
}

/// What `db`'s statements are built for.
async fn target(db: &mut dyn Driver) -> translate::Target {
    translate::Target { dialect: db.dialect(), value_indexes: db.value_indexes().await }
}

/// Whether `error` is a statement naming a value index that another process has set aside
/// since this one last asked: then `target` names none any more (the search runs again, once).
fn gone(error: &Error, target: &mut translate::Target, db: &mut dyn Driver) -> bool {
    if !target.value_indexes || !error.to_string().contains("no such index") {
        return false;
    }
    db.value_indexes_gone();
    target.value_indexes = false;
    true
}
