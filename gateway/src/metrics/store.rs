//! A local store as the gateway uses it: every call timed into
//! `fhirgate_store_operation_duration_seconds` (by target, store kind and operation) and, while
//! traces are exported, a client span (`store.read`, `store.search`...); its pools reported at
//! scrape. A decorator around the store the configuration names, made where a target opens its
//! store, so the engine and the stores (SQLite, PostgreSQL, Cosmos DB) know nothing of metrics
//! or traces.
//!
//! Every method of [`Store`] is forwarded, those with defaults too: a default here would hide
//! the store's own (a single-round-trip `vread_many`, its capabilities).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Capabilities, Guard, HistoryPage, HistoryQuery, IndexEntry, JobRecord, Keyed, PoolUsage, ResourceVersion,
    SearchMatch, Store, StoreError, Write,
};
use prometheus::Histogram;
use tracing::Instrument as _;

use crate::telemetry::SPAN_TARGET;

/// The operations timed, in [`Timed::histograms`]' order.
const OPERATIONS: [&str; 9] =
    ["read", "vread", "vread_many", "index", "transact", "history", "search", "count", "health"];

/// A store whose calls are timed (and spans while traces are exported).
pub struct Timed {
    inner: Arc<dyn Store>,
    /// One histogram per operation, found once: a call only observes.
    histograms: Vec<Option<Histogram>>,
}

impl Timed {
    /// `inner`, the store of target `target`, timed.
    pub fn wrap(target: &str, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        let metrics = super::metrics();
        let histograms = OPERATIONS.iter().map(|op| metrics.store_histogram(target, inner.kind(), op)).collect();
        Arc::new(Self { inner, histograms })
    }

    async fn timed<T>(&self, operation: usize, span: tracing::Span, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.instrument(span).await;
        if let Some(Some(histogram)) = self.histograms.get(operation) {
            histogram.observe(started.elapsed().as_secs_f64());
        }
        result
    }
}

/// The client span of one store operation (`name` is a literal: one callsite per operation, a
/// disabled one while traces are off).
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
impl Store for Timed {
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        self.timed(0, store_span!("store.read", self.inner.kind()), self.inner.read(resource_type, id)).await
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        self.timed(1, store_span!("store.vread", self.inner.kind()), self.inner.vread(resource_type, id, version)).await
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        self.timed(2, store_span!("store.vread_many", self.inner.kind()), self.inner.vread_many(keys)).await
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        self.timed(3, store_span!("store.index", self.inner.kind()), self.inner.index(resource_type, id, version)).await
    }

    async fn reindex(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
        index: &[IndexEntry],
    ) -> Result<bool, StoreError> {
        // Counted with the writes.
        let call = self.inner.reindex(resource_type, id, version, index);
        self.timed(4, store_span!("store.reindex", self.inner.kind()), call).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.timed(4, store_span!("store.transact", self.inner.kind()), self.inner.transact(writes)).await
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        self.timed(
            4,
            store_span!("store.transact_guarded", self.inner.kind()),
            self.inner.transact_guarded(writes, guards),
        )
        .await
    }

    async fn load(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.timed(4, store_span!("store.load", self.inner.kind()), self.inner.load(writes)).await
    }

    async fn load_begins(&self) -> Result<(), StoreError> {
        self.inner.load_begins().await
    }

    async fn load_ends(&self) -> Result<bool, StoreError> {
        self.inner.load_ends().await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.timed(5, store_span!("store.history", self.inner.kind()), self.inner.history(query)).await
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        self.timed(6, store_span!("store.search", self.inner.kind()), self.inner.search(query, limit)).await
    }

    async fn search_keyed(&self, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, StoreError> {
        self.timed(6, store_span!("store.search", self.inner.kind()), self.inner.search_keyed(query, limit)).await
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        self.timed(7, store_span!("store.count", self.inner.kind()), self.inner.count(query)).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.timed(8, store_span!("store.health", self.inner.kind()), self.inner.health()).await
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.inner.put_job(job).await
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_job(id).await
    }

    async fn jobs(&self, kind: &str) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.jobs(kind).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn pools(&self) -> Vec<PoolUsage> {
        self.inner.pools()
    }
}
