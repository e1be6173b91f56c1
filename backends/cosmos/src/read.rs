//! Point reads (by document id, inside the store's partition) and queries, with their request
//! charges recorded.

use azure_data_cosmos::models::ItemResponse;
use azure_data_cosmos::{FeedScope, Query};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;

use crate::CosmosStore;
use crate::documents::{CLOCK, Clock, Current, VersionDoc, current_id, version_id};
use crate::error::Error;

/// The current document of a resource.
pub(crate) async fn current(store: &CosmosStore, resource_type: &str, id: &str) -> Result<Option<Current>, Error> {
    Ok(item::<Current>(store, &current_id(resource_type, id)).await?.map(|(c, _)| c))
}

/// The document of one version.
pub(crate) async fn version(
    store: &CosmosStore,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<VersionDoc>, Error> {
    Ok(item::<VersionDoc>(store, &version_id(resource_type, id, version)).await?.map(|(v, _)| v))
}

/// The clock's position and etag (`0` and none before the first write).
pub(crate) async fn clock(store: &CosmosStore) -> Result<(u64, Option<String>), Error> {
    Ok(match item::<Clock>(store, CLOCK).await? {
        Some((clock, etag)) => (clock.seq, etag),
        None => (0, None),
    })
}

/// A document by id with its etag; `None` if it does not exist.
pub(crate) async fn item<T: DeserializeOwned>(
    store: &CosmosStore,
    id: &str,
) -> Result<Option<(T, Option<String>)>, Error> {
    let inner = &store.inner;
    match inner.container.read_item(inner.partition.clone(), id, None).await {
        Ok(response) => {
            store.charged("read", charge(&response));
            let etag = response.headers().etag().map(|e| e.to_string());
            Ok(Some((response.into_model::<T>()?, etag)))
        }
        Err(e) if e.status().is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every result of a query in the store's partition.
pub(crate) async fn query<T: DeserializeOwned + Send + 'static>(
    store: &CosmosStore,
    operation: &'static str,
    query: Query,
) -> Result<Vec<T>, Error> {
    let inner = &store.inner;
    let mut pages = inner
        .container
        .query_items::<T>(query, FeedScope::partition(inner.partition.clone()), None)
        .await?
        .into_pages();
    let mut out = Vec::new();
    let mut spent = 0.0;
    while let Some(page) = pages.try_next().await? {
        spent += page.headers().request_charge().map_or(0.0, |c| c.value());
        out.extend(page.into_items());
    }
    store.charged(operation, spent);
    Ok(out)
}

/// The request charge of a point operation.
pub(crate) fn charge(response: &ItemResponse) -> f64 {
    response.headers().request_charge().map_or(0.0, |c| c.value())
}
