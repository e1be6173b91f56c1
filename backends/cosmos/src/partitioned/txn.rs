//! The transaction protocol of the partitioned layout (README, "Multi-resource transactions"):
//!
//! 1. begin: create the record `t` (pending, with a lease);
//! 2. lock: take the guard locks and run the guards' searches;
//! 3. stage: per resource, one batch: its new versions `v|n` (with `tx`) and `pend` on `c`;
//! 4. commit: replace `t` with `committed` under its etag: the commit point;
//! 5. apply: per resource, one batch: `c` becomes the new version, `tx` leaves `v|n`;
//! 6. unlock; 7. finish: `t` becomes `done`.
//!
//! Every step is preceded by [`fault::step`], where the tests stop the writer. Whoever finds a
//! transaction (a `pend`, a `tx`, a lock) resolves it with [`resolve`]: applies it if committed,
//! aborts it if its lease ran out, cleans it up if aborted or gone, or reports it live.

use std::collections::HashMap;
use std::pin::Pin;

use azure_data_cosmos::TransactionalBatch;
use fhirgate_engine::storage::{Guard, StoreError, Write};
use futures::{StreamExt, TryStreamExt, stream};

use super::fault::step;
use super::hlc::wall_millis;
use super::{ABORTED, COMMITTED, DONE, PENDING, TxDoc, create, delete, lock, lost_race, replace};
use crate::CosmosStore;
use crate::documents::{Current, Pend, VersionDoc};
use crate::error::Error;
use crate::read;
use crate::write::{batch_if_match, execute};

/// What a resolution found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The transaction is pending and within its lease: leave it alone.
    Live,
    /// It was committed (and is now applied) or aborted (and is now cleaned up): read again.
    Settled,
}

/// What staging left on one resource: the etag of its current document and the versions
/// staged, so that its writer applies them without reading them back.
pub(crate) struct Staged {
    resource: (String, String),
    etag: Option<String>,
    versions: Vec<VersionDoc>,
}

/// The writes of one resource in a transaction, in order.
struct Group<'a> {
    resource_type: &'a str,
    id: &'a str,
    writes: Vec<&'a Write>,
}

fn groups(writes: &[Write]) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    let mut at: HashMap<(&str, &str), usize> = HashMap::new();
    for w in writes {
        let key = (w.version.resource_type.as_str(), w.version.id.as_str());
        match at.get(&key) {
            Some(&n) => out[n].writes.push(w),
            None => {
                at.insert(key, out.len());
                out.push(Group { resource_type: key.0, id: key.1, writes: vec![w] });
            }
        }
    }
    out
}

/// One attempt at a multi-resource (or guarded) write. [`Error::Contended`] when another live
/// transaction holds a resource or guard: the caller tries again.
pub(crate) async fn run(store: &CosmosStore, writes: &[Write], guards: &[Guard]) -> Result<(), Error> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let pk = TxDoc::pk(store, &id);
    let mut types: Vec<String> = writes.iter().map(|w| w.version.resource_type.clone()).collect();
    types.sort();
    types.dedup();
    let mut record = TxDoc {
        id: "t".into(),
        pk: pk.clone(),
        s: store.store_name().to_owned(),
        k: "t".into(),
        tx: id.clone(),
        state: PENDING.into(),
        writes: writes
            .iter()
            .map(|w| format!("{}/{}/{}", w.version.resource_type, w.version.id, w.version.version))
            .collect(),
        types,
        guards: guards.iter().map(|g| lock::pk(store, &g.key)).collect(),
        expires: wall_millis() + i64::try_from(store.inner.tx_lease.as_millis()).unwrap_or(i64::MAX),
        cts: 0,
    };
    step(store, "begin")?;
    let mut etag = create(store, &pk, "t", &record).await?;

    // Up to the commit, a failure aborts (a crash of the test hook leaves everything as it is).
    let staged = match stage_all(store, &record, writes, guards).await {
        Ok(staged) => staged,
        Err(error) => {
            if !matches!(error, Error::Crashed(_)) {
                abort(store, &record, etag.as_deref()).await?;
            }
            return Err(error);
        }
    };

    step(store, "commit")?;
    record.state = COMMITTED.into();
    record.cts = store.inner.hlc.reserve(u64::try_from(writes.len()).unwrap_or(u64::MAX));
    match replace(store, &pk, "t", &record, etag.as_deref()).await {
        Ok(new) => etag = new,
        Err(e) if lost_race(&e) => {
            // A reader found the lease run out and aborted the transaction first.
            resolve(store, &id, None).await?;
            return Err(Error::Contended("the transaction's lease ran out before it committed".into()));
        }
        Err(e) => return Err(e),
    }
    let _ = etag;
    roll_forward(store, &record, staged).await
}

/// Steps 2 and 3: the guards, then every resource staged (the first failure, in write order).
async fn stage_all(
    store: &CosmosStore,
    record: &TxDoc,
    writes: &[Write],
    guards: &[Guard],
) -> Result<Vec<Staged>, Error> {
    for guard in guards {
        step(store, "lock")?;
        lock::acquire(store, &guard.key, &record.tx).await?;
    }
    for (n, guard) in guards.iter().enumerate() {
        if crate::search::count(store, &guard.query).await? > 0 {
            return Err(StoreError::GuardMatched(n).into());
        }
    }
    let seq = store.inner.hlc.now();
    let staging: Vec<_> = groups(writes).into_iter().map(|g| stage(store, &record.tx, g, seq)).collect();
    let results: Vec<Result<Staged, Error>> = stream::iter(staging).buffered(store.inner.tx_parallel).collect().await;
    results.into_iter().collect()
}

/// Step 3 for one resource: its versions staged and `pend` on its current document, in one
/// batch under the etag read.
async fn stage(store: &CosmosStore, tx: &str, group: Group<'_>, seq: u64) -> Result<Staged, Error> {
    let (pk, cid) = store.current_at(group.resource_type, group.id);
    // A create is tried without reading first (the placeholder's create fails if it exists).
    let creates = group.writes.first().is_some_and(|w| w.version.version == 1);
    for attempt in 0..5 {
        let found = if creates && attempt == 0 { None } else { read::item::<Current>(store, &pk, &cid).await? };
        if let Some(p) = found.as_ref().and_then(|(c, _)| c.pend.clone()) {
            if resolve(store, &p.tx, Some((group.resource_type, group.id))).await? == Outcome::Live {
                return Err(Error::Contended(format!(
                    "{}/{} is held by another transaction",
                    group.resource_type, group.id
                )));
            }
            continue;
        }
        let at = found.as_ref().map_or(0, |(c, _)| c.v);
        let mut expected = at;
        for w in &group.writes {
            let v = &w.version;
            if v.version.saturating_sub(1) != expected {
                return Err(StoreError::VersionConflict {
                    resource_type: v.resource_type.clone(),
                    id: v.id.clone(),
                    expected: v.version.saturating_sub(1),
                    found: expected,
                }
                .into());
            }
            expected = v.version;
        }
        if let Some(seen) = found.as_ref().and_then(|(c, _)| c.seq) {
            store.inner.hlc.observe(seen);
        }
        let pend = Pend { tx: tx.to_owned(), to: expected };
        let mut batch = TransactionalBatch::new(pk.clone());
        let mut versions = Vec::with_capacity(group.writes.len());
        for w in &group.writes {
            let mut doc = VersionDoc::new(&pk, &w.version, w.index.clone(), seq);
            doc.id = store.version_at(group.resource_type, group.id, w.version.version).1;
            doc.s = store.store_field();
            doc.tx = Some(tx.to_owned());
            batch = batch.create_item(doc.clone())?;
            versions.push(doc);
        }
        batch = match found {
            Some((mut c, Some(etag))) => {
                c.pend = Some(pend);
                batch.replace_item(cid.clone(), c, Some(batch_if_match(etag)))?
            }
            _ => batch.create_item(placeholder(store, &pk, &group, pend))?,
        };
        step(store, "stage")?;
        match execute(store, batch).await {
            Ok(etags) => {
                let resource = (group.resource_type.to_owned(), group.id.to_owned());
                return Ok(Staged { resource, etag: etags.last().cloned().flatten(), versions });
            }
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended(format!("{}/{} keeps changing", group.resource_type, group.id)))
}

/// The current document of a resource a transaction creates: version 0, deleted (no read or
/// search sees it), held by the transaction.
fn placeholder(store: &CosmosStore, pk: &str, group: &Group<'_>, pend: Pend) -> Current {
    let (t, id) = (group.resource_type, group.id);
    Current {
        id: "c".into(),
        pk: pk.to_owned(),
        k: "c".into(),
        t: t.to_owned(),
        rid: id.to_owned(),
        key: format!("{t}/{id}"),
        v: 0,
        lu: 0,
        op: "create".into(),
        del: true,
        json: None,
        x: Vec::new(),
        sk: serde_json::Map::new(),
        s: store.store_field(),
        seq: None,
        pend: Some(pend),
    }
}

/// Steps 5 to 7 of a committed transaction (by its writer, or by whoever found it).
/// `staged` is what the writer itself staged (nothing for someone else).
pub(crate) async fn roll_forward(store: &CosmosStore, record: &TxDoc, staged: Vec<Staged>) -> Result<(), Error> {
    let mut known: HashMap<(String, String), Staged> = staged.into_iter().map(|s| (s.resource.clone(), s)).collect();
    let applying: Vec<_> = record
        .resources()
        .into_iter()
        .map(|((t, id), versions)| {
            let staged = known.remove(&(t.clone(), id.clone()));
            async move {
                step(store, "apply")?;
                if let Some(staged) = staged {
                    if apply_staged(store, &t, &id, &versions, staged).await? {
                        return Ok(());
                    }
                }
                apply(store, &record.tx, &t, &id, &versions).await
            }
        })
        .collect();
    stream::iter(applying).buffer_unordered(store.inner.tx_parallel).try_collect::<Vec<()>>().await?;
    for guard in &record.guards {
        step(store, "unlock")?;
        lock::release(store, guard, &record.tx).await?;
    }
    step(store, "finish")?;
    let done = TxDoc { state: DONE.into(), writes: Vec::new(), ..record.clone() };
    match replace(store, &record.pk, "t", &done, None).await {
        Ok(_) => {}
        Err(e) if lost_race(&e) => {}
        Err(e) => return Err(e),
    }
    sweep(store).await
}

/// Step 5 by the writer, from what it staged: one batch, no reads. `false` if the current
/// document changed since (someone else applied it): then [`apply`] reads what is there.
async fn apply_staged(
    store: &CosmosStore,
    t: &str,
    id: &str,
    versions: &[(u64, u64)],
    staged: Staged,
) -> Result<bool, Error> {
    let Some(etag) = staged.etag else { return Ok(false) };
    let (pk, cid) = store.current_at(t, id);
    let mut batch = TransactionalBatch::new(pk.clone());
    let mut last = None;
    for mut doc in staged.versions {
        doc.tx = None;
        if let Some((_, seq)) = versions.iter().find(|(v, _)| *v == doc.v) {
            doc.seq = *seq;
        }
        batch = batch.replace_item(doc.id.clone(), doc.clone(), None)?;
        last = Some(doc);
    }
    let Some(last) = last else { return Ok(false) };
    store.inner.hlc.observe(last.seq);
    let mut current = Current::new(&pk, &last.to_version()?, &last.index);
    current.id = cid.clone();
    current.s = store.store_field();
    current.seq = Some(last.seq);
    batch = batch.replace_item(cid, current, Some(batch_if_match(etag)))?;
    match execute(store, batch).await {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Step 5 for one resource: `c` becomes its last staged version, the staged versions lose `tx`
/// and get their history positions, in one batch under `c`'s etag.
async fn apply(store: &CosmosStore, tx: &str, t: &str, id: &str, versions: &[(u64, u64)]) -> Result<(), Error> {
    let (pk, cid) = store.current_at(t, id);
    for _ in 0..5 {
        let Some((c, Some(etag))) = read::item::<Current>(store, &pk, &cid).await? else { return Ok(()) };
        let Some(pend) = c.pend.as_ref().filter(|p| p.tx == tx) else { return Ok(()) };
        let mut batch = TransactionalBatch::new(pk.clone());
        let mut last = None;
        for n in c.v + 1..=pend.to {
            let vid = store.version_at(t, id, n).1;
            let Some((mut doc, _)) = read::item::<VersionDoc>(store, &pk, &vid).await? else {
                return Err(Error::Corrupt(format!("{t}/{id}: staged version {n} of transaction {tx} is missing")));
            };
            doc.tx = None;
            if let Some((_, seq)) = versions.iter().find(|(v, _)| *v == n) {
                doc.seq = *seq;
            }
            batch = batch.replace_item(vid, doc.clone(), None)?;
            last = Some(doc);
        }
        let Some(last) = last else { return Ok(()) };
        store.inner.hlc.observe(last.seq);
        let mut current = Current::new(&pk, &last.to_version()?, &last.index);
        current.id = cid.clone();
        current.s = store.store_field();
        current.seq = Some(last.seq);
        batch = batch.replace_item(cid.clone(), current, Some(batch_if_match(etag)))?;
        match execute(store, batch).await {
            Ok(_) => return Ok(()),
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended(format!("{t}/{id} keeps changing while its transaction is applied")))
}

/// Aborts a pending transaction (under `etag`: if it committed meanwhile, it is applied
/// instead), then cleans it up.
async fn abort(store: &CosmosStore, record: &TxDoc, etag: Option<&str>) -> Result<(), Error> {
    let aborted = TxDoc { state: ABORTED.into(), ..record.clone() };
    match replace(store, &record.pk, "t", &aborted, etag).await {
        Ok(_) => clean_up(store, record).await,
        Err(e) if lost_race(&e) => resolve(store, &record.tx, None).await.map(drop),
        Err(e) => Err(e),
    }
}

/// Removes what an aborted transaction staged, its locks, then its record.
async fn clean_up(store: &CosmosStore, record: &TxDoc) -> Result<(), Error> {
    let cleaning: Vec<_> = record
        .resources()
        .into_iter()
        .map(|((t, id), _)| async move { clean(store, &record.tx, &t, &id).await })
        .collect();
    stream::iter(cleaning).buffer_unordered(store.inner.tx_parallel).try_collect::<Vec<()>>().await?;
    for guard in &record.guards {
        lock::release(store, guard, &record.tx).await?;
    }
    delete(store, &record.pk, "t", None).await
}

/// Removes what transaction `tx` staged on one resource: its versions and its mark (and the
/// placeholder of a resource it would have created).
async fn clean(store: &CosmosStore, tx: &str, t: &str, id: &str) -> Result<(), Error> {
    let (pk, cid) = store.current_at(t, id);
    for _ in 0..5 {
        let Some((mut c, Some(etag))) = read::item::<Current>(store, &pk, &cid).await? else { return Ok(()) };
        let Some(pend) = c.pend.clone().filter(|p| p.tx == tx) else { return Ok(()) };
        let mut batch = TransactionalBatch::new(pk.clone());
        for n in c.v + 1..=pend.to {
            batch = batch.delete_item(store.version_at(t, id, n).1, None);
        }
        let options = azure_data_cosmos::options::BatchDeleteOptions::default()
            .with_precondition(azure_data_cosmos::options::Precondition::IfMatch(etag.clone().into()));
        batch = if c.v == 0 {
            batch.delete_item(cid.clone(), Some(options))
        } else {
            c.pend = None;
            batch.replace_item(cid.clone(), c, Some(batch_if_match(etag)))?
        };
        match execute(store, batch).await {
            Ok(_) => return Ok(()),
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended(format!("{t}/{id} keeps changing while an aborted transaction is cleaned up")))
}

/// Resolves transaction `tx`, found on `resource` (if any): applies it if committed, aborts
/// it if pending past its lease, cleans it up if aborted; a record that is gone means the
/// transaction never committed, and `resource` is cleaned of it.
pub(crate) fn resolve<'a>(
    store: &'a CosmosStore,
    tx: &'a str,
    resource: Option<(&'a str, &'a str)>,
) -> Pin<Box<dyn Future<Output = Result<Outcome, Error>> + Send + 'a>> {
    // Boxed: applying or aborting a transaction may meet (and resolve) another one.
    Box::pin(resolve_now(store, tx, resource))
}

async fn resolve_now(store: &CosmosStore, tx: &str, resource: Option<(&str, &str)>) -> Result<Outcome, Error> {
    let pk = TxDoc::pk(store, tx);
    let Some((record, etag)) = read::item::<TxDoc>(store, &pk, "t").await? else {
        if let Some((t, id)) = resource {
            clean(store, tx, t, id).await?;
        }
        return Ok(Outcome::Settled);
    };
    match record.state.as_str() {
        COMMITTED => roll_forward(store, &record, Vec::new()).await?,
        DONE => {}
        ABORTED => clean_up(store, &record).await?,
        _ if record.expires < wall_millis() => abort(store, &record, etag.as_deref()).await?,
        _ => return Ok(Outcome::Live),
    }
    Ok(Outcome::Settled)
}

/// Removes finished records older than the retention, and resolves pending ones long past
/// their lease (a writer that died before staging anything), a few per call.
async fn sweep(store: &CosmosStore) -> Result<(), Error> {
    let old = store.inner.hlc.now().saturating_sub(super::RETENTION_MICROS);
    let text = format!(
        "SELECT TOP 5 c.tx, c.state FROM c WHERE {}c.k = 't' AND ((c.state = 'done' AND c.cts < @old) OR \
         (c.state = 'pending' AND c.expires < @expired))",
        store.in_store("c")
    );
    let expired = wall_millis() - i64::try_from(super::RETENTION_MICROS / 1_000).unwrap_or(0);
    let query =
        azure_data_cosmos::Query::from(text).with_parameter("@old", old)?.with_parameter("@expired", expired)?;
    #[derive(serde::Deserialize)]
    struct Stale {
        tx: String,
        state: String,
    }
    let stale: Vec<Stale> = read::query(store, "transaction sweep", query).await?;
    for record in stale {
        if record.state == DONE {
            delete(store, &TxDoc::pk(store, &record.tx), "t", None).await?;
        } else {
            resolve(store, &record.tx, None).await?;
        }
    }
    Ok(())
}
