//! read, vread and the index entries of a version
//! (<https://hl7.org/fhir/R4/http.html#read>, <https://hl7.org/fhir/R4/http.html#vread>).

use fhirgate_engine::storage::{IndexEntry, IndexValue, ResourceVersion, SearchMatch, WriteKind};
use fhirgate_sql::{Dialect, versions};
use sqlx::{AssertSqlSafe, SqlitePool};

use crate::Error;
use crate::instant::{from_millis, version_from_sql};

/// The columns of `resource_version` that make a [`ResourceVersion`], in [`Row`] order.
pub(crate) const COLUMNS: &str = "v.resource_type, v.id, v.version, v.last_updated, v.kind, v.json";

/// One `resource_version` row as selected with [`COLUMNS`].
pub(crate) type Row = (String, String, i64, i64, String, Option<String>);

/// Turns a row into a version, checking what SQLite cannot.
pub(crate) fn decode((resource_type, id, version, last_updated, kind, json): Row) -> Result<ResourceVersion, Error> {
    let kind = WriteKind::from_code(&kind).ok_or_else(|| Error::Corrupt(format!("unknown write kind `{kind}`")))?;
    Ok(ResourceVersion {
        resource_type,
        id,
        version: version_from_sql(version)?,
        last_updated: from_millis(last_updated)?,
        kind,
        json,
    })
}

/// The current version of a resource, deletions included.
pub(crate) async fn current(
    pool: &SqlitePool,
    resource_type: &str,
    id: &str,
) -> Result<Option<ResourceVersion>, Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT v.resource_type, v.id, v.version, v.last_updated, v.kind, v.json FROM resource_version v \
         WHERE v.resource_type = ?1 AND v.id = ?2 ORDER BY v.version DESC LIMIT 1",
    )
    .bind(resource_type)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(decode).transpose()
}

/// One version of a resource.
pub(crate) async fn version(
    pool: &SqlitePool,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<ResourceVersion>, Error> {
    let Ok(version) = i64::try_from(version) else { return Ok(None) };
    let row: Option<Row> = sqlx::query_as(
        "SELECT v.resource_type, v.id, v.version, v.last_updated, v.kind, v.json FROM resource_version v \
         WHERE v.resource_type = ?1 AND v.id = ?2 AND v.version = ?3",
    )
    .bind(resource_type)
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    row.map(decode).transpose()
}

/// The versions `keys` name, in that order, leaving out those not stored.
pub(crate) async fn versions(pool: &SqlitePool, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, Error> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(versions::MAX_KEYS) {
        let sql = versions::select(Dialect::Sqlite, COLUMNS, chunk);
        let rows: Vec<Row> = sqlx::query_as_with(AssertSqlSafe(sql.text.as_str()), crate::search::arguments(&sql)?)
            .fetch_all(pool)
            .await?;
        found.extend(rows.into_iter().map(decode).collect::<Result<Vec<_>, _>>()?);
    }
    Ok(versions::in_order(keys, found))
}

/// The index entries of one version, in the order they were written; `None` for no such version.
pub(crate) async fn index(
    pool: &SqlitePool,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<Vec<IndexEntry>>, Error> {
    let Ok(version) = i64::try_from(version) else { return Ok(None) };
    let mut conn = pool.acquire().await?;
    let pos: Option<i64> =
        sqlx::query_scalar("SELECT pos FROM resource_version WHERE resource_type = ?1 AND id = ?2 AND version = ?3")
            .bind(resource_type)
            .bind(id)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(pos) = pos else { return Ok(None) };
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT param, value FROM index_entry WHERE pos = ?1 ORDER BY seq")
            .bind(pos)
            .fetch_all(&mut *conn)
            .await?;
    let entries = rows
        .into_iter()
        .map(|(param, value)| {
            let value: IndexValue = serde_json::from_str(&value)
                .map_err(|e| Error::Corrupt(format!("index entry of `{resource_type}/{id}` version {version}: {e}")))?;
            Ok(IndexEntry { param, value })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Some(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn many_versions_are_read_through_the_version_index() -> Result<(), Error> {
        let store = SqliteStore::connect("sqlite::memory:").await?;
        let key = |id: &str| SearchMatch { resource_type: "Patient".into(), id: id.into(), version: 1 };
        let sql = versions::select(Dialect::Sqlite, COLUMNS, &[key("a"), key("b")]);
        let plan = crate::search::tests::explain(&store, &sql).await;
        assert!(plan.iter().any(|l| l.starts_with("SEARCH v USING") && l.contains("version=?")), "{plan:#?}");
        assert!(!plan.iter().any(|l| l.starts_with("SCAN v")), "scans every version: {plan:#?}");
        Ok(())
    }
}
