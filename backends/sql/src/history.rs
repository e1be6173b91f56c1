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
//!   fixed for a fixed snapshot, so pages neither repeat nor skip.
//!
//! Pages after the first go by key ([`HistoryCursor`]): `WHERE key < @last ORDER BY key DESC
//! LIMIT m` for the next page, `key > @first ORDER BY key ASC` (turned round) for the previous
//! one, each one index range (`resource_version_by_type` / `_by_time` / the primary key), so page
//! k costs what page 1 does. The key is the order's columns: the version for instance history,
//! `pos` on SQLite, `(last_updated, bucket, pos)` on PostgreSQL (a row comparison). A query
//! without a cursor still skips `offset` rows (links issued before keys, and first pages). The
//! page's rows do not carry their position, so the keys of its first and last rows are read by
//! primary key (two point reads per page).

use fhirgate_engine::storage::{
    HistoryCursor, HistoryKey, HistoryPage, HistoryQuery, HistorySnapshot, ResourceVersion,
};

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

    let order = Order::of(db.dialect(), query);
    let limit = b.bind(Bind::Int(i64::from(query.count)));
    let (condition, direction, skip) = match &query.cursor {
        None => (String::new(), "DESC", b.bind(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)))),
        Some(HistoryCursor::OlderThan(key)) => {
            (format!(" AND {}", order.beyond(&mut b, key, "<")?), "DESC", "0".into())
        }
        Some(HistoryCursor::NewerThan(key)) => (format!(" AND {}", order.beyond(&mut b, key, ">")?), "ASC", "0".into()),
    };
    let by = order.columns.iter().map(|c| format!("{c} {direction}")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "SELECT {COLUMNS} FROM resource_version v WHERE {filter}{condition} ORDER BY {by} LIMIT {limit} OFFSET {skip}"
    );
    let mut versions = decoded(db, &Sql { text, binds: b.binds }).await?;
    if matches!(query.cursor, Some(HistoryCursor::NewerThan(_))) {
        versions.reverse();
    }
    let first_key = match versions.first() {
        Some(v) => Some(order.key_of(db, v).await?),
        None => None,
    };
    let last_key = match versions.last() {
        Some(v) if versions.len() > 1 => Some(order.key_of(db, v).await?),
        Some(_) => first_key.clone(),
        None => None,
    };
    Ok(HistoryPage { versions, total, snapshot, first_key, last_key })
}

/// The history order of a query: its columns, most significant first, all descending for the
/// newest first. Total: no two versions share them.
struct Order {
    columns: &'static [&'static str],
    dialect: Dialect,
}

impl Order {
    fn of(dialect: Dialect, query: &HistoryQuery) -> Self {
        let columns: &'static [&'static str] = match (dialect, &query.id) {
            (_, Some(_)) => &["v.version"],
            (Dialect::Sqlite, None) => &["v.pos"],
            (Dialect::Postgres, None) => &["v.last_updated", "v.bucket", "v.pos"],
        };
        Self { columns, dialect }
    }

    /// "after `key` in this order" (`op` `<`: older; `>`: newer), the key's values bound.
    fn beyond(&self, b: &mut Binder, key: &HistoryKey, op: &str) -> Result<String, Error> {
        let values = self.parse(key)?;
        let bound: Vec<String> = values.into_iter().map(|v| b.bind(Bind::Int(v))).collect();
        Ok(match self.columns {
            [column] => format!("{column} {op} {}", bound.join("")),
            // PostgreSQL compares rows lexicographically, and walks the index on these columns.
            _ => format!("({}) {op} ({})", self.columns.join(", "), bound.join(", ")),
        })
    }

    /// The key's values: as many integers as the order has columns, in the text this order
    /// writes (`.`-separated); anything else (a key another store or another level of history
    /// wrote) is refused.
    fn parse(&self, key: &HistoryKey) -> Result<Vec<i64>, Error> {
        let refused = || Error::Unsupported("this history page link does not fit this history: read it again".into());
        let values: Vec<i64> =
            key.0.split('.').map(|part| part.parse::<i64>().map_err(|_| refused())).collect::<Result<_, _>>()?;
        if values.len() != self.columns.len() {
            return Err(refused());
        }
        Ok(values)
    }

    /// The key of `version`, read by its primary key (the page's rows carry no position).
    async fn key_of(&self, db: &mut dyn Driver, version: &ResourceVersion) -> Result<HistoryKey, Error> {
        let mut b = Binder::new(self.dialect);
        let parts: Vec<String> = self.columns.iter().map(|c| format!("CAST({c} AS TEXT)")).collect();
        let glued = parts.join(" || '.' || ");
        let text = format!(
            "SELECT {glued}, CAST('' AS TEXT) FROM resource_version v WHERE v.resource_type = {} AND v.id = {} AND v.version = {}",
            b.text(&version.resource_type),
            b.text(&version.id),
            b.bind(Bind::Int(i64::try_from(version.version).unwrap_or(i64::MAX)))
        );
        let (key, _) = db.pairs(&Sql { text, binds: b.binds }).await?.pop().ok_or_else(|| {
            Error::Corrupt(format!("{}/{} version {} vanished", version.resource_type, version.id, version.version))
        })?;
        Ok(HistoryKey(key))
    }
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
