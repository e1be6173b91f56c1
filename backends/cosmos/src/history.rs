//! History at instance, type and system level, with `_since`, `_at`, paging and snapshots
//! (<https://hl7.org/fhir/R4/http.html#history>), over the version documents.
//!
//! The snapshot is the clock: every version carries the position of the batch that wrote it,
//! and batches commit in clock order, so "every version with `seq <= snapshot`" is exactly what
//! the store held then.

use azure_data_cosmos::Query;
use fhirgate_engine::storage::{HistoryPage, HistoryQuery, HistorySnapshot};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use time::OffsetDateTime;

use crate::CosmosStore;
use crate::documents::VersionDoc;
use crate::error::Error;
use crate::read;

/// One page of history, newest first, with the total inside the snapshot.
pub(crate) async fn page(store: &CosmosStore, query: &HistoryQuery) -> Result<HistoryPage, Error> {
    if !store.partitioned() {
        return page_at(store, query, None).await;
    }
    // The partitioned layout: applied versions only, read again if a transaction of the types
    // asked for was applied while the page was read (see `partitioned::settle`).
    let types: Vec<String> = query.resource_type.iter().cloned().collect();
    let snapshot = position(query).unwrap_or_else(|| store.inner.hlc.now());
    crate::partitioned::settle::consistent(store, &types, || page_at(store, query, Some(snapshot))).await
}

/// One page at `snapshot` (the clock's position when `None`: one-partition layout).
async fn page_at(store: &CosmosStore, query: &HistoryQuery, snapshot: Option<u64>) -> Result<HistoryPage, Error> {
    let snapshot = match (position(query), snapshot) {
        (Some(snapshot), _) | (None, Some(snapshot)) => snapshot,
        (None, None) => read::clock(store).await?.0,
    };
    let (versions, total) = if query.at.is_some() {
        at_instant(store, query, snapshot).await?
    } else {
        let (filter, parameters) = filter(store, query, snapshot);
        let with = |text: String| parameters.iter().try_fold(Query::from(text), |q, (n, v)| q.with_parameter(*n, v));
        let total = read::count(store, "history count", &filter, |text| Ok(with(text)?)).await?;
        let page = with(format!("SELECT * FROM c WHERE {filter} ORDER BY c.seq DESC OFFSET @offset LIMIT @count"))?
            .with_parameter("@offset", query.offset)?
            .with_parameter("@count", query.count)?;
        let docs: Vec<VersionDoc> = read::query(store, "history", page).await?;
        (docs, total)
    };
    Ok(HistoryPage {
        versions: versions.iter().map(VersionDoc::to_version).collect::<Result<_, _>>()?,
        total,
        snapshot: HistorySnapshot::single(snapshot),
    })
}

/// The clock position of the query's snapshot: this store has one write order, so one bucket
/// (a snapshot naming none hides every version).
fn position(query: &HistoryQuery) -> Option<u64> {
    query.snapshot.as_ref().map(|s| s.0.first().copied().unwrap_or(0))
}

/// The condition on version documents (without `_at`), and its parameters.
fn filter(
    store: &CosmosStore,
    query: &HistoryQuery,
    snapshot: u64,
) -> (String, Vec<(&'static str, serde_json::Value)>) {
    let mut conditions = vec![format!("{}c.k = 'v'", store.in_store("c")), "c.seq <= @snapshot".to_owned()];
    if store.partitioned() {
        // Staged versions of transactions not applied yet (committed ones were applied first).
        conditions.push("NOT IS_DEFINED(c.tx)".to_owned());
    }
    let mut parameters = vec![("@snapshot", json!(snapshot))];
    if let Some(t) = &query.resource_type {
        conditions.push("c.t = @type".to_owned());
        parameters.push(("@type", json!(t)));
    }
    if let Some(id) = &query.id {
        conditions.push("c.rid = @id".to_owned());
        parameters.push(("@id", json!(id)));
    }
    if let Some(since) = query.since {
        conditions.push("c.lu >= @since".to_owned());
        parameters.push(("@since", json!(millis_ceil(since))));
    }
    if let Some(at) = query.at {
        conditions.push("c.lu <= @at".to_owned());
        parameters.push(("@at", json!(millis_floor(at))));
    }
    (conditions.join(" AND "), parameters)
}

#[derive(Deserialize)]
struct Head {
    t: String,
    rid: String,
    v: u64,
    seq: u64,
    lu: i64,
    op: String,
}

/// `_at`: per resource the newest version written by then (within the snapshot), left out if
/// it is a deletion; `_since` then applies to what was picked. Cosmos SQL has no correlated
/// sub-query over other documents, so the store reads the candidates' heads, picks in memory,
/// and reads the page's versions.
async fn at_instant(store: &CosmosStore, query: &HistoryQuery, snapshot: u64) -> Result<(Vec<VersionDoc>, u64), Error> {
    let candidates = HistoryQuery { since: None, ..query.clone() };
    let (filter, parameters) = filter(store, &candidates, snapshot);
    let heads = parameters.iter().try_fold(
        Query::from(format!("SELECT c.t, c.rid, c.v, c.seq, c.lu, c.op FROM c WHERE {filter}")),
        |q, (name, value)| q.with_parameter(*name, value),
    )?;
    let heads: Vec<Head> = read::query(store, "history at", heads).await?;
    let mut newest: HashMap<(String, String), Head> = HashMap::new();
    for head in heads {
        let key = (head.t.clone(), head.rid.clone());
        if newest.get(&key).is_none_or(|n| n.v < head.v) {
            newest.insert(key, head);
        }
    }
    let since = query.since.map(millis_ceil);
    let mut picked: Vec<Head> =
        newest.into_values().filter(|h| h.op != "delete" && since.is_none_or(|s| h.lu >= s)).collect();
    picked.sort_by_key(|h| std::cmp::Reverse(h.seq));
    let total = u64::try_from(picked.len()).unwrap_or(u64::MAX);
    let start = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let mut docs = Vec::new();
    for head in picked.iter().skip(start).take(usize::try_from(query.count).unwrap_or(usize::MAX)) {
        if let Some(doc) = read::version(store, &head.t, &head.rid, head.v).await? {
            docs.push(doc);
        }
    }
    Ok((docs, total))
}

/// An instant as Unix milliseconds, rounded up (`_since`: nothing before it).
fn millis_ceil(at: OffsetDateTime) -> i64 {
    let nanos = at.unix_timestamp_nanos();
    i64::try_from(nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0)).unwrap_or(i64::MAX)
}

/// An instant as Unix milliseconds, rounded down (`_at`: nothing after it).
fn millis_floor(at: OffsetDateTime) -> i64 {
    crate::documents::millis(at)
}
