//! Writes in the one-partition layout: one engine batch is one Cosmos DB transactional batch in the store's partition, so it
//! is atomic. The batch replaces the clock document under the etag read at the start, which
//! serialises batches: if anyone wrote in between, the batch fails as a whole and is tried again
//! from fresh reads. So the version checks and guard searches made before the batch still hold
//! when it commits (serialisable, optimistic), and the clock gives every version its position in
//! the write order. Within one process, batches take turns (they would only collide).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use azure_data_cosmos::TransactionalBatch;
use azure_data_cosmos::options::{BatchReplaceOptions, Precondition};
use fhirgate_engine::storage::{Guard, StoreError, Write};

use crate::CosmosStore;
use crate::documents::{CLOCK, Clock, Current, VersionDoc, current_id};
use crate::error::Error;
use crate::read;

/// Operations in one transactional batch (a Cosmos DB limit).
const MAX_OPERATIONS: usize = 100;

/// The most resources one batch may write: the clock, then a version document and the current
/// document per resource.
pub(crate) const MAX_WRITES: usize = (MAX_OPERATIONS - 1) / 2;

/// Applies `writes` atomically if no guard matches.
pub(crate) async fn transact(store: &CosmosStore, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
    if writes.len() > MAX_WRITES {
        return Err(Error::Unsupported(format!(
            "this Cosmos DB store makes at most {MAX_WRITES} resources atomic in one transaction (one transactional \
             batch holds {MAX_OPERATIONS} operations) and this one writes {}; split it, or send it as a batch",
            writes.len()
        )));
    }
    if writes.is_empty() && guards.is_empty() {
        return Ok(());
    }
    let _turn = store.inner.writer.lock().await;
    let attempts = store.inner.write_attempts;
    for attempt in 1..=attempts {
        match attempt_once(store, &writes, guards).await {
            Err(Error::Service { status: 409 | 412, .. }) if attempt < attempts => {
                // Another batch moved the clock: read again and retry, with a little jitter so
                // that writers that collided do not collide again.
                let jitter = u64::from(attempt.min(10)) * (1 + u64::from(std::process::id() % 3));
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            result => return result,
        }
    }
    Err(Error::Service {
        status: 503,
        message: format!("the write lost to concurrent writers {attempts} times"),
        retry_after: Some(Duration::from_secs(1)),
    })
}

/// One attempt: read the clock and the current documents, check versions and guards, commit.
async fn attempt_once(store: &CosmosStore, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    let pk = store.inner.partition.as_str();
    let (seq, clock_etag) = read::clock(store).await?;

    // Per resource: the version the batch finds (its own earlier write, for a resource written
    // twice) and the etag of the current document as read, if there is one.
    let mut found: HashMap<String, (u64, Option<String>)> = HashMap::new();
    for w in writes {
        let v = &w.version;
        let id = current_id(&v.resource_type, &v.id);
        let (current, etag) = match found.get(&id) {
            Some(seen) => seen.clone(),
            None => match read::item::<Current>(store, pk, &id).await? {
                Some((c, etag)) => (c.v, etag),
                None => (0, None),
            },
        };
        let expected = v.version.saturating_sub(1);
        if current != expected {
            return Err(StoreError::VersionConflict {
                resource_type: v.resource_type.clone(),
                id: v.id.clone(),
                expected,
                found: current,
            }
            .into());
        }
        found.insert(id, (v.version, etag));
    }
    for (n, guard) in guards.iter().enumerate() {
        if crate::search::count(store, &guard.query).await? > 0 {
            return Err(StoreError::GuardMatched(n).into());
        }
    }

    let next = seq + u64::try_from(writes.len()).unwrap_or(u64::MAX).max(1);
    let clock = Clock { id: CLOCK.to_owned(), pk: pk.to_owned(), seq: next };
    let mut batch = TransactionalBatch::new(pk.to_owned());
    batch = match clock_etag {
        Some(etag) => batch.replace_item(CLOCK, clock, Some(batch_if_match(etag)))?,
        None => batch.create_item(clock)?,
    };
    let mut written = HashSet::new();
    for (n, w) in writes.iter().enumerate() {
        let v = &w.version;
        let position = seq + 1 + u64::try_from(n).unwrap_or(u64::MAX);
        batch = batch.create_item(VersionDoc::new(pk, v, w.index.clone(), position))?;
        let id = current_id(&v.resource_type, &v.id);
        let current = Current::new(pk, v, &w.index);
        // The first write of a resource creates its current document or replaces it under the
        // etag read; a later write in the same batch replaces what the earlier one wrote.
        let etag = found.get(&id).and_then(|(_, etag)| etag.clone());
        batch = match (written.insert(id.clone()), etag) {
            (false, _) => batch.replace_item(id, current, None)?,
            (true, Some(etag)) => batch.replace_item(id, current, Some(batch_if_match(etag)))?,
            (true, None) => batch.create_item(current)?,
        };
    }

    execute(store, batch).await.map(drop)
}

/// Runs a transactional batch; a failed one is the error of its failing operation. The new
/// etags of its operations, in order.
pub(crate) async fn execute(store: &CosmosStore, batch: TransactionalBatch) -> Result<Vec<Option<String>>, Error> {
    let response = store.inner.container.execute_transactional_batch(batch, None).await?;
    store.charged("batch", response.headers().request_charge().map_or(0.0, |c| c.value()));
    let results = response.into_model()?;
    // A failed batch reports its failing operation; the others say 424 (failed dependency).
    if let Some(failed) = results.results().iter().find(|r| !r.is_success() && r.status_code() != 424) {
        return Err(Error::Service {
            status: failed.status_code(),
            message: format!("transactional batch operation failed with {}", failed.status_code()),
            retry_after: failed.retry_after(),
        });
    }
    Ok(results.results().iter().map(|r| r.etag().map(str::to_owned)).collect())
}

/// The options of a batch replacement under `etag`.
pub(crate) fn batch_if_match(etag: String) -> BatchReplaceOptions {
    BatchReplaceOptions::default().with_precondition(Precondition::IfMatch(etag.into()))
}
