//! Many writes' rows in a few statements: each column bound as one array and spread by
//! `UNNEST`, one statement per table (and set of value columns), whatever the number of
//! resources. A transaction Bundle's thousand resources and an initial load's batch
//! (`load.rs`) go this way rather than a statement per resource and table; the rows are those
//! `fhirgate_sql::write` writes for one write at a time.
//!
//! Rows are inserted, locked and moved in the order of the arrays: callers pass keys sorted
//! where the order of the locks matters (`write.rs`).

use std::collections::{BTreeMap, HashMap};

use fhirgate_engine::storage::{Write, encoding};
use fhirgate_sql::rows::{Row, TABLES, rows};
use fhirgate_sql::{Bind, Error, version_from_sql, version_to_sql};
use sqlx::{AssertSqlSafe, PgConnection};

/// Inserts the `resource_current` row (version 0) of each of `keys`, or locks the one there, as
/// an update locks it, in the order given; returns each one's version. A concurrent creator's
/// uncommitted row makes this wait for its outcome.
pub(crate) async fn lock_current(
    conn: &mut PgConnection,
    keys: &[(&str, &str)],
) -> Result<Vec<(String, String, u64)>, Error> {
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "INSERT INTO resource_current (resource_type, id, version) \
         SELECT t, i, 0 FROM UNNEST($1::text[], $2::text[]) AS k (t, i) \
         ON CONFLICT (resource_type, id) DO UPDATE SET version = resource_current.version \
         RETURNING resource_type, id, version",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(|(t, i, version)| Ok((t, i, version_from_sql(version)?))).collect()
}

/// Moves each `resource_current` row of `versions`' keys (locked by [`lock_current`]) to its
/// version there.
pub(crate) async fn move_current(conn: &mut PgConnection, versions: &HashMap<(&str, &str), u64>) -> Result<(), Error> {
    let (mut types, mut ids, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    for (&(resource_type, id), &version) in versions {
        types.push(resource_type);
        ids.push(id);
        numbers.push(version_to_sql(version)?);
    }
    sqlx::query(
        "UPDATE resource_current AS c SET version = m.v \
         FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS m (t, i, v) \
         WHERE c.resource_type = m.t AND c.id = m.i",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&numbers)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `resource_version` rows of `writes`, at their write positions (`(bucket, pos)` per write).
pub(crate) async fn versions(conn: &mut PgConnection, writes: &[Write], positions: &[(i64, i64)]) -> Result<(), Error> {
    let keys = Keys::of(writes.iter())?;
    let (mut kinds, mut jsons, mut indexes) = (Vec::new(), Vec::new(), Vec::new());
    for w in writes {
        let v = &w.version;
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
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[], \
         $8::int2[], $9::int8[])",
    )
    .bind(&keys.types)
    .bind(&keys.ids)
    .bind(&keys.versions)
    .bind(&keys.times)
    .bind(&kinds)
    .bind(&jsons)
    .bind(&indexes)
    .bind(&buckets)
    .bind(&poss)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The search rows of `writes` (each a distinct resource): those of the versions before go,
/// then each live version's `search_current` row and index rows go in.
pub(crate) async fn search_rows(conn: &mut PgConnection, writes: &[Write]) -> Result<(), Error> {
    let (replaced_types, replaced_ids): (Vec<&str>, Vec<&str>) = writes
        .iter()
        .filter(|w| w.version.version > 1)
        .map(|w| (w.version.resource_type.as_str(), w.version.id.as_str()))
        .unzip();
    if !replaced_types.is_empty() {
        for table in TABLES {
            let text = format!(
                "DELETE FROM {table} AS s USING UNNEST($1::text[], $2::text[]) AS k (t, i) \
                 WHERE s.resource_type = k.t AND s.id = k.i"
            );
            sqlx::query(AssertSqlSafe(text)).bind(&replaced_types).bind(&replaced_ids).execute(&mut *conn).await?;
        }
    }
    let live: Vec<&Write> = writes.iter().filter(|w| !w.version.is_deleted()).collect();
    current_rows(conn, &live).await?;
    index_rows(conn, &live).await
}

/// The `search_current` rows of `writes`.
async fn current_rows(conn: &mut PgConnection, writes: &[&Write]) -> Result<(), Error> {
    let keys = Keys::of(writes.iter().copied())?;
    sqlx::query(
        "INSERT INTO search_current (resource_type, id, version, last_updated) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])",
    )
    .bind(&keys.types)
    .bind(&keys.ids)
    .bind(&keys.versions)
    .bind(&keys.times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The columns that name each version of many: type, id, version and time, one array each.
struct Keys<'w> {
    types: Vec<&'w str>,
    ids: Vec<&'w str>,
    versions: Vec<i64>,
    times: Vec<i64>,
}

impl<'w> Keys<'w> {
    fn of(writes: impl Iterator<Item = &'w Write>) -> Result<Self, Error> {
        let mut keys = Self { types: Vec::new(), ids: Vec::new(), versions: Vec::new(), times: Vec::new() };
        for w in writes {
            let v = &w.version;
            keys.types.push(v.resource_type.as_str());
            keys.ids.push(v.id.as_str());
            keys.versions.push(version_to_sql(v.version)?);
            keys.times.push(encoding::millis_floor(v.last_updated).ok_or_else(|| {
                Error::Invalid(format!(
                    "instant `{}` of `{}/{}` is out of range",
                    v.last_updated, v.resource_type, v.id
                ))
            })?);
        }
        Ok(keys)
    }
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

/// The index rows of `writes`, one statement per table and set of columns.
async fn index_rows(conn: &mut PgConnection, writes: &[&Write]) -> Result<(), Error> {
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
