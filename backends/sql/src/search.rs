//! Search (<https://hl7.org/fhir/R4/search.html>): runs the statements [`translate`] builds from
//! the neutral search expression over the search tables.

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::SearchMatch;

use crate::driver::Driver;
use crate::instant::version_from_sql;
use crate::{Error, translate};

/// The matches of `query`, sorted, at most `limit`.
pub async fn search(db: &mut dyn Driver, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, Error> {
    let sql = translate::select(db.dialect(), Definitions::r4(), query, limit).map_err(|u| Error::Unsupported(u.0))?;
    db.matches(&sql)
        .await?
        .into_iter()
        .map(|(resource_type, id, version)| Ok(SearchMatch { resource_type, id, version: version_from_sql(version)? }))
        .collect()
}

/// How many resources match `query` (inside a write's transaction, for guards).
pub async fn count(db: &mut dyn Driver, query: &SearchQuery) -> Result<u64, Error> {
    let sql = translate::count(db.dialect(), Definitions::r4(), query).map_err(|u| Error::Unsupported(u.0))?;
    let n = db.integer(&sql).await?.unwrap_or(0);
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count {n}")))
}
