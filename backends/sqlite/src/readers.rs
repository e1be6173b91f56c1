//! Reads on connections of our own (`rusqlite`), not sqlx's: sqlx runs every SQLite statement on
//! a thread of its connection and sends each row back over a channel, so a read by id cost two
//! or more thread wake-ups, more than the statement itself (bench/README.md, "reads").
//!
//! A point read (one resource, one version, one page of versions by key, one version's index)
//! runs on the calling thread: it is an index lookup of tens of microseconds, cheaper than any
//! hand-off. A search, a count or a history page, whose cost depends on the data, runs on
//! tokio's blocking pool (one hand-off each way, however many rows), so it never holds up the
//! runtime's other requests.
//!
//! Connections are opened on the database file after migrations ran, `query_only` (a read
//! connection can never write), with the same busy timeout and page cache as sqlx's, and kept
//! in a small pool; each keeps its prepared statements.

use crate::deferred::Aside;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

use async_trait::async_trait;
use fhirgate_engine::search::query::SortValue;
use fhirgate_sql::{Bind, Dialect, Driver, Error, KeyedRow, MatchRow, SortKind, Sql, VersionRow};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::{BUSY_TIMEOUT, READER_CACHE_KIB};

/// Idle connections kept for reuse; more are opened when more readers run at once.
const IDLE: usize = 8;
/// Prepared statements kept per connection (search texts vary with the query's shape).
const STATEMENTS: usize = 64;
/// Offloaded statements (searches, counts, history pages) running at once, per core: more only
/// take turns on the cores, each with a connection and its page cache (bench/README.md,
/// searches).
const OFFLOADED_PER_CORE: usize = 2;

/// The pool of reader connections on one database file.
#[derive(Debug)]
pub(crate) struct Readers {
    file: PathBuf,
    aside: Aside,
    idle: Mutex<Vec<Connection>>,
    /// Turns to run an offloaded statement.
    offloaded: Semaphore,
}

impl Readers {
    pub(crate) fn new(file: &Path, aside: Aside) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let offloaded = Semaphore::new(cores.saturating_mul(OFFLOADED_PER_CORE));
        Arc::new(Self { file: file.to_path_buf(), aside, idle: Mutex::new(Vec::new()), offloaded })
    }

    /// A reader for one read; `offload`: run its statements on the blocking pool. It takes a
    /// connection when a statement runs (an offloaded one once it has its turn), so no more
    /// connections, each with its page cache, are open than statements can run.
    pub(crate) fn get(self: &Arc<Self>, offload: bool) -> Reader {
        Reader { connection: None, pool: Arc::clone(self), offload }
    }

    /// An idle connection, or a new one.
    fn connection(&self) -> Result<Connection, Error> {
        match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn open(&self) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.file, flags).map_err(failed)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        connection
            .execute_batch(&format!("PRAGMA query_only = ON; PRAGMA cache_size = {READER_CACHE_KIB};"))
            .map_err(failed)?;
        crate::stable_plans(&connection).map_err(failed)?;
        connection.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(connection)
    }

    fn put(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE {
                idle.push(connection);
            }
        }
    }
}

/// One reader connection, back to its pool when dropped.
pub(crate) struct Reader {
    connection: Option<Connection>,
    pool: Arc<Readers>,
    offload: bool,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.put(connection);
        }
    }
}

impl Reader {
    /// The reader's connection, or one from the pool.
    fn take(&mut self) -> Result<Connection, Error> {
        match self.connection.take() {
            Some(connection) => Ok(connection),
            None => self.pool.connection(),
        }
    }

    /// Runs `f` with the connection: here, or on the blocking pool when offloading.
    async fn run<T, F>(&mut self, sql: &Sql, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Sql) -> Result<T, Error> + Send + 'static,
    {
        if !self.offload {
            let connection = self.take()?;
            let result = f(&connection, sql);
            self.connection = Some(connection);
            return result;
        }
        let sql = sql.clone();
        let pool = Arc::clone(&self.pool);
        let turn = pool.offloaded.acquire().await.map_err(|e| Error::Driver(format!("reader turns: {e}")))?;
        let connection = self.take()?;
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = f(&connection, &sql);
            (connection, result)
        })
        .await
        .map_err(|e| Error::Driver(format!("reader task: {e}")))?;
        drop(turn);
        self.connection = Some(connection);
        result
    }
}

#[async_trait]
impl Driver for Reader {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn value_indexes(&mut self) -> bool {
        if !self.pool.aside.maybe() {
            return true;
        }
        // Asked before a statement is built: the connection goes back to the pool at once, so
        // an offloaded reader holds none while it waits for its turn.
        let Ok(connection) = self.take() else { return false };
        let there = self.pool.aside.value_indexes(&connection);
        self.pool.put(connection);
        there
    }

    fn value_indexes_gone(&mut self) {
        self.pool.aside.gone();
    }

    async fn versions(&mut self, sql: &Sql) -> Result<Vec<VersionRow>, Error> {
        self.run(sql, versions).await
    }

    async fn matches(&mut self, sql: &Sql) -> Result<Vec<MatchRow>, Error> {
        self.run(sql, matches).await
    }

    async fn keyed_matches(&mut self, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error> {
        let kinds = kinds.to_vec();
        self.run(sql, move |c, sql| keyed_matches(c, sql, &kinds)).await
    }

    async fn pairs(&mut self, sql: &Sql) -> Result<Vec<(String, String)>, Error> {
        self.run(sql, pairs).await
    }

    async fn integer(&mut self, sql: &Sql) -> Result<Option<i64>, Error> {
        self.run(sql, first_integer).await
    }

    async fn execute(&mut self, _sql: &Sql) -> Result<(), Error> {
        Err(Error::Invalid("a write on a read connection".into()))
    }
}

/// The rows of a statement selecting `resource_version` rows ([`Driver::versions`]), on any of
/// our own connections (this pool's, the writer's).
pub(crate) fn versions(c: &Connection, sql: &Sql) -> Result<Vec<VersionRow>, Error> {
    rows(c, sql, |r| Ok((text(r, 0)?, text(r, 1)?, integer(r, 2)?, integer(r, 3)?, text(r, 4)?, optional_text(r, 5)?)))
}

/// [`Driver::matches`] on one of our own connections.
pub(crate) fn matches(c: &Connection, sql: &Sql) -> Result<Vec<MatchRow>, Error> {
    rows(c, sql, |r| Ok((text(r, 0)?, text(r, 1)?, integer(r, 2)?)))
}

/// [`Driver::pairs`] on one of our own connections.
/// Matches with their sort key values (columns 3…, one per `kinds`).
pub(crate) fn keyed_matches(c: &Connection, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error> {
    rows(c, sql, |r| {
        let sort = kinds.iter().enumerate().map(|(n, kind)| sort_value(r, 3 + n, *kind)).collect::<Result<_, _>>()?;
        Ok(((text(r, 0)?, text(r, 1)?, integer(r, 2)?), sort))
    })
}

pub(crate) fn pairs(c: &Connection, sql: &Sql) -> Result<Vec<(String, String)>, Error> {
    rows(c, sql, |r| Ok((text(r, 0)?, text(r, 1)?)))
}

/// [`Driver::integer`] on one of our own connections.
pub(crate) fn first_integer(c: &Connection, sql: &Sql) -> Result<Option<i64>, Error> {
    Ok(rows(c, sql, |r| integer(r, 0))?.into_iter().next())
}

/// Every row of `sql`, each turned into a value by `row`.
fn rows<T>(
    connection: &Connection,
    sql: &Sql,
    row: impl Fn(&rusqlite::Row<'_>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut statement = connection.prepare_cached(&sql.text).map_err(failed)?;
    bind(&mut statement, sql)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(failed)? {
        out.push(row(r)?);
    }
    Ok(out)
}

/// Binds `sql`'s parameters to its prepared statement.
pub(crate) fn bind(statement: &mut rusqlite::Statement<'_>, sql: &Sql) -> Result<(), Error> {
    for (i, value) in sql.binds.iter().enumerate() {
        bind_value(statement, i + 1, value)?;
    }
    Ok(())
}

/// Binds one value to parameter `at` (from 1) of a prepared statement.
pub(crate) fn bind_value(statement: &mut rusqlite::Statement<'_>, at: usize, value: &Bind) -> Result<(), Error> {
    match value {
        Bind::Text(s) => statement.raw_bind_parameter(at, s.as_str()),
        Bind::Real(n) => statement.raw_bind_parameter(at, n),
        Bind::Int(n) => statement.raw_bind_parameter(at, n),
        Bind::Null => statement.raw_bind_parameter(at, None::<&str>),
    }
    .map_err(failed)
}

fn text(row: &rusqlite::Row<'_>, i: usize) -> Result<String, Error> {
    optional_text(row, i)?.ok_or_else(|| Error::Corrupt(format!("column {i} is NULL")))
}

fn optional_text(row: &rusqlite::Row<'_>, i: usize) -> Result<Option<String>, Error> {
    match row.get_ref(i).map_err(failed)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => {
            String::from_utf8(t.to_vec()).map(Some).map_err(|_| Error::Corrupt(format!("column {i} is not UTF-8")))
        }
        ValueRef::Integer(n) => Ok(Some(n.to_string())),
        other => Err(Error::Corrupt(format!("column {i} is {:?}, not text", other.data_type()))),
    }
}

fn integer(row: &rusqlite::Row<'_>, i: usize) -> Result<i64, Error> {
    match row.get_ref(i).map_err(failed)? {
        ValueRef::Integer(n) => Ok(n),
        other => Err(Error::Corrupt(format!("column {i} is {:?}, not an integer", other.data_type()))),
    }
}

/// A sort key column's value as a key of `kind` (SQLite keeps a REAL that is whole as written).
fn sort_value(row: &rusqlite::Row<'_>, i: usize, kind: SortKind) -> Result<Option<SortValue>, Error> {
    let value = row.get_ref(i).map_err(failed)?;
    Ok(match (kind, value) {
        (_, ValueRef::Null) => None,
        (SortKind::Text, _) => optional_text(row, i)?.map(SortValue::Text),
        (SortKind::Integer, ValueRef::Integer(n)) => Some(SortValue::Integer(n)),
        (SortKind::Real, ValueRef::Real(n)) => Some(SortValue::Number(n)),
        #[allow(clippy::cast_precision_loss)]
        (SortKind::Real, ValueRef::Integer(n)) => Some(SortValue::Number(n as f64)),
        (_, other) => return Err(Error::Corrupt(format!("sort key {i} is {:?}", other.data_type()))),
    })
}

pub(crate) fn failed(error: rusqlite::Error) -> Error {
    Error::Driver(error.to_string())
}
