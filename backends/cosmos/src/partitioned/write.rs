//! Writes in the partitioned layout. A single resource without guards is one transactional
//! batch in its partition (its version created, its current document replaced under the etag
//! read): `If-Match` and lost updates are exact without any shared document. Anything else (a
//! transaction Bundle, a conditional create) goes through the transaction protocol ([`txn`]),
//! tried again with a little jitter while other live transactions hold what it needs.

use std::time::Duration;

use azure_data_cosmos::TransactionalBatch;
use fhirgate_engine::storage::{Guard, StoreError, Write};

use super::txn::{self, Outcome, resolve};
use super::{MAX_WRITES, lost_race};
use crate::CosmosStore;
use crate::documents::{Current, VersionDoc};
use crate::error::Error;
use crate::read;
use crate::write::{batch_if_match, execute};

/// Applies `writes` atomically if no guard matches.
pub(crate) async fn transact(store: &CosmosStore, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
    if writes.len() > MAX_WRITES {
        return Err(Error::Unsupported(format!(
            "this Cosmos DB store makes at most {MAX_WRITES} resources atomic in one transaction and this one writes \
             {}; split it, or send it as a batch",
            writes.len()
        )));
    }
    if writes.is_empty() && guards.is_empty() {
        return Ok(());
    }
    let attempts = store.inner.write_attempts;
    for attempt in 1..=attempts {
        let result = match (writes.as_slice(), guards) {
            ([one], []) => single(store, one).await,
            _ => txn::run(store, &writes, guards).await,
        };
        match result {
            Err(Error::Contended(_)) if attempt < attempts => {
                let jitter = u64::from(attempt.min(20)) * (1 + u64::from(rand_small()));
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            Err(Error::Contended(message)) => {
                return Err(Error::Service { status: 503, message, retry_after: Some(Duration::from_secs(1)) });
            }
            result => return result,
        }
    }
    Ok(())
}

/// A small number that differs between concurrent writers (jitter).
fn rand_small() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0] % 4
}

/// One resource: read its current document (resolving a transaction that holds it), check the
/// version, then one batch under the etag read.
async fn single(store: &CosmosStore, w: &Write) -> Result<(), Error> {
    let v = &w.version;
    let (pk, cid) = store.current_at(&v.resource_type, &v.id);
    for _ in 0..5 {
        let found = read::item::<Current>(store, &pk, &cid).await?;
        if let Some(p) = found.as_ref().and_then(|(c, _)| c.pend.clone()) {
            if resolve(store, &p.tx, Some((&v.resource_type, &v.id))).await? == Outcome::Live {
                return Err(Error::Contended(format!("{}/{} is held by a transaction", v.resource_type, v.id)));
            }
            continue;
        }
        let at = found.as_ref().map_or(0, |(c, _)| c.v);
        let expected = v.version.saturating_sub(1);
        if at != expected {
            return Err(StoreError::VersionConflict {
                resource_type: v.resource_type.clone(),
                id: v.id.clone(),
                expected,
                found: at,
            }
            .into());
        }
        if let Some(seen) = found.as_ref().and_then(|(c, _)| c.seq) {
            store.inner.hlc.observe(seen);
        }
        let seq = store.inner.hlc.now();
        let mut doc = VersionDoc::new(&pk, v, w.index.clone(), seq);
        doc.id = store.version_at(&v.resource_type, &v.id, v.version).1;
        doc.s = store.store_field();
        let mut current = Current::new(&pk, v, &w.index);
        current.id = cid.clone();
        current.s = store.store_field();
        current.seq = Some(seq);
        let mut batch = TransactionalBatch::new(pk.clone()).create_item(doc)?;
        batch = match found {
            Some((_, Some(etag))) => batch.replace_item(cid.clone(), current, Some(batch_if_match(etag)))?,
            _ => batch.create_item(current)?,
        };
        match execute(store, batch).await {
            Ok(_) => return Ok(()),
            // Someone wrote in between: read again (a moved version is then a conflict).
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended(format!("{}/{} keeps changing", v.resource_type, v.id)))
}
