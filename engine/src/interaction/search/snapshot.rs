//! One search's result set, kept for paging, and read from the store a chunk at a time.
//!
//! A search in the default order (type, then id) reads its first chunk, ten pages, when it runs:
//! the first page costs what it shows, not what the search matches. When paging reaches the
//! end of what was read, the next chunk is read after the last key read
//! ([`SearchQuery::after`]), so pages never overlap or skip a resource that matched all along,
//! and paging is not capped; each chunk shows its matches as they were when it was read. A search
//! with `_sort` is read whole when it runs, up to
//! [`EngineConfig::search_max_results`](crate::EngineConfig) (beyond that the result set is cut,
//! with a warning), since its order is not a key the store can continue from.
//!
//! A result set may also start in the middle ([`Read::resume`]): a page link served by a
//! process that did not run the search (see [`super::pages`]) reads on after the key its state
//! carries; `base` is then the place of its first match in the whole result set.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::super::{Engine, Visibility};
use super::pages::{Key, MAX_BACK, PageState};
use crate::access::Phase;
use crate::error::Result;
use crate::outcome::Issue;
use crate::search::query::SearchQuery;
use crate::storage::SearchMatch;

/// Pages per chunk of a search in the default order.
const PAGES_PER_CHUNK: u32 = 10;

/// One search's result set.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The client that ran the search ([`crate::access::Access::owner`]): the only one its
    /// pages serve.
    pub(crate) owner: String,
    pub(crate) query: SearchQuery,
    /// `Bundle.total`, when known and asked for.
    pub(crate) total: Option<u64>,
    /// The searched path below the base (`Patient`, `Patient/1/*`, `` for a system search).
    pub(crate) path: String,
    /// The applied parameters, for the `self` link of the first page.
    pub(crate) self_query: String,
    /// Warnings for every page (ignored parameters, a truncated result set).
    pub(crate) notes: Vec<Issue>,
    /// The parameters that run the search again on `path` (what page links carry).
    pub(crate) params: Vec<(String, String)>,
    /// The result set's name in the cache of the process that ran the search.
    pub(crate) token: String,
    /// Whether this process ran the search (and so may keep the result set for its pages).
    pub(crate) fresh: bool,
    /// The place of the first match read in the whole result set (0 unless resumed).
    base: usize,
    /// Keys before pages starting outside what was read (from the link it was resumed from).
    starts: Mutex<BTreeMap<usize, Option<Key>>>,
    read: Mutex<Read>,
}

/// What has been read of a result set.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// The matches the client may see, in order.
    matches: Vec<SearchMatch>,
    /// The last key read, when there are more matches after it.
    next: Option<(String, String)>,
    /// Matches per chunk read.
    chunk: u32,
    /// The place of the first match in the whole result set (0 unless resumed).
    base: usize,
}

impl Read {
    /// The first chunk of `query` (all of it up to the cap when it has `_sort`) for a client who
    /// sees what `visible` allows and pages by `count`; `true` when a sorted result set was cut.
    pub(crate) async fn first(
        engine: &Engine,
        query: &SearchQuery,
        count: usize,
        visible: Option<Visibility<'_>>,
    ) -> Result<(Self, bool)> {
        let cap = engine.config.search_max_results;
        let sorted = !query.result.sort.is_empty();
        let chunk = if sorted {
            cap
        } else {
            u32::try_from(count).unwrap_or(u32::MAX).max(1).saturating_mul(PAGES_PER_CHUNK).min(cap)
        };
        let (matches, next) = read_chunk(engine, query, chunk, visible).await?;
        let cut = sorted && next.is_some();
        Ok((Self { matches, next: next.filter(|_| !sorted), chunk, base: 0 }, cut))
    }

    /// A result set that continues after `after` (the match before the place `offset`), read
    /// a page (`count`) at a time.
    pub(crate) fn resume(after: Key, offset: usize, count: usize) -> Self {
        let chunk = u32::try_from(count).unwrap_or(u32::MAX).max(1);
        Self { matches: Vec::new(), next: Some(after), chunk, base: offset }
    }

    /// How many matches there are, once every one has been read.
    pub(crate) fn known_len(&self) -> Option<usize> {
        self.next.is_none().then_some(self.matches.len())
    }
}

/// A window of a result set.
pub(crate) struct Window {
    pub(crate) matches: Vec<SearchMatch>,
    /// Whether matches follow the window.
    pub(crate) more: bool,
    /// How many matches there are in all, once every one has been read.
    pub(crate) known_len: Option<usize>,
}

/// Where a result set is listed and how it is run again: see [`super::Listing`].
pub(crate) struct Origin {
    pub(crate) owner: String,
    pub(crate) path: String,
    pub(crate) self_query: String,
    pub(crate) notes: Vec<Issue>,
    pub(crate) params: Vec<(String, String)>,
}

impl Snapshot {
    /// The result set of a search this process ran (`resumed: None`), or the rest of one from
    /// the page link `resumed` (its first match read is at `resumed.offset`).
    pub(crate) fn new(
        origin: Origin,
        query: SearchQuery,
        total: Option<u64>,
        read: Read,
        resumed: Option<&PageState>,
    ) -> Self {
        let Origin { owner, path, self_query, notes, params } = origin;
        let mut starts = BTreeMap::new();
        let (token, base) = match resumed {
            None => (uuid::Uuid::new_v4().simple().to_string(), read.base),
            Some(state) => {
                // The starts of the pages before this one, `count` apart, the nearest last.
                let before = (1..=state.back.len()).map(|n| state.offset.checked_sub(n * state.count));
                for (offset, key) in before.zip(state.back.iter().rev()) {
                    if let Some(offset) = offset {
                        starts.insert(offset, key.clone());
                    }
                }
                starts.insert(state.offset, state.after.clone());
                (state.token.clone(), read.base)
            }
        };
        Self {
            owner,
            query,
            total,
            path,
            self_query,
            notes,
            params,
            token,
            fresh: resumed.is_none(),
            base,
            starts: Mutex::new(starts),
            read: Mutex::new(read),
        }
    }

    /// The key a page starting at `offset` continues after (`Some(None)`: from the start, or
    /// by offset for a `_sort` search); `None` when it is not known here.
    pub(crate) fn key_before(&self, offset: usize) -> Option<Option<Key>> {
        if offset == 0 || !self.query.result.sort.is_empty() {
            return Some(None);
        }
        if offset > self.base {
            let read = self.lock();
            if let Some(m) = read.matches.get(offset - 1 - self.base) {
                return Some(Some((m.resource_type.clone(), m.id.clone())));
            }
        }
        self.starts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&offset).cloned()
    }

    /// The state of a link to the page of `count` from `offset`, when where it starts is known.
    pub(crate) fn link_state(&self, offset: usize, count: usize) -> Option<PageState> {
        let after = self.key_before(offset)?;
        let mut back = Vec::new();
        let mut start = offset;
        while start >= count && count > 0 && back.len() < MAX_BACK {
            start -= count;
            match self.key_before(start) {
                Some(key) => back.push(key),
                None => break,
            }
        }
        back.reverse();
        Some(PageState {
            owner: self.owner.clone(),
            path: self.path.clone(),
            params: Some(self.params.clone()),
            offset,
            count,
            after,
            back,
            total: self.total,
            token: self.token.clone(),
            expires: 0,
        })
    }

    /// How many matches have been read (what a cached result set weighs).
    pub(crate) fn read_len(&self) -> usize {
        self.lock().matches.len()
    }

    /// The matches from `offset` to `end` (places in the whole result set, at least `base`),
    /// reading further chunks as needed for a client who sees what `visible` allows.
    pub(crate) async fn window(
        &self,
        engine: &Engine,
        offset: usize,
        end: usize,
        visible: Option<Visibility<'_>>,
    ) -> Result<Window> {
        let base = self.base;
        let (offset, end) = (offset.saturating_sub(base), end.saturating_sub(base));
        loop {
            let (after, chunk) = {
                let read = self.lock();
                if read.matches.len() >= end || read.next.is_none() {
                    let stop = end.min(read.matches.len());
                    return Ok(Window {
                        matches: read.matches.get(offset.min(stop)..stop).unwrap_or_default().to_vec(),
                        more: read.matches.len() > end || read.next.is_some(),
                        known_len: read.known_len().map(|n| n + base),
                    });
                }
                (read.next.clone(), read.chunk)
            };
            let mut query = self.query.clone();
            query.after = after.clone();
            let (matches, next) = read_chunk(engine, &query, chunk, visible).await?;
            let mut read = self.lock();
            // Another page request may have read the same chunk meanwhile.
            if read.next == after {
                read.matches.extend(matches);
                read.next = next;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Up to `chunk` matches of `query` that `visible` allows, and the last key read when more
/// matches follow it.
async fn read_chunk(
    engine: &Engine,
    query: &SearchQuery,
    chunk: u32,
    visible: Option<Visibility<'_>>,
) -> Result<(Vec<SearchMatch>, Option<(String, String)>)> {
    let mut matches = engine.store.search(query, chunk.saturating_add(1)).await?;
    let more = matches.len() > chunk as usize;
    matches.truncate(chunk as usize);
    let next = matches.last().filter(|_| more).map(|m| (m.resource_type.clone(), m.id.clone()));
    if let Some(visible) = visible {
        matches = only_visible(engine, matches, visible).await?;
    }
    Ok((matches, next))
}

/// The matches `visible` allows, each decided on the version that matched.
async fn only_visible(engine: &Engine, matches: Vec<SearchMatch>, visible: Visibility<'_>) -> Result<Vec<SearchMatch>> {
    let mut kept = Vec::with_capacity(matches.len());
    let resources: Vec<(SearchMatch, serde_json::Value)> = engine
        .store
        .vread_many(&matches)
        .await?
        .into_iter()
        .filter_map(|version| {
            let resource = serde_json::from_str(version.json.as_deref()?).ok()?;
            Some((
                SearchMatch { resource_type: version.resource_type, id: version.id, version: version.version },
                resource,
            ))
        })
        .collect();
    visible.load_consents(engine, &resources.iter().map(|(_, r)| r).collect::<Vec<_>>()).await?;
    for (key, resource) in resources {
        if visible.allows(&resource, Phase::Outgoing) {
            kept.push(key);
        }
    }
    Ok(kept)
}
