//! The Cosmos DB store of fhirgate, on Microsoft's Rust SDK (`azure_data_cosmos`).
//!
//! The data model, its partitioning and its trade-offs are described in this crate's
//! `README.md`. Two layouts ([`Layout`]): one logical partition per store, where every write
//! batch is one transactional batch serialised by a clock document; or one logical partition
//! per resource ([`partitioned`]), where multi-resource writes commit through a transaction
//! record and history is ordered by a hybrid logical clock. Either way, per resource a
//! `current` document (what reads and searches use, with the index entries flattened for Cosmos
//! SQL) and one immutable document per version.

mod connect;
mod detect;
mod documents;
mod error;
mod history;
mod jobs;
mod layout;
mod migrate;
mod partitioned;
mod read;
mod reindex;
mod search;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use azure_data_cosmos::clients::ContainerClient;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Capabilities, Guard, HistoryPage, HistoryQuery, IndexEntry, JobRecord, Keyed, ResourceVersion, SearchMatch, Store,
    StoreError, Write, cost,
};

pub use azure_core::credentials::Secret;
pub use connect::{Auth, CosmosSettings, DEFAULT_MAX_SEARCH_KEYS};
pub use error::Error;
pub use layout::Layout;
pub use migrate::MigrationReport;
pub use search::form::SearchQueries;

/// A FHIR store in a Cosmos DB container.
#[derive(Clone)]
pub struct CosmosStore {
    inner: Arc<Inner>,
}

struct Inner {
    container: ContainerClient,
    /// The store's name: the partition key value of every document of the one-partition
    /// layout, the first part of every partition key value of the partitioned one.
    partition: String,
    layout: Layout,
    /// Partitioned layout: the history clock.
    hlc: partitioned::hlc::Hlc,
    /// Partitioned layout: how long a transaction may stay pending before others may abort it.
    tx_lease: std::time::Duration,
    /// Partitioned layout: resources staged or applied at once by one transaction.
    tx_parallel: usize,
    /// The most resource keys one search may carry into its final query.
    max_search_keys: usize,
    /// How a search's clauses are written (key-set queries or `EXISTS` sub-queries).
    search_queries: search::form::SearchQueries,
    /// Test hook: protocol steps left before the writer "crashes" (see `partitioned::fault`).
    #[cfg(feature = "emulator")]
    crash_after: std::sync::Mutex<Option<usize>>,
    /// Attempts of one write batch when other writers move the clock in between.
    write_attempts: u32,
    /// Batches of this process take turns: every batch replaces the clock, so concurrent ones
    /// would only make each other retry. Other processes are still excluded by the clock's etag.
    writer: tokio::sync::Mutex<()>,
}

impl CosmosStore {
    /// Records the request charge of one Cosmos DB call, in the logs (inside the request's span)
    /// and as the call's [`cost`] (the request's and the process's request units).
    fn charged(&self, operation: &'static str, charge: f64) {
        cost::charge(charge);
        tracing::debug!(target: "fhirgate::cosmos", operation, request_charge = charge, "cosmos request");
    }

    /// A version's document as committed.
    async fn version(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<documents::VersionDoc>, Error> {
        if self.partitioned() {
            partitioned::resolve::version(self, resource_type, id, version).await
        } else {
            read::version(self, resource_type, id, version).await
        }
    }

    /// One point read proving the container answers (a missing document is an answer).
    async fn ping(&self) -> Result<(), Error> {
        if self.partitioned() {
            read::item::<serde_json::Value>(self, &self.jobs_pk(), "ping").await?;
        } else {
            read::clock(self).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for CosmosStore {
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        let current = if self.partitioned() {
            partitioned::resolve::current(self, resource_type, id).await?
        } else {
            read::current(self, resource_type, id).await?
        };
        Ok(current.map(|c| c.into_version()).transpose()?)
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(self.version(resource_type, id, version).await?.map(|v| v.to_version()).transpose()?)
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        Ok(self.version(resource_type, id, version).await?.map(|v| v.index))
    }

    async fn reindex(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
        index: &[IndexEntry],
    ) -> Result<bool, StoreError> {
        Ok(reindex::reindex(self, resource_type, id, version, index).await?)
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        if self.partitioned() {
            Ok(partitioned::transact(self, writes, guards).await?)
        } else {
            Ok(write::transact(self, writes, guards).await?)
        }
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(history::page(self, query).await?)
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        Ok(self.search_keyed(query, limit).await?.into_iter().map(|k| k.matched).collect())
    }

    async fn search_keyed(&self, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, StoreError> {
        if self.partitioned() {
            Ok(partitioned::settle::consistent(self, &[], || search::search(self, query, limit)).await?)
        } else {
            Ok(search::search(self, query, limit).await?)
        }
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        if self.partitioned() {
            Ok(partitioned::settle::consistent(self, &[], || search::count(self, query)).await?)
        } else {
            Ok(search::count(self, query).await?)
        }
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(jobs::get(self, id).await?)
    }

    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        Ok(jobs::put(self, job).await?)
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        Ok(jobs::delete(self, id).await?)
    }

    async fn jobs(&self, kind: &str) -> Result<Vec<JobRecord>, StoreError> {
        Ok(jobs::list(self, kind).await?)
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(self.ping().await?)
    }

    fn kind(&self) -> &'static str {
        "cosmos"
    }

    fn capabilities(&self) -> Capabilities {
        let max = if self.partitioned() { partitioned::MAX_WRITES } else { write::MAX_WRITES };
        Capabilities { max_batch_writes: Some(max), ..Capabilities::default() }
    }
}
