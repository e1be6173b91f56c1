//! The embedded SQLite store: fhirgate's default, one file under `./data/`.
//!
//! [`SqliteStore`] implements [`fhirgate_engine::storage::Store`] on one SQLite file in WAL mode.
//! Every version is a row of `resource_version` whose `INTEGER PRIMARY KEY` is the store's write
//! position (the history snapshot); index entries sit in `index_entry`, keyed by that row.
//! Writes go through a pool of exactly one connection and run in `BEGIN IMMEDIATE`
//! transactions, so a precondition check and its insert are atomic even against another
//! process; reads use their own pool and, thanks to WAL, never wait for a write.
//!
//! Search runs on the search tables of `fhirgate-sql` (migrations/0002_search.sql), which hold
//! the index of each resource's current version.
//!
//! Not for: several servers on one file over a
//! network file system (SQLite's locking does not hold there).

mod error;
mod history;
mod instant;
mod read;
mod search;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Guard, HistoryPage, HistoryQuery, IndexEntry, ResourceVersion, SearchMatch, Store, StoreError, Write,
};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use error::Error;

/// Connections of the read pool: reads run in parallel with each other and with the writer.
const READERS: u32 = 4;
/// How long a connection waits for a lock another process holds before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache per connection, in KiB (SQLite's `cache_size` as a negative number). The default
/// 2 MB made a third of a search's time copies of pages from the kernel's cache (bench/README.md).
const CACHE_KIB: &str = "-32768";

/// A FHIR store in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads: up to [`READERS`] connections (the writer itself for an in-memory database).
    reader: SqlitePool,
    /// Writes: exactly one connection, so writers queue in the pool instead of on SQLite's lock.
    writer: SqlitePool,
    /// The database file; `None` in memory.
    file: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it and its parent directories if missing,
    /// and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(SqliteConnectOptions::new().filename(path), false).await
    }

    /// Opens a database from a URL: `sqlite:PATH`, `sqlite://PATH` (both created if missing) or
    /// `sqlite::memory:` (a private database that lives as long as this store and its clones;
    /// reads then share the one connection with writes).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open_with(options, in_memory).await
    }

    async fn open_with(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, Error> {
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
            .min_connections(u32::from(in_memory))
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new().max_connections(READERS).connect_with(options).await?
        };
        let file = (!in_memory).then(|| writer.connect_options().get_filename().to_path_buf());
        tracing::debug!(file = ?file, "sqlite store open");
        Ok(Self { reader, writer, file })
    }

    /// Closes every connection, waiting for them to finish; the store is unusable afterwards.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

async fn create_parent(file: &Path) -> Result<(), Error> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir).await.map_err(|source| Error::CreateDir { path: dir.to_path_buf(), source })
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::current(&self.reader, resource_type, id).await?)
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::version(&self.reader, resource_type, id, version).await?)
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        Ok(read::versions(&self.reader, keys).await?)
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        Ok(read::index(&self.reader, resource_type, id, version).await?)
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        Ok(write::transact(&self.writer, writes, guards).await?)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(history::page(&self.reader, query).await?)
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        Ok(search::search(&self.reader, query, limit).await?)
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        Ok(search::count(&self.reader, query).await?)
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

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
