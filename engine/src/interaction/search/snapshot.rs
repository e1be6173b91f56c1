//! One search's result set, kept for paging, and read from the store a chunk at a time.
//!
//! A search reads its first chunk, the first page, when it runs: the first page costs what it
//! shows, not what the search matches (so `Bundle.total` is given by default only when the first
//! page holds every match; `_total=accurate` counts). When paging reaches the end of what was
//! read, the next chunk, ten pages, is read after the key of the last match read
//! ([`SearchQuery::after`], and with `_sort` the sort key values it had,
//! [`SearchQuery::after_sort`]), so pages never overlap or skip a resource that matched all
//! along, and paging is not capped; each chunk shows its matches as they were when it was read.
//!
//! A result set may also start in the middle ([`Read::resume`]): a page link served by a
//! process that did not run the search (see [`super::pages`]) reads on after the key its state
//! carries; `base` is then the place of its first match in the whole result set.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::{Engine, Visibility};
use super::pages::{Key, MAX_BACK, PageState};
use crate::access::Phase;
use crate::error::Result;
use crate::outcome::Issue;
use crate::search::query::SearchQuery;
use crate::storage::{Keyed, SearchMatch};

/// Pages per chunk of a search, after its first page.
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
    /// How many matches had been read when the set was last kept in the cache (its weight).
    weighed: AtomicUsize,
}

/// What has been read of a result set.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// The matches the client may see, in order, with their sort key values.
    matches: Vec<Keyed>,
    /// The last key read, when there are more matches after it.
    next: Option<Key>,
    /// Matches per chunk read.
    chunk: u32,
    /// The place of the first match in the whole result set (0 unless resumed).
    base: usize,
}

impl Read {
    /// The first chunk of `query` for a client who sees what `visible` allows and pages by
    /// `count`: its first page or, `whole`, every match (up to `search_max_results`).
    pub(crate) async fn first(
        engine: &Engine,
        query: &SearchQuery,
        count: usize,
        whole: bool,
        visible: Option<Visibility<'_>>,
    ) -> Result<Self> {
        let cap = engine.config.search_max_results;
        let page = u32::try_from(count).unwrap_or(u32::MAX).max(1).min(cap);
        let (matches, next) = read_chunk(engine, query, None, if whole { cap } else { page }, visible).await?;
        let mut read = Self { matches, next, chunk: page.saturating_mul(PAGES_PER_CHUNK).min(cap), base: 0 };
        // Where matches may be hidden from the client, reading goes on until a match it may see
        // follows the page (so a next page is never empty) or none is left (so the total is known).
        while visible.is_some() && !whole && page < cap && read.matches.len() <= page as usize {
            let Some(after) = read.next.take() else { break };
            let (matches, next) = read_chunk(engine, query, Some(&after), read.chunk, visible).await?;
            read.matches.extend(matches);
            read.next = next;
        }
        Ok(read)
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
            weighed: AtomicUsize::new(usize::MAX),
        }
    }

    /// The key a page starting at `offset` continues after (`Some(None)`: from the start);
    /// `None` when it is not known here.
    pub(crate) fn key_before(&self, offset: usize) -> Option<Option<Key>> {
        if offset == 0 {
            return Some(None);
        }
        if offset > self.base {
            let read = self.lock();
            if let Some(m) = read.matches.get(offset - 1 - self.base) {
                return Some(Some(Key::of(m)));
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

    /// Whether more (or fewer) matches were read since the last call, which notes the count:
    /// the cache must weigh the set again.
    pub(crate) fn reweigh(&self) -> bool {
        let len = self.read_len();
        self.weighed.swap(len, Ordering::Relaxed) != len
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
                // Where matches may be hidden from the client, more follow the window only if a
                // match it may see does: one past the window is read too.
                let enough = if visible.is_some() { read.matches.len() > end } else { read.matches.len() >= end };
                if enough || read.next.is_none() {
                    let stop = end.min(read.matches.len());
                    let window = read.matches.get(offset.min(stop)..stop).unwrap_or_default();
                    return Ok(Window {
                        matches: window.iter().map(|k| k.matched.clone()).collect(),
                        more: read.matches.len() > end || read.next.is_some(),
                        known_len: read.known_len().map(|n| n + base),
                    });
                }
                (read.next.clone(), read.chunk)
            };
            let (matches, next) = read_chunk(engine, &self.query, after.as_ref(), chunk, visible).await?;
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

/// Up to `chunk` matches of `query` (continued after the match `after`) that `visible` allows,
/// and the key of the last match read when more matches follow it.
async fn read_chunk(
    engine: &Engine,
    query: &SearchQuery,
    after: Option<&Key>,
    chunk: u32,
    visible: Option<Visibility<'_>>,
) -> Result<(Vec<Keyed>, Option<Key>)> {
    let query = match after {
        Some(key) => {
            let mut rest = query.clone();
            key.continue_query(&mut rest);
            std::borrow::Cow::Owned(rest)
        }
        None => std::borrow::Cow::Borrowed(query),
    };
    let mut matches = engine.store.search_keyed(&query, chunk.saturating_add(1)).await?;
    let more = matches.len() > chunk as usize;
    matches.truncate(chunk as usize);
    let next = matches.last().filter(|_| more).map(Key::of);
    if let Some(visible) = visible {
        matches = only_visible(engine, matches, visible).await?;
    }
    Ok((matches, next))
}

/// The matches `visible` allows, each decided on the version that matched.
async fn only_visible(engine: &Engine, matches: Vec<Keyed>, visible: Visibility<'_>) -> Result<Vec<Keyed>> {
    let keys: Vec<SearchMatch> = matches.iter().map(|k| k.matched.clone()).collect();
    let mut resources: std::collections::HashMap<SearchMatch, serde_json::Value> = engine
        .store
        .vread_many(&keys)
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
    visible.load_consents(engine, &resources.values().collect::<Vec<_>>()).await?;
    Ok(matches
        .into_iter()
        .filter(|k| resources.remove(&k.matched).is_some_and(|resource| visible.allows(&resource, Phase::Outgoing)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::pages::Pages;
    use super::*;
    use crate::seal::Keys;
    use crate::search::query::ResultParams;
    use std::sync::Arc;
    use std::time::Duration;

    fn set(matches: usize) -> Arc<Snapshot> {
        let origin = Origin {
            owner: "alice".into(),
            path: "Observation".into(),
            self_query: String::new(),
            notes: Vec::new(),
            params: Vec::new(),
        };
        let query = SearchQuery {
            resource_type: Some("Observation".into()),
            clauses: Vec::new(),
            result: ResultParams::default(),
            compartment: None,
            after: None,
            after_sort: Vec::new(),
        };
        let matched = |n: usize| Keyed {
            matched: SearchMatch { resource_type: "Observation".into(), id: format!("o{n}"), version: 1 },
            sort: Vec::new(),
        };
        let read = Read { matches: (0..matches).map(matched).collect(), next: None, chunk: 500, base: 0 };
        Arc::new(Snapshot::new(origin, query, None, read, None))
    }

    #[test]
    fn kept_result_sets_stay_within_the_byte_bound_and_are_weighed_again_as_they_grow() -> Result<(), String> {
        let pages = Pages::new(Duration::from_secs(600), Arc::new(Keys::new(&[3; 32], &[])?));
        // 2,000 first chunks of 500 matches: ~160 MB if every one were kept.
        for _ in 0..2_000 {
            pages.keep(&set(500));
        }
        pages.settle();
        let bound = pages.bound();
        assert!(pages.weight() <= bound, "{} bytes kept, bound {bound}", pages.weight());
        assert!(pages.weight() > bound / 2, "the cache keeps sets up to its bound: {}", pages.weight());

        // A kept set that reads further chunks weighs what it holds now.
        let pages = Pages::new(Duration::from_secs(600), Arc::new(Keys::new(&[3; 32], &[])?));
        let grown = set(10);
        pages.keep(&grown);
        pages.settle();
        let small = pages.weight();
        grown.lock().matches.append(&mut set(5_000).lock().matches);
        pages.keep(&grown);
        pages.settle();
        assert!(pages.weight() > small + 5_000 * 100, "{small} then {}", pages.weight());
        Ok(())
    }
}
