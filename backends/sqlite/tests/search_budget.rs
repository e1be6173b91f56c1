//! A search that runs past the engine's time budget ends with a timeout OperationOutcome (503,
//! so clients may retry), never a hang or a 500. The store here is the real SQLite store behind a
//! wrapper that makes its searches slow, the way a huge or badly indexed search would be.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::access::Unrestricted;
use fhirgate_engine::interaction::{Method, Request};
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Guard, HistoryPage, HistoryQuery, IndexEntry, ResourceVersion, SearchMatch, Store, StoreError, Write,
};
use fhirgate_engine::{Engine, EngineConfig};
use fhirgate_sqlite::SqliteStore;

/// SQLite, with searches that take `delay` longer.
struct Slow {
    inner: SqliteStore,
    delay: Duration,
}

#[async_trait]
impl Store for Slow {
    async fn read(&self, t: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        self.inner.read(t, id).await
    }
    async fn vread(&self, t: &str, id: &str, v: u64) -> Result<Option<ResourceVersion>, StoreError> {
        self.inner.vread(t, id, v).await
    }
    async fn index(&self, t: &str, id: &str, v: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        self.inner.index(t, id, v).await
    }
    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        self.inner.transact_guarded(writes, guards).await
    }
    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.inner.history(query).await
    }
    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.search(query, limit).await
    }
    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.count(query).await
    }
    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }
    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[tokio::test]
async fn a_search_past_its_budget_is_a_timeout_outcome() {
    let inner = fhirgate_sqlite::connect("sqlite::memory:").await.expect("open an in-memory store");
    let store = Arc::new(Slow { inner, delay: Duration::from_secs(5) });
    let config = EngineConfig { search_timeout: Duration::from_millis(100), ..EngineConfig::default() };
    let engine = Engine::new(config, store);
    let response = engine.handle(&Request::new(Method::Get, "Patient", "http://localhost/fhir"), &Unrestricted).await;
    assert_eq!(response.status, 503);
    assert!(response.header("Retry-After").is_some());
    let outcome: serde_json::Value = serde_json::from_slice(&response.body).expect("an OperationOutcome");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "timeout");
    assert!(outcome["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains("narrow")), "{outcome}");
}
