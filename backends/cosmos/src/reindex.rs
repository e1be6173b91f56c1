//! Reindexing a current version (a custom search parameter was added or changed), on both
//! layouts: the resource's current document (searches read its `x` and `sk`) and its version
//! document (`index`) are replaced together, in one transactional batch in the resource's
//! partition, each under the etag it was read with. A write in between fails the batch (or the
//! write fails on the etag and retries): the reindex is then a no-op, never a lost update. A
//! resource held by a pending transaction (partitioned) is left to be reindexed by its writer.

use azure_data_cosmos::TransactionalBatch;
use fhirgate_engine::storage::IndexEntry;

use crate::CosmosStore;
use crate::documents::{Current, VersionDoc, flatten, sort_keys};
use crate::error::Error;
use crate::read;
use crate::write::{batch_if_match, execute};

/// Replaces the index of `resource_type/id` version `version` if it is still current; whether
/// it was.
pub(crate) async fn reindex(
    store: &CosmosStore,
    resource_type: &str,
    id: &str,
    version: u64,
    index: &[IndexEntry],
) -> Result<bool, Error> {
    let (pk, current_doc) = store.current_at(resource_type, id);
    let Some((mut current, Some(current_etag))) = read::item::<Current>(store, &pk, &current_doc).await? else {
        return Ok(false);
    };
    if current.v != version || current.del || current.pend.is_some() {
        return Ok(false);
    }
    let (_, version_doc) = store.version_at(resource_type, id, version);
    let Some((mut stored, Some(version_etag))) = read::item::<VersionDoc>(store, &pk, &version_doc).await? else {
        return Ok(false);
    };
    if stored.tx.is_some() {
        return Ok(false);
    }
    current.x = index.iter().filter_map(flatten).collect();
    current.sk = sort_keys(index);
    stored.index = index.to_vec();
    let batch = TransactionalBatch::new(pk)
        .replace_item(current_doc, current, Some(batch_if_match(current_etag)))?
        .replace_item(version_doc, stored, Some(batch_if_match(version_etag)))?;
    match execute(store, batch).await {
        Ok(_) => Ok(true),
        Err(Error::Service { status: 404 | 409 | 412, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
