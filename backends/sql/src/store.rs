//! [`SqlStore`]: the engine's [`Store`] on a relational database, the same for SQLite and
//! PostgreSQL but for what a [`Backend`] supplies (its pool, its write path, its health check).

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Guard, HistoryPage, HistoryQuery, IndexEntry, ResourceVersion, SearchMatch, Store, StoreError, Write,
};
use sqlx::Pool;

use crate::driver::{Dialected, Driver};
use crate::{Error, history, read, search};

/// What differs between the relational stores.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The sqlx database.
    type Database: Dialected;

    /// The store's name for logs and the CapabilityStatement (`sqlite`, `postgres`).
    const KIND: &'static str;

    /// The pool reads, history and searches take a connection from.
    fn reader(&self) -> &Pool<Self::Database>;

    /// Applies every write or none, if no guard matches (see [`Store::transact_guarded`]); the
    /// shared steps are in [`crate::write`].
    async fn transact(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error>;

    /// Whether the database is reachable and answering.
    async fn health(&self) -> Result<(), StoreError>;

    /// Closes every connection, waiting for them to finish.
    async fn close(&self);
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

    /// A connection of the read pool.
    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<B::Database>, Error> {
        Ok(self.backend.reader().acquire().await?)
    }
}

#[async_trait]
impl<B> Store for SqlStore<B>
where
    B: Backend,
    <B::Database as sqlx::Database>::Connection: Driver,
{
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::current(&mut *self.reader().await?, resource_type, id).await?)
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::version(&mut *self.reader().await?, resource_type, id, version).await?)
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        Ok(read::versions(&mut *self.reader().await?, keys).await?)
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        Ok(read::index(&mut *self.reader().await?, resource_type, id, version).await?)
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        Ok(self.backend.transact(writes, guards).await?)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(history::page(&mut *self.reader().await?, query).await?)
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        Ok(search::search(&mut *self.reader().await?, query, limit).await?)
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        Ok(search::count(&mut *self.reader().await?, query).await?)
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.backend.health().await
    }

    fn kind(&self) -> &'static str {
        B::KIND
    }
}
