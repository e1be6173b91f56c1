//! The few ways the shared code runs a statement, on one connection of either database.
//!
//! [`Driver`] is what the shared reads, history, search and write steps are written against; it
//! is implemented once, for the connection type of any sqlx database this crate knows the
//! [`Dialect`] of, so each statement is written once and bound and run the same way on SQLite
//! and PostgreSQL. A pooled connection or a transaction derefs to such a connection
//! (`&mut *tx`).

use async_trait::async_trait;
use fhirgate_engine::search::query::SortValue;
use sqlx::{AssertSqlSafe, Database, Executor, FromRow, Row as _};

use crate::Error;
use crate::bind::{Dialect, Sql, arguments};
use crate::translate::SortKind;

/// One `resource_version` row as selected with [`COLUMNS`](crate::read::COLUMNS).
pub type VersionRow = (String, String, i64, i64, String, Option<String>);

/// A search match row: `resource_type, id, version`.
pub type MatchRow = (String, String, i64);

/// A search match row and the values of its sort key columns.
pub type KeyedRow = (MatchRow, Vec<Option<SortValue>>);

/// Statement texts longer than this (bytes) are not kept prepared.
pub const ONE_OFF_TEXT: usize = 8192;

/// A database whose connections run the shared statements, and how it writes parameters.
pub trait Dialected: Database {
    const DIALECT: Dialect;
}

impl Dialected for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
}

impl Dialected for sqlx::Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
}

/// A connection the shared statements run on.
#[async_trait]
pub trait Driver: Send {
    /// How this connection's database writes parameters.
    fn dialect(&self) -> Dialect;

    /// Whether SQLite's value indexes are there for a statement to name (`INDEXED BY`): not
    /// while an initial load has set them aside (fhirgate-sqlite's `deferred.rs`). Asked before
    /// each search.
    async fn value_indexes(&mut self) -> bool {
        true
    }

    /// A statement named a value index that is gone (another process on the same file set it
    /// aside): the next [`Self::value_indexes`] asks the database.
    fn value_indexes_gone(&mut self) {}

    /// Every row of a statement selecting `resource_version` rows.
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<VersionRow>, Error>;

    /// Every row of a statement selecting `resource_type, id, version`.
    async fn matches(&mut self, sql: &Sql) -> Result<Vec<MatchRow>, Error>;

    /// Every row of a statement selecting `resource_type, id, version`, then a sort key column
    /// of each of `kinds`.
    async fn keyed_matches(&mut self, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error>;

    /// Every row of a statement selecting two text columns.
    async fn pairs(&mut self, sql: &Sql) -> Result<Vec<(String, String)>, Error>;

    /// The integer in the first column of the first row, if there is a row.
    async fn integer(&mut self, sql: &Sql) -> Result<Option<i64>, Error>;

    /// Runs a statement that returns no rows.
    async fn execute(&mut self, sql: &Sql) -> Result<(), Error>;

    /// Whether the statements that follow are planned for the values of each run (`true`) or
    /// once for any values (`false`, how the store opens its connections): PostgreSQL's
    /// `plan_cache_mode`. A sorted or general search is worth planning per run (a generic plan
    /// of a patient's Observations by date took 19 ms for a custom plan's 4.5); nothing else
    /// is. SQLite plans once either way.
    async fn plan_each_run(&mut self, each: bool) -> Result<(), Error> {
        let _ = each;
        Ok(())
    }

    /// Whether a write's statements are better sent joined into one text: true where each text
    /// costs a hand-off to another thread (sqlx's SQLite driver), false where statements run on
    /// the calling thread and are cheaper prepared once and reused (rusqlite).
    fn joins_statements(&self) -> bool {
        false
    }
}

#[async_trait]
impl<C> Driver for C
where
    C: sqlx::Connection,
    C::Database: Dialected + sqlx::database::HasStatementCache,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    for<'t> String: sqlx::Encode<'t, C::Database> + sqlx::Type<C::Database>,
    for<'t> f64: sqlx::Encode<'t, C::Database> + sqlx::Type<C::Database>,
    for<'t> i64: sqlx::Encode<'t, C::Database> + sqlx::Type<C::Database>,
    for<'t> Option<String>: sqlx::Encode<'t, C::Database> + sqlx::Type<C::Database>,
    <C::Database as Database>::Arguments: sqlx::IntoArguments<C::Database>,
    VersionRow: for<'r> FromRow<'r, <C::Database as Database>::Row>,
    MatchRow: for<'r> FromRow<'r, <C::Database as Database>::Row>,
    (String, String): for<'r> FromRow<'r, <C::Database as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <C::Database as Database>::Row>,
    for<'r> Option<String>: sqlx::Decode<'r, C::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, C::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, C::Database>,
    usize: sqlx::ColumnIndex<<C::Database as Database>::Row>,
{
    fn dialect(&self) -> Dialect {
        C::Database::DIALECT
    }

    async fn versions(&mut self, sql: &Sql) -> Result<Vec<VersionRow>, Error> {
        Ok(sqlx::query_as_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?).fetch_all(self).await?)
    }

    async fn matches(&mut self, sql: &Sql) -> Result<Vec<MatchRow>, Error> {
        Ok(sqlx::query_as_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?).fetch_all(self).await?)
    }

    async fn keyed_matches(&mut self, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error> {
        let rows =
            sqlx::query_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?).fetch_all(self).await?;
        let mut keyed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut sort = Vec::with_capacity(kinds.len());
            for (n, kind) in kinds.iter().enumerate() {
                // Unchecked: a sort key is an expression, whose declared type SQLite does not know.
                let column = 3 + n;
                sort.push(match kind {
                    SortKind::Text => row.try_get_unchecked::<Option<String>, _>(column)?.map(SortValue::Text),
                    SortKind::Integer => row.try_get_unchecked::<Option<i64>, _>(column)?.map(SortValue::Integer),
                    SortKind::Real => row.try_get_unchecked::<Option<f64>, _>(column)?.map(SortValue::Number),
                });
            }
            keyed.push((MatchRow::from_row(row)?, sort));
        }
        Ok(keyed)
    }

    async fn plan_each_run(&mut self, each: bool) -> Result<(), Error> {
        if C::Database::DIALECT == Dialect::Postgres {
            let mode = if each { "auto" } else { "force_generic_plan" };
            sqlx::raw_sql(AssertSqlSafe(format!("SET plan_cache_mode = {mode}"))).execute(self).await?;
        }
        Ok(())
    }

    async fn pairs(&mut self, sql: &Sql) -> Result<Vec<(String, String)>, Error> {
        Ok(sqlx::query_as_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?).fetch_all(self).await?)
    }

    async fn integer(&mut self, sql: &Sql) -> Result<Option<i64>, Error> {
        let query = sqlx::query_scalar_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?);
        Ok(query.fetch_optional(self).await?)
    }

    async fn execute(&mut self, sql: &Sql) -> Result<(), Error> {
        // A long text is a batch of joined writes, unlikely to come again: not worth a place
        // in the connection's statement cache.
        let query = sqlx::query_with(AssertSqlSafe(sql.text.as_str()), bound::<C::Database>(sql)?);
        query.persistent(sql.text.len() <= ONE_OFF_TEXT).execute(self).await?;
        Ok(())
    }

    fn joins_statements(&self) -> bool {
        C::Database::DIALECT == Dialect::Sqlite
    }
}

/// The statement's parameters, or the store's error for a value that cannot be bound.
fn bound<DB>(sql: &Sql) -> Result<DB::Arguments, Error>
where
    DB: Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> f64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    arguments::<DB>(sql).map_err(|e| Error::Invalid(format!("binding a statement parameter: {e}")))
}
