//! An initial load's batch on PostgreSQL (`$import` in `InitialLoad` mode): version 1 of many new
//! resources in one transaction of a few multi-row statements, each column bound as one array
//! and spread by `UNNEST`, rather than a dozen statements per resource (`write.rs`).
//!
//! The same rows as `write::transact` of the same creates, made safe the same way:
//! 1. claim: the batch's `resource_current` rows are inserted in sorted key order at version 1,
//!    `ON CONFLICT DO NOTHING`; a key that inserts nothing is a resource that exists or existed
//!    (or a concurrent creator's that committed first): the batch is a version conflict and
//!    nothing is written. A concurrent writer of the same key waits on the row as with `lock`.
//! 2. append: the versions' write positions drawn from their buckets as `write::transact` draws
//!    them (`write::positions`: each bucket's row locked until the commit, so positions stay
//!    commit-ordered within a bucket for history snapshots), then the versions, their
//!    `search_current` rows and their index rows, one statement per table and column shape;
//!    then commit.

use std::collections::{BTreeMap, HashSet};

use fhirgate_engine::storage::{Write, encoding};
use fhirgate_sql::rows::{Row, rows};
use fhirgate_sql::{Bind, Error};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::write::positions;

/// Stores every create of `writes` or none ([`Error::VersionConflict`] for the first resource
/// that exists).
pub(crate) async fn load(pool: &PgPool, writes: &[Write]) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    fhirgate_sql::write::only_creates(writes)?;
    let mut tx = pool.begin().await?;
    claim(&mut tx, writes).await?;
    let positions = positions(&mut tx, writes).await?;
    versions(&mut tx, writes, &positions).await?;
    search_rows(&mut tx, writes).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts the `resource_current` rows of `writes` at version 1, in key order; the conflict of
/// the first write whose resource already had one.
async fn claim(conn: &mut PgConnection, writes: &[Write]) -> Result<(), Error> {
    let mut keys: Vec<(&str, &str)> =
        writes.iter().map(|w| (w.version.resource_type.as_str(), w.version.id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    let claimed: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO resource_current (resource_type, id, version) \
         SELECT t, i, 1 FROM UNNEST($1::text[], $2::text[]) AS k (t, i) \
         ON CONFLICT (resource_type, id) DO NOTHING RETURNING resource_type, id",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if claimed.len() == writes.len() {
        return Ok(());
    }
    let claimed: HashSet<(&str, &str)> = claimed.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect();
    let taken = writes.iter().find(|w| !claimed.contains(&(w.version.resource_type.as_str(), w.version.id.as_str())));
    match taken {
        // A resource twice in the batch: the second create expects version 1.
        None => Err(Error::conflict(&writes[0], 0, 1)),
        Some(w) => {
            let found = fhirgate_sql::write::stored_version(conn, &w.version.resource_type, &w.version.id).await?;
            Err(Error::conflict(w, 0, found.max(1)))
        }
    }
}

/// The `resource_version` rows, at their write positions (`(bucket, pos)` per write).
async fn versions(conn: &mut PgConnection, writes: &[Write], positions: &[(i64, i64)]) -> Result<(), Error> {
    let n = writes.len();
    let (mut types, mut ids, mut times, mut kinds, mut jsons, mut indexes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for w in writes {
        let v = &w.version;
        types.push(v.resource_type.as_str());
        ids.push(v.id.as_str());
        times.push(last_updated(w)?);
        kinds.push(v.kind.code());
        jsons.push(v.json.as_deref());
        indexes.push(serde_json::to_string(&w.index).map_err(|e| {
            Error::Invalid(format!("the index of `{}/{}` is not serialisable: {e}", v.resource_type, v.id))
        })?);
    }
    let (buckets, poss): (Vec<i16>, Vec<i64>) =
        positions.iter().map(|&(b, p)| (i16::try_from(b).unwrap_or_default(), p)).unzip();
    sqlx::query(
        "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json, index_entries, bucket, pos) \
         SELECT t, i, 1, u, k, j, x, b, p FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
         $7::int2[], $8::int8[]) AS r (t, i, u, k, j, x, b, p)",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&times)
    .bind(&kinds)
    .bind(&jsons)
    .bind(&indexes)
    .bind(&buckets)
    .bind(&poss)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO search_current (resource_type, id, version, last_updated) \
         SELECT t, i, 1, u FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS r (t, i, u)",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn last_updated(write: &Write) -> Result<i64, Error> {
    let v = &write.version;
    encoding::millis_floor(v.last_updated).ok_or_else(|| {
        Error::Invalid(format!("instant `{}` of `{}/{}` is out of range", v.last_updated, v.resource_type, v.id))
    })
}

/// One column of many rows, bound as one array.
enum Column {
    Text(Vec<String>),
    Real(Vec<f64>),
    Int(Vec<i64>),
}

impl Column {
    fn new(first: &Bind) -> Self {
        match first {
            Bind::Real(_) => Self::Real(Vec::new()),
            Bind::Int(_) => Self::Int(Vec::new()),
            Bind::Text(_) | Bind::Null => Self::Text(Vec::new()),
        }
    }

    /// Appends `value`; `false` when it is not of this column's type (never for the rows
    /// `rows()` makes: a column name has one type).
    fn push(&mut self, value: &Bind) -> bool {
        match (self, value) {
            (Self::Text(c), Bind::Text(v)) => c.push(v.clone()),
            (Self::Real(c), Bind::Real(v)) => c.push(*v),
            (Self::Int(c), Bind::Int(v)) => c.push(*v),
            _ => return false,
        }
        true
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Self::Text(_) => "text[]",
            Self::Real(_) => "float8[]",
            Self::Int(_) => "int8[]",
        }
    }
}

/// The index rows of one table with one set of value columns, column by column.
struct Rows<'w> {
    types: Vec<&'w str>,
    ids: Vec<&'w str>,
    params: Vec<String>,
    values: Vec<Column>,
}

/// The index rows of every write, one statement per table and set of columns.
async fn search_rows(conn: &mut PgConnection, writes: &[Write]) -> Result<(), Error> {
    let mut shapes: BTreeMap<(&'static str, Vec<&'static str>), Rows<'_>> = BTreeMap::new();
    for w in writes {
        let v = &w.version;
        for Row { table, param, columns } in rows(&w.index) {
            let names: Vec<&'static str> = columns.iter().map(|c| c.0).collect();
            let shape = shapes.entry((table, names)).or_insert_with(|| Rows {
                types: Vec::new(),
                ids: Vec::new(),
                params: Vec::new(),
                values: columns.iter().map(|c| Column::new(&c.1)).collect(),
            });
            for (column, (name, value)) in shape.values.iter_mut().zip(&columns) {
                if !column.push(value) {
                    return Err(Error::Invalid(format!(
                        "`{table}.{name}` of `{}/{}` has another type",
                        v.resource_type, v.id
                    )));
                }
            }
            shape.types.push(v.resource_type.as_str());
            shape.ids.push(v.id.as_str());
            shape.params.push(param);
        }
    }
    for ((table, names), rows) in shapes {
        let arrays: Vec<String> =
            rows.values.iter().enumerate().map(|(n, c)| format!("${}::{}", n + 4, c.sql_type())).collect();
        let text = format!(
            "INSERT INTO {table} (resource_type, id, param, {}) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], {})",
            names.join(", "),
            arrays.join(", ")
        );
        let mut statement =
            sqlx::query(AssertSqlSafe(text.as_str())).bind(&rows.types).bind(&rows.ids).bind(&rows.params);
        for column in &rows.values {
            statement = match column {
                Column::Text(values) => statement.bind(values),
                Column::Real(values) => statement.bind(values),
                Column::Int(values) => statement.bind(values),
            };
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}
