//! [`SqlStore`]: the engine's [`Store`] on a relational database, the same for SQLite and
//! PostgreSQL but for what a [`Backend`] supplies (its pool, its write path, its health check).

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Guard, HistoryPage, HistoryQuery, IndexEntry, JobRecord, Keyed, PoolUsage, ResourceVersion, SearchMatch, Store,
    StoreError, Write,
};
use sqlx::Pool;
use sqlx::pool::PoolConnection;

use crate::driver::{Dialected, Driver};
use crate::{Error, history, jobs, read, reindex, search};

/// What differs between the relational stores.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The sqlx database.
    type Database: Dialected;

    /// The store's name for logs and the CapabilityStatement (`sqlite`, `postgres`).
    const KIND: &'static str;

    /// The pool reads, history and searches take a connection from.
    fn reader(&self) -> &Pool<Self::Database>;

    /// A connection for a read of known, small cost: one resource, one version, one page of
    /// versions by key, one version's index. By default one of [`Self::reader`]'s.
    async fn point_reader(&self) -> Result<ReadConnection<Self::Database>, Error> {
        Ok(ReadConnection::Pooled(self.reader().acquire().await?))
    }

    /// A connection for a search, a count or a history page, whose cost depends on the data. By
    /// default one of [`Self::reader`]'s.
    async fn query_reader(&self) -> Result<ReadConnection<Self::Database>, Error> {
        Ok(ReadConnection::Pooled(self.reader().acquire().await?))
    }

    /// Applies every write or none, if no guard matches (see [`Store::transact_guarded`]); the
    /// shared steps are in [`crate::write`].
    async fn transact(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error>;

    /// An initial load's batch of creates (see [`Store::load`]); by default [`Self::transact`]
    /// of them.
    async fn load(&self, writes: &[Write]) -> Result<(), Error> {
        self.transact(writes.to_vec(), &[]).await
    }

    /// See [`Store::load_begins`]; by default nothing is set aside.
    async fn load_begins(&self) -> Result<(), Error> {
        Ok(())
    }

    /// See [`Store::load_ends`]; by default nothing is left to build.
    async fn load_ends(&self) -> Result<bool, Error> {
        Ok(false)
    }

    /// The pool job records are read and written on ([`crate::jobs`]): by default
    /// [`Self::reader`]'s (SQLite: its writer, so they queue with the other writes).
    fn jobs(&self) -> &Pool<Self::Database> {
        self.reader()
    }

    /// Whether the database is reachable and answering.
    async fn health(&self) -> Result<(), StoreError>;

    /// Closes every connection, waiting for them to finish.
    async fn close(&self);

    /// Its pools' usage now. By default [`Self::reader`]'s, as `shared`.
    fn pools(&self) -> Vec<PoolUsage> {
        vec![usage("shared", self.reader())]
    }
}

/// How full `pool` is now.
pub fn usage<DB: sqlx::Database>(name: &'static str, pool: &Pool<DB>) -> PoolUsage {
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(open).min(open);
    PoolUsage { pool: name, open, idle, max: pool.options().get_max_connections() }
}

/// A connection reads run on: one of the pool's, or one the backend runs its own way (SQLite:
/// on the calling thread, without sqlx's hand-offs to a connection thread).
pub enum ReadConnection<DB: sqlx::Database> {
    Pooled(PoolConnection<DB>),
    Own(Box<dyn Driver>),
}

impl<DB: sqlx::Database> ReadConnection<DB>
where
    DB::Connection: Driver,
{
    /// The connection to run statements on.
    pub fn driver(&mut self) -> &mut dyn Driver {
        match self {
            Self::Pooled(connection) => &mut **connection,
            Self::Own(driver) => driver.as_mut(),
        }
    }
}

/// A FHIR store in a relational database: reads, history and search are this crate's, writes
/// are the backend's.
#[derive(Debug, Clone)]
pub struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    /// The store on an opened backend.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// What is particular to this store's database.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Closes every connection, waiting for them to finish; the store is unusable afterwards.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

#[async_trait]
impl<B> Store for SqlStore<B>
where
    B: Backend,
    <B::Database as sqlx::Database>::Connection: Driver,
{
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::current(self.backend.point_reader().await?.driver(), resource_type, id).await?)
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::version(self.backend.point_reader().await?.driver(), resource_type, id, version).await?)
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        Ok(read::versions(self.backend.point_reader().await?.driver(), keys).await?)
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        Ok(read::index(self.backend.point_reader().await?.driver(), resource_type, id, version).await?)
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        Ok(self.backend.transact(writes, guards).await?)
    }

    async fn load(&self, writes: &[Write]) -> Result<(), StoreError> {
        Ok(self.backend.load(writes).await?)
    }

    async fn load_begins(&self) -> Result<(), StoreError> {
        Ok(self.backend.load_begins().await?)
    }

    async fn load_ends(&self) -> Result<bool, StoreError> {
        Ok(self.backend.load_ends().await?)
    }

    /// On the jobs pool; on SQLite it takes the write lock at `BEGIN IMMEDIATE`, as the writer
    /// thread does, so a reindex and the writes take turns.
    async fn reindex(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
        index: &[IndexEntry],
    ) -> Result<bool, StoreError> {
        Ok(reindex::reindex(self.backend.jobs(), resource_type, id, version, index).await?)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(history::page(self.backend.query_reader().await?.driver(), query).await?)
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        Ok(self.search_keyed(query, limit).await?.into_iter().map(|k| k.matched).collect())
    }

    async fn search_keyed(&self, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, StoreError> {
        Ok(search::search(self.backend.query_reader().await?.driver(), query, limit).await?)
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        Ok(search::count(self.backend.query_reader().await?.driver(), query).await?)
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(jobs::get(&mut *self.backend.jobs().acquire().await.map_err(Error::from)?, id).await?)
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        Ok(jobs::put(&mut *self.backend.jobs().acquire().await.map_err(Error::from)?, job).await?)
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        Ok(jobs::delete(&mut *self.backend.jobs().acquire().await.map_err(Error::from)?, id).await?)
    }

    async fn jobs(&self, kind: &str) -> Result<Vec<JobRecord>, StoreError> {
        Ok(jobs::list(&mut *self.backend.jobs().acquire().await.map_err(Error::from)?, kind).await?)
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.backend.health().await
    }

    fn kind(&self) -> &'static str {
        B::KIND
    }

    fn pools(&self) -> Vec<PoolUsage> {
        self.backend.pools()
    }
}
