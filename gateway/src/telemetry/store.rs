//! A span around every call of a store ([`Traced`]), so each backend (SQLite, PostgreSQL,
//! Cosmos DB) shows in traces without a line of tracing code of its own. Stores are wrapped
//! only while traces are exported.

use std::sync::Arc;

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Capabilities, Guard, HistoryPage, HistoryQuery, IndexEntry, ResourceVersion, SearchMatch, Store, StoreError, Write,
};
use tracing::Instrument as _;

use super::SPAN_TARGET;

/// A store whose calls are spans (`store.read`, `store.search`...).
pub struct Traced {
    inner: Arc<dyn Store>,
}

impl Traced {
    /// `store` itself when traces are off, else wrapped.
    pub fn wrap(store: Arc<dyn Store>) -> Arc<dyn Store> {
        if super::enabled() { Arc::new(Self { inner: store }) } else { store }
    }
}

/// A client span for one store operation (`name` is static: one callsite per operation).
macro_rules! store_span {
    ($name:literal, $kind:expr) => {
        tracing::info_span!(
            target: SPAN_TARGET,
            $name,
            otel.kind = "client",
            db.system.name = $kind,
            db.operation.name = &$name["store.".len()..],
        )
    };
}

#[async_trait]
impl Store for Traced {
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        let span = store_span!("store.read", self.inner.kind());
        self.inner.read(resource_type, id).instrument(span).await
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        let span = store_span!("store.vread", self.inner.kind());
        self.inner.vread(resource_type, id, version).instrument(span).await
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        let span = store_span!("store.vread_many", self.inner.kind());
        self.inner.vread_many(keys).instrument(span).await
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        let span = store_span!("store.index", self.inner.kind());
        self.inner.index(resource_type, id, version).instrument(span).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let span = store_span!("store.transact", self.inner.kind());
        self.inner.transact(writes).instrument(span).await
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        let span = store_span!("store.transact_guarded", self.inner.kind());
        self.inner.transact_guarded(writes, guards).instrument(span).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let span = store_span!("store.history", self.inner.kind());
        self.inner.history(query).instrument(span).await
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        let span = store_span!("store.search", self.inner.kind());
        self.inner.search(query, limit).instrument(span).await
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        let span = store_span!("store.count", self.inner.kind());
        self.inner.count(query).instrument(span).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        let span = store_span!("store.health", self.inner.kind());
        self.inner.health().instrument(span).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
