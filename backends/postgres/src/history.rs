//! history at instance, type and system level, with `_since`, `_at`, paging and snapshots
//! (<https://hl7.org/fhir/R4/http.html#history>).
//!
//! The snapshot is `resource_version.pos`: writers take positions under a global lock held until
//! commit, so "every row with `pos <= snapshot`" is exactly what the store held at that moment.

use fhirgate_engine::storage::{HistoryPage, HistoryQuery};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::Error;
use crate::instant::{millis_ceil, millis_floor};
use crate::read::{COLUMNS, Row, decode};

/// One page of history, newest first, with the total inside the snapshot.
pub(crate) async fn page(pool: &PgPool, query: &HistoryQuery) -> Result<HistoryPage, Error> {
    let mut conn = pool.acquire().await?;
    let snapshot = match query.snapshot {
        Some(snapshot) => snapshot,
        None => {
            let max: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(pos), 0) FROM resource_version").fetch_one(&mut *conn).await?;
            u64::try_from(max).map_err(|_| Error::Corrupt(format!("write position `{max}` is negative")))?
        }
    };
    let filter = Filter::new(query, snapshot)?;

    let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM resource_version v");
    filter.push(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let mut select = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM resource_version v"));
    filter.push(&mut select);
    select.push(" ORDER BY v.pos DESC LIMIT ").push_bind(i64::from(query.count));
    select.push(" OFFSET ").push_bind(i64::try_from(query.offset).unwrap_or(i64::MAX));
    let rows: Vec<Row> = select.build_query_as().fetch_all(&mut *conn).await?;

    Ok(HistoryPage {
        versions: rows.into_iter().map(decode).collect::<Result<_, _>>()?,
        total: u64::try_from(total).unwrap_or(0),
        snapshot,
    })
}

/// The `WHERE` clause of a history query, shared by the count and the page.
struct Filter<'q> {
    snapshot: i64,
    resource_type: Option<&'q str>,
    id: Option<&'q str>,
    since: Option<i64>,
    at: Option<i64>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q HistoryQuery, snapshot: u64) -> Result<Self, Error> {
        Ok(Self {
            snapshot: i64::try_from(snapshot).unwrap_or(i64::MAX),
            resource_type: query.resource_type.as_deref(),
            id: query.id.as_deref(),
            since: query.since.map(millis_ceil).transpose()?,
            at: query.at.map(millis_floor).transpose()?,
        })
    }

    fn push(&self, sql: &mut QueryBuilder<Postgres>) {
        sql.push(" WHERE v.pos <= ").push_bind(self.snapshot);
        if let Some(resource_type) = self.resource_type {
            sql.push(" AND v.resource_type = ").push_bind(resource_type.to_owned());
        }
        if let Some(id) = self.id {
            sql.push(" AND v.id = ").push_bind(id.to_owned());
        }
        if let Some(since) = self.since {
            sql.push(" AND v.last_updated >= ").push_bind(since);
        }
        if let Some(at) = self.at {
            // The version current at `at`: written by then, not a deletion, and no later
            // version of the same resource written by then (within the snapshot).
            sql.push(" AND v.last_updated <= ").push_bind(at);
            sql.push(" AND v.kind <> 'delete' AND NOT EXISTS (SELECT 1 FROM resource_version n");
            sql.push(" WHERE n.resource_type = v.resource_type AND n.id = v.id AND n.version > v.version");
            sql.push(" AND n.pos <= ").push_bind(self.snapshot);
            sql.push(" AND n.last_updated <= ").push_bind(at).push(")");
        }
    }
}
