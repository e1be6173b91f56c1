//! `store.cosmos.layout = "auto"` (the default): which layout a store already has, read from
//! what its container holds, so a new store gets the partitioned layout and an existing store of
//! the one-partition layout keeps working (it never looks empty) until it is migrated.
//!
//! In order: a migration checkpoint of the store (`m|STORE` in `STORE|migration`) says
//! partitioned once the migration is done, one-partition while it is not (the copy is
//! incomplete); documents of the store in the partitioned layout (`c.s = STORE` anywhere) say
//! partitioned; documents in the store's one partition (`STORE`) say one-partition, with a
//! warning pointing at `fhirgate store migrate-cosmos`; nothing at all says partitioned (a new
//! store). Three small requests at start.

use azure_data_cosmos::{FeedScope, Query};
use serde::Deserialize;
use serde_json::Value;

use crate::CosmosStore;
use crate::error::Error;
use crate::layout::Layout;
use crate::read;

#[derive(Deserialize)]
struct Checkpoint {
    done: bool,
}

/// The layout of `probe`'s store (`probe` is connected with either layout: only its container
/// and store name are used).
pub(crate) async fn layout(probe: &CosmosStore) -> Result<Layout, Error> {
    let name = probe.store_name();
    let checkpoint = read::item::<Checkpoint>(probe, &format!("{name}|migration"), &format!("m|{name}")).await?;
    if let Some((checkpoint, _)) = checkpoint {
        if checkpoint.done {
            return Ok(Layout::Partitioned);
        }
        tracing::warn!(
            store = name,
            "the migration of this Cosmos DB store to the partitioned layout has not finished: serving the \
             one-partition store; run `fhirgate store migrate-cosmos` again to finish it"
        );
        return Ok(Layout::Single);
    }
    let any = |text: &str| Query::from(text.to_owned()).with_parameter("@s", name);
    let partitioned: Vec<Value> =
        read::query_in(probe, FeedScope::full_container(), "layout", any("SELECT TOP 1 c.id FROM c WHERE c.s = @s")?)
            .await?;
    if !partitioned.is_empty() {
        return Ok(Layout::Partitioned);
    }
    let single: Vec<Value> =
        read::query_in(probe, FeedScope::partition(name.to_owned()), "layout", any("SELECT TOP 1 c.id FROM c")?)
            .await?;
    if single.is_empty() {
        return Ok(Layout::Partitioned);
    }
    tracing::warn!(
        store = name,
        "this Cosmos DB store uses the one-partition layout (at most 20 GB and 10,000 RU/s, 49 resources per \
         transaction): serving it as such; `fhirgate store migrate-cosmos` copies it into the partitioned layout, \
         which new stores get"
    );
    Ok(Layout::Single)
}
