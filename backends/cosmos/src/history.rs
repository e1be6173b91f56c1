//! History at instance, type and system level, with `_since`, `_at`, paging and snapshots
//! (<https://hl7.org/fhir/R4/http.html#history>), over the version documents.
//!
//! The snapshot is the clock: every version carries the position of the batch that wrote it,
//! and batches commit in clock order, so "every version with `seq <= snapshot`" is exactly what
//! the store held then.
//!
//! History is ordered by `(seq, id)`, newest first: `seq` alone is shared by the versions of one
//! batch, and the document id breaks the tie. Pages go by key (the last row's `(seq, id)`, in the
//! sealed link): the rest of the key's own `seq` (`c.seq = @s AND c.id < @id ORDER BY c.id`),
//! then older `seq`s (`c.seq < @s ORDER BY c.seq`), and, when that read was cut by its `LIMIT`
//! inside a run of one `seq`, that run again by id (`c.seq = @b ORDER BY c.id`) so the cut
//! falls where the id order says. Every statement orders by one field, so no composite index is
//! needed (a two-field `ORDER BY` needs one on the real service), and across partitions the SDK
//! merges sorted streams that stop at the `LIMIT` instead of reading what an `OFFSET` skips.

use azure_data_cosmos::Query;
use fhirgate_engine::storage::{HistoryCursor, HistoryKey, HistoryPage, HistoryQuery, HistorySnapshot};
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
        let docs = match (&query.cursor, query.offset) {
            (Some(cursor), _) => {
                let (from, older) = match cursor {
                    HistoryCursor::OlderThan(key) => (parse_key(key)?, true),
                    HistoryCursor::NewerThan(key) => (parse_key(key)?, false),
                };
                keyed(store, &filter, &parameters, Some(from), older, query.count).await?
            }
            (None, 0) => keyed(store, &filter, &parameters, None, true, query.count).await?,
            // A link issued before pages went by key: skip as it was written.
            (None, offset) => {
                let page =
                    with(format!("SELECT * FROM c WHERE {filter} ORDER BY c.seq DESC OFFSET @offset LIMIT @count"))?
                        .with_parameter("@offset", offset)?
                        .with_parameter("@count", query.count)?;
                read::query(store, "history", page).await?
            }
        };
        (docs, total)
    };
    let first_key = versions.first().map(key_of);
    let last_key = versions.last().map(key_of);
    Ok(HistoryPage {
        versions: versions.iter().map(VersionDoc::to_version).collect::<Result<_, _>>()?,
        total,
        snapshot: HistorySnapshot::single(snapshot),
        first_key,
        last_key,
    })
}

/// A version's place in history order: `seq`, then the document id.
fn key_of(doc: &VersionDoc) -> HistoryKey {
    HistoryKey(format!("{}|{}", doc.seq, doc.id))
}

/// The `(seq, id)` of a key [`key_of`] wrote; anything else (a key of another store) is refused.
fn parse_key(key: &HistoryKey) -> Result<(u64, String), Error> {
    let refused = || Error::Unsupported("this history page link does not fit this history: read it again".into());
    let (seq, id) = key.0.split_once('|').ok_or_else(refused)?;
    Ok((seq.parse().map_err(|_| refused())?, id.to_owned()))
}

/// Up to `count` versions of `filter` just past `from` in `(seq, id)` order (`older`: below it,
/// newest first; else above it, and turned round to newest first); from the newest when `from`
/// is `None`. At most three queries, each ordered by one field and cut by its `LIMIT`.
async fn keyed(
    store: &CosmosStore,
    filter: &str,
    parameters: &[(&'static str, serde_json::Value)],
    from: Option<(u64, String)>,
    older: bool,
    count: u32,
) -> Result<Vec<VersionDoc>, Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let (cmp, dir) = if older { ("<", "DESC") } else { (">", "ASC") };
    let run = |condition: String, by: &str, limit: usize, extra: Vec<(&'static str, serde_json::Value)>| {
        let text = format!("SELECT * FROM c WHERE {filter} AND {condition} ORDER BY {by} {dir} OFFSET 0 LIMIT @limit");
        parameters
            .iter()
            .chain(&extra)
            .try_fold(Query::from(text), |q, (n, v)| q.with_parameter(*n, v))?
            .with_parameter("@limit", limit)
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut rows: Vec<VersionDoc> = Vec::new();
    // The rest of the key's own `seq`, by id.
    let beyond_seq = match &from {
        Some((seq, id)) => {
            let same = run(
                format!("c.seq = @kseq AND c.id {cmp} @kid"),
                "c.id",
                count,
                vec![("@kseq", json!(seq)), ("@kid", json!(id))],
            )?;
            rows.extend(read::query::<VersionDoc>(store, "history", same).await?);
            vec![("@kseq", json!(seq))]
        }
        None => Vec::new(),
    };
    let remaining = count.saturating_sub(rows.len());
    if remaining == 0 {
        return Ok(turned(rows, older));
    }
    let condition = if beyond_seq.is_empty() { "true".to_owned() } else { format!("c.seq {cmp} @kseq") };
    let mut next: Vec<VersionDoc> =
        read::query(store, "history", run(condition, "c.seq", remaining, beyond_seq)?).await?;
    if next.len() == remaining {
        // The read may have stopped inside a run of one `seq`, at no particular id: take that
        // run's first ids instead.
        if let Some(boundary) = next.last().map(|d| d.seq) {
            let cut = next.iter().filter(|d| d.seq == boundary).count();
            next.retain(|d| d.seq != boundary);
            let run_ids = run("c.seq = @b".to_owned(), "c.id", cut, vec![("@b", json!(boundary))])?;
            next.extend(read::query::<VersionDoc>(store, "history", run_ids).await?);
        }
    }
    next.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
    if older {
        next.reverse();
    }
    rows.extend(next);
    rows.truncate(count);
    Ok(turned(rows, older))
}

/// Rows read away from the key, newest first.
fn turned(mut rows: Vec<VersionDoc>, older: bool) -> Vec<VersionDoc> {
    if !older {
        rows.reverse();
    }
    rows
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
    id: String,
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
        Query::from(format!("SELECT c.id, c.t, c.rid, c.v, c.seq, c.lu, c.op FROM c WHERE {filter}")),
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
    // Newest first in `(seq, id)` order, as the other pages.
    picked.sort_by(|a, b| (b.seq, &b.id).cmp(&(a.seq, &a.id)));
    let total = u64::try_from(picked.len()).unwrap_or(u64::MAX);
    let count = usize::try_from(query.count).unwrap_or(usize::MAX);
    let page: Vec<&Head> = match &query.cursor {
        Some(HistoryCursor::OlderThan(key)) => {
            let (seq, id) = parse_key(key)?;
            picked.iter().filter(|h| (h.seq, &h.id) < (seq, &id)).take(count).collect()
        }
        Some(HistoryCursor::NewerThan(key)) => {
            let (seq, id) = parse_key(key)?;
            let newer: Vec<&Head> = picked.iter().filter(|h| (h.seq, &h.id) > (seq, &id)).collect();
            newer[newer.len().saturating_sub(count)..].to_vec()
        }
        None => picked.iter().skip(usize::try_from(query.offset).unwrap_or(usize::MAX)).take(count).collect(),
    };
    let mut docs = Vec::new();
    for head in page {
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
