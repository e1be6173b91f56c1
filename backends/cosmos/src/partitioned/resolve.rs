//! Reads in the partitioned layout: what a reader sees of a resource held by a transaction.
//! A committed transaction is applied first (then read again); a live pending one is invisible
//! (the previous version is read; a resource it creates does not exist yet); one past its lease
//! is aborted and cleaned up.

use super::txn::{Outcome, resolve};
use crate::CosmosStore;
use crate::documents::{Current, VersionDoc};
use crate::error::Error;
use crate::read;

/// The current document of a resource as committed; `None` if it never existed.
pub(crate) async fn current(store: &CosmosStore, resource_type: &str, id: &str) -> Result<Option<Current>, Error> {
    let (pk, cid) = store.current_at(resource_type, id);
    let mut found = read::item::<Current>(store, &pk, &cid).await?;
    for _ in 0..3 {
        let Some(pend) = found.as_ref().and_then(|(c, _)| c.pend.clone()) else { break };
        if resolve(store, &pend.tx, Some((resource_type, id))).await? == Outcome::Live {
            break;
        }
        found = read::item::<Current>(store, &pk, &cid).await?;
    }
    Ok(found.map(|(c, _)| c).filter(|c| c.v > 0))
}

/// Version `version` of a resource if it is committed.
pub(crate) async fn version(
    store: &CosmosStore,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<VersionDoc>, Error> {
    let Some(doc) = read::version(store, resource_type, id, version).await? else { return Ok(None) };
    let Some(tx) = doc.tx.clone() else { return Ok(Some(doc)) };
    if resolve(store, &tx, Some((resource_type, id))).await? == Outcome::Live {
        return Ok(None);
    }
    Ok(read::version(store, resource_type, id, version).await?.filter(|d| d.tx.is_none()))
}
