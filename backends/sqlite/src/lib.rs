//! The embedded SQLite store: fhirgate's default, one file under `./data/`.
//!
//! [`SqliteStore`] is the relational store of `fhirgate-sql` on one SQLite file in WAL mode;
//! this crate keeps what is SQLite's own. Every version is a row of `resource_version` whose
//! `INTEGER PRIMARY KEY` is the store's write position (the history snapshot); its index entries
//! are one JSON array in that row (`index_entries`; versions written before migration 0004 keep
//! theirs in `index_entry`, keyed by the row). Writes go to one dedicated thread owning the
//! writer connection (`writer.rs`, `rusqlite`), which commits the batches that queued meanwhile
//! as one group in a `BEGIN IMMEDIATE` transaction (`write.rs`), so a precondition check and its
//! insert are atomic even against another process; a thread of its own copies the WAL into the
//! file (`checkpoint.rs`), never the writer. Reads use connections of their own
//! (`readers.rs`: `rusqlite`, point reads on the calling thread) and, thanks to WAL, never wait
//! for a write. sqlx keeps the migrations, the job records and an in-memory database.
//!
//! Search runs on the search tables of `fhirgate-sql` (migrations/0002_search.sql), which hold
//! the index of each resource's current version.
//!
//! Not for: several servers on one file over a
//! network file system (SQLite's locking does not hold there).

mod checkpoint;
mod deferred;
mod load;
#[cfg(test)]
mod plans;
mod readers;
mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::storage::{Guard, PoolUsage, StoreError, Write};
use fhirgate_sql::{Backend, ReadConnection, SqlStore};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use fhirgate_sql::Error;

/// A FHIR store in one SQLite database.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// Connections of the read pool: reads run in parallel with each other and with the writer.
const READERS: u32 = 4;
/// How long a connection waits for a lock another process holds before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache of the writer (and of sqlx's connections), in KiB (SQLite's `cache_size` as a
/// negative number). The default 2 MB made a third of a search's time copies of pages from the
/// kernel's cache (bench/README.md).
const CACHE_KIB: &str = "-32768";
/// Page cache of each reader connection (`readers.rs`), in KiB. Each connection has a cache of
/// its own (the bundled SQLite is built without `SQLITE_ENABLE_MEMORY_MANAGEMENT`, whose shared
/// cache serialised every reader on one mutex: `.cargo/config.toml`), so the process's SQLite
/// memory is bounded by these sizes times the connections: the writer's, at most `readers.rs`'s
/// idle ones plus those in use (two per core for searches, the request threads' point reads).
const READER_CACHE_KIB: &str = "-8192";

/// Makes a cached statement's plan independent of the values bound to it (SQLite's query
/// planner stability guarantee). Without it, a statement whose `LIMIT` is a bound parameter is
/// compiled again at every run (SQLite plans with the limit's value, so binding one expires
/// the statement): every search page was parsed and planned anew, 5-8 % of the server's CPU
/// under `Observation?patient=X&code=Y` (perf, bench/README.md).
fn stable_plans(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop)
}

/// Whether a pooled connection is pinged before each use: sqlx's default, a round trip to the
/// connection's thread on every read and write (a second hand-off per read), for a check that
/// means nothing for an embedded database, whose "connection" cannot drop.
const NO_PING: bool = false;

/// What is SQLite's own in a [`SqliteStore`]: its two pools and its file.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    /// Reads: up to [`READERS`] connections (the writer itself for an in-memory database); the
    /// health check, and every read of an in-memory database.
    reader: SqlitePool,
    /// Reads of a database file, on connections of our own (`readers.rs`).
    readers: Option<Arc<readers::Readers>>,
    /// Exactly one connection: migrations, job records, and every write of an in-memory
    /// database.
    writer: SqlitePool,
    /// The writer thread of a database file (`writer.rs`); `None` in memory.
    thread: Option<writer::Writer>,
    /// The database file; `None` in memory.
    file: Option<PathBuf>,
}

/// Opens the database file at `path`, creating it and its parent directories if missing, and
/// brings its schema up to date.
pub async fn open(path: &Path) -> Result<SqliteStore, Error> {
    open_with(SqliteConnectOptions::new().filename(path), false).await
}

/// Opens a database from a URL: `sqlite:PATH`, `sqlite://PATH` (both created if missing) or
/// `sqlite::memory:` (a private database that lives as long as this store and its clones; reads
/// then share the one connection with writes).
pub async fn connect(url: &str) -> Result<SqliteStore, Error> {
    let options = SqliteConnectOptions::from_str(url)?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    open_with(options, in_memory).await
}

async fn open_with(options: SqliteConnectOptions, in_memory: bool) -> Result<SqliteStore, Error> {
    if !in_memory {
        create_parent(options.get_filename()).await?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(if in_memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("cache_size", CACHE_KIB)
        .foreign_keys(true);
    // An in-memory database dies with its last connection: keep the one connection forever.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(NO_PING)
        .min_connections(u32::from(in_memory))
        .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
        .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations").run(&writer).await?;
    let reader = if in_memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new().max_connections(READERS).test_before_acquire(NO_PING).connect_with(options).await?
    };
    let file = (!in_memory).then(|| writer.connect_options().get_filename().to_path_buf());
    tracing::debug!(file = ?file, "sqlite store open");
    let aside = deferred::Aside::default();
    let readers = file.as_deref().map(|file| readers::Readers::new(file, aside.clone()));
    let thread = file.as_deref().map(|file| writer::Writer::start(file, aside)).transpose()?;
    if let Some(thread) = &thread {
        // What an initial load interrupted by a crash had set aside (`deferred.rs`).
        while thread.build_one().await? {}
    }
    Ok(SqlStore::new(SqliteBackend { reader, writer, readers, thread, file }))
}

async fn create_parent(file: &Path) -> Result<(), Error> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::Open(format!("cannot create directory `{}`: {e}", dir.display()))),
        _ => Ok(()),
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Database = sqlx::Sqlite;
    const KIND: &'static str = "sqlite";

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn point_reader(&self) -> Result<ReadConnection<sqlx::Sqlite>, Error> {
        match &self.readers {
            Some(readers) => Ok(ReadConnection::Own(Box::new(readers.get(false)))),
            None => Ok(ReadConnection::Pooled(self.reader.acquire().await?)),
        }
    }

    async fn query_reader(&self) -> Result<ReadConnection<sqlx::Sqlite>, Error> {
        match &self.readers {
            Some(readers) => Ok(ReadConnection::Own(Box::new(readers.get(true)))),
            None => Ok(ReadConnection::Pooled(self.reader.acquire().await?)),
        }
    }

    fn jobs(&self) -> &SqlitePool {
        &self.writer
    }

    async fn transact(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
        if writes.is_empty() {
            return Ok(());
        }
        match &self.thread {
            Some(thread) => thread.transact(writes, guards).await,
            None => write::transact_pooled(&self.writer, writes, guards).await,
        }
    }

    /// A database file's load goes to its writer thread's fast path (`load.rs`); an in-memory
    /// database's is an ordinary transaction of its creates.
    async fn load(&self, writes: &[Write]) -> Result<(), Error> {
        match &self.thread {
            Some(thread) if !writes.is_empty() => thread.load(writes.to_vec()).await,
            _ => self.transact(writes.to_vec(), &[]).await,
        }
    }

    /// A database file's search indexes are set aside while an initial load fills it from
    /// empty (`deferred.rs`); an in-memory database keeps them.
    async fn load_begins(&self) -> Result<(), Error> {
        match &self.thread {
            Some(thread) => thread.set_aside().await,
            None => Ok(()),
        }
    }

    async fn load_ends(&self) -> Result<bool, Error> {
        match &self.thread {
            Some(thread) => thread.build_one().await,
            None => Ok(false),
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        // Open connections keep working on a file deleted or replaced underneath them, and what
        // they write then is lost: a store whose file is gone is not healthy.
        if let Some(file) = &self.file {
            if !tokio::fs::metadata(file).await.is_ok_and(|m| m.is_file()) {
                return Err(StoreError::Unavailable(format!("database file `{}` is gone", file.display())));
            }
        }
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(Error::from)?;
        Ok(())
    }

    async fn close(&self) {
        if let Some(thread) = &self.thread {
            thread.close().await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The writer's pool and sqlx's read pool (the health check's; an in-memory database's
    /// reads). A file's reads run on connections of our own (`readers.rs`), not counted here.
    fn pools(&self) -> Vec<PoolUsage> {
        vec![fhirgate_sql::usage("write", &self.writer), fhirgate_sql::usage("read", &self.reader)]
    }
}
