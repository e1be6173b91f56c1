//! Search (<https://hl7.org/fhir/R4/search.html>): runs the statements [`translate`] builds from
//! the neutral search expression over the search tables.

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{Keyed, SearchMatch};

use crate::driver::Driver;
use crate::instant::version_from_sql;
use crate::{Error, translate};

/// The matches of `query`, sorted, at most `limit`, with their sort key values.
pub async fn search(db: &mut dyn Driver, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, Error> {
    let select = translate::select(target(db), Definitions::r4(), query, limit).map_err(|u| Error::Unsupported(u.0))?;
    db.keyed_matches(&select.sql, &select.sort)
        .await?
        .into_iter()
        .map(|((resource_type, id, version), sort)| {
            Ok(Keyed { matched: SearchMatch { resource_type, id, version: version_from_sql(version)? }, sort })
        })
        .collect()
}

/// How many resources match `query` (inside a write's transaction, for guards).
pub async fn count(db: &mut dyn Driver, query: &SearchQuery) -> Result<u64, Error> {
    let sql = translate::count(target(db), Definitions::r4(), query).map_err(|u| Error::Unsupported(u.0))?;
    let n = db.integer(&sql).await?.unwrap_or(0);
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count {n}")))
}

/// What `db`'s statements are built for.
fn target(db: &dyn Driver) -> translate::Target {
    translate::Target { dialect: db.dialect(), value_indexes: db.value_indexes() }
}
