//! Search (<https://hl7.org/fhir/R4/search.html>): runs the statements `fhirgate-sql` builds
//! from the neutral search expression over the search tables (migrations/0002_search.sql).

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::SearchMatch;
use fhirgate_sql::{Dialect, Sql, translate};
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use crate::Error;
use crate::instant::version_from_sql;

/// The matches of `query`, sorted, at most `limit`.
pub(crate) async fn search(pool: &SqlitePool, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, Error> {
    let sql =
        translate::select(Dialect::Sqlite, Definitions::r4(), query, limit).map_err(|u| Error::Unsupported(u.0))?;
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as_with(AssertSqlSafe(sql.text.as_str()), arguments(&sql)?).fetch_all(pool).await?;
    rows.into_iter()
        .map(|(resource_type, id, version)| Ok(SearchMatch { resource_type, id, version: version_from_sql(version)? }))
        .collect()
}

/// How many resources match `query`.
pub(crate) async fn count(pool: &SqlitePool, query: &SearchQuery) -> Result<u64, Error> {
    let mut conn = pool.acquire().await?;
    count_on(&mut conn, query).await
}

/// How many resources match `query`, on one connection (inside a write's transaction for guards).
pub(crate) async fn count_on(conn: &mut SqliteConnection, query: &SearchQuery) -> Result<u64, Error> {
    let sql = translate::count(Dialect::Sqlite, Definitions::r4(), query).map_err(|u| Error::Unsupported(u.0))?;
    let n: i64 = sqlx::query_scalar_with(AssertSqlSafe(sql.text.as_str()), arguments(&sql)?).fetch_one(conn).await?;
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count {n}")))
}

/// The statement's parameters (see [`fhirgate_sql::arguments`]).
pub(crate) fn arguments(sql: &Sql) -> Result<SqliteArguments, Error> {
    fhirgate_sql::arguments::<sqlx::Sqlite>(sql).map_err(|e| Error::Invalid(format!("binding a search parameter: {e}")))
}
