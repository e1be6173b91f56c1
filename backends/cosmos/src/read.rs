//! Point reads (by partition key and document id) and queries, with their request charges
//! recorded.

use azure_data_cosmos::models::ItemResponse;
use azure_data_cosmos::{FeedScope, Query};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;

use crate::CosmosStore;
use crate::documents::{CLOCK, Clock, Current, VersionDoc};
use crate::error::Error;

/// The current document of a resource as stored (the partitioned layout resolves transactions
/// on top of it: `partitioned::resolve`).
pub(crate) async fn current(store: &CosmosStore, resource_type: &str, id: &str) -> Result<Option<Current>, Error> {
    let (pk, doc) = store.current_at(resource_type, id);
    Ok(item::<Current>(store, &pk, &doc).await?.map(|(c, _)| c))
}

/// The document of one version as stored.
pub(crate) async fn version(
    store: &CosmosStore,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<VersionDoc>, Error> {
    let (pk, doc) = store.version_at(resource_type, id, version);
    Ok(item::<VersionDoc>(store, &pk, &doc).await?.map(|(v, _)| v))
}

/// The clock's position and etag (`0` and none before the first write); one-partition layout.
pub(crate) async fn clock(store: &CosmosStore) -> Result<(u64, Option<String>), Error> {
    Ok(match item::<Clock>(store, &store.inner.partition, CLOCK).await? {
        Some((clock, etag)) => (clock.seq, etag),
        None => (0, None),
    })
}

/// A document by partition key and id, with its etag; `None` if it does not exist.
pub(crate) async fn item<T: DeserializeOwned>(
    store: &CosmosStore,
    pk: &str,
    id: &str,
) -> Result<Option<(T, Option<String>)>, Error> {
    match store.inner.container.read_item(pk.to_owned(), id, None).await {
        Ok(response) => {
            store.charged("read", charge(&response));
            let etag = response.headers().etag().map(|e| e.to_string());
            Ok(Some((response.into_model::<T>()?, etag)))
        }
        Err(e) if e.status().is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every result of a query over the store (its partition, or every partition).
pub(crate) async fn query<T: DeserializeOwned + Send + 'static>(
    store: &CosmosStore,
    operation: &'static str,
    query: Query,
) -> Result<Vec<T>, Error> {
    query_in(store, store.scope(), operation, query).await
}

/// Every result of a query in `scope`.
pub(crate) async fn query_in<T: DeserializeOwned + Send + 'static>(
    store: &CosmosStore,
    scope: FeedScope,
    operation: &'static str,
    query: Query,
) -> Result<Vec<T>, Error> {
    let mut pages = store.inner.container.query_items::<T>(query, scope, None).await?.into_pages();
    let mut out = Vec::new();
    let mut spent = 0.0;
    while let Some(page) = pages.try_next().await? {
        spent += page.headers().request_charge().map_or(0.0, |c| c.value());
        out.extend(page.into_items());
    }
    store.charged(operation, spent);
    Ok(out)
}

/// The results of a query over the store, handed to `take` one by one until it answers
/// `false`: the pages after that are never requested (what was read is charged).
pub(crate) async fn query_until<T: DeserializeOwned + Send + 'static>(
    store: &CosmosStore,
    operation: &'static str,
    query: Query,
    mut take: impl FnMut(T) -> bool,
) -> Result<(), Error> {
    let mut pages = store.inner.container.query_items::<T>(query, store.scope(), None).await?.into_pages();
    let mut spent = 0.0;
    let result = async {
        while let Some(page) = pages.try_next().await? {
            spent += page.headers().request_charge().map_or(0.0, |c| c.value());
            if !page.into_items().into_iter().all(&mut take) {
                break;
            }
        }
        Ok(())
    }
    .await;
    store.charged(operation, spent);
    result
}

/// How many documents `filter` selects; `query` binds the parameters to the statement text.
/// Inside one partition `COUNT(1)`; across partitions the SDK (1.1.0-beta.1) runs no aggregate,
/// so one `1` per match is read and counted here: the cost grows with the matches.
pub(crate) async fn count(
    store: &CosmosStore,
    operation: &'static str,
    filter: &str,
    query: impl FnOnce(String) -> Result<Query, Error>,
) -> Result<u64, Error> {
    if store.partitioned() {
        let ones: Vec<u8> =
            query_in(store, store.scope(), operation, query(format!("SELECT VALUE 1 FROM c WHERE {filter}"))?).await?;
        return Ok(u64::try_from(ones.len()).unwrap_or(u64::MAX));
    }
    let counts: Vec<u64> =
        query_in(store, store.scope(), operation, query(format!("SELECT VALUE COUNT(1) FROM c WHERE {filter}"))?)
            .await?;
    Ok(counts.first().copied().unwrap_or(0))
}

/// The request charge of a point operation.
pub(crate) fn charge(response: &ItemResponse) -> f64 {
    response.headers().request_charge().map_or(0.0, |c| c.value())
}
