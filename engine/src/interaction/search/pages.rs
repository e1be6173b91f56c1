//! The page links of searches: each carries its page's state, sealed ([`crate::seal`]), so any
//! replica holding the same paging key serves it, and a restart or a replica that dies
//! mid-paging breaks nothing.
//!
//! A link's [`PageState`] says which search (its path and parameters), for whom (the owner
//! digest), from where (the offset, and for the default order the key of the match before the
//! page, so the page continues after it; with `_sort` its sort key values too), where the earlier pages started (for `previous`),
//! the total the first page found, and an expiry. A link that does not open, was made for
//! another client or another path, or expired, is a 410.
//!
//! The process that ran the search also keeps its result set ([`Pages`], by a token the
//! state carries): its pages are read from it at the versions that matched. Elsewhere the
//! search is run again from the state ([`super::snapshot::Read::resume`]): it continues after
//! the page's key in the search's order (for `_sort`, after the sort key values the match
//! before the page had), so nothing that matched all along and kept its sort values is
//! repeated or skipped, whatever was written between the pages.
//! The cache is bounded in bytes (an estimate of what each kept set holds, weighed again as
//! further chunks are read into it): a set it cannot keep is run again from its links' state.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use super::snapshot::Snapshot;
use crate::seal::{Keys, unix_now as now};
use crate::search::query::{SearchQuery, SortValue};
use crate::storage::Keyed;

/// Bytes held by all kept result sets together, estimated. The cache used to be bounded by
/// 2,000,000 matches and 200,000 sets, about 700 MB: at 2,000 first pages a second, the
/// process grew from 120 to 900 MB (bench/README.md, memory). 32 MiB keeps the sets of the
/// last few seconds of such a load, or of thousands of clients paging at their own pace.
const MAX_CACHED_BYTES: u64 = 32 * 1024 * 1024;
/// A kept result set's own bytes, besides its matches (query, owner, path, parameters, token).
const SET_BYTES: usize = 1024;
/// A kept match's bytes: its type, id and version and their heap parts (the sort key values
/// of a `_sort` search add to this; the estimate need not be exact, only bounded).
const MATCH_BYTES: usize = 160;
/// The format of sealed page states (the first byte).
const FORMAT: u8 = 2;
/// The associated data of every seal: the kind of link and its format.
const AAD: &[u8] = b"fhirgate _page v2";
/// The most bytes of serialised state a link carries; the search parameters are left out of
/// a larger one (its pages are then served only where the result set is kept).
const MAX_STATE: usize = 6 * 1024;
/// Starts of earlier pages a link carries at most (`previous` reaches back that far from a
/// replica that did not run the search).
pub(super) const MAX_BACK: usize = 16;

/// Where a match stands in the search's order: its sort key values (none without `_sort`),
/// then type and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Key {
    #[serde(rename = "t")]
    pub(crate) resource_type: String,
    #[serde(rename = "i")]
    pub(crate) id: String,
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) sort: Vec<Option<SortValue>>,
}

impl Key {
    pub(crate) fn of(keyed: &Keyed) -> Self {
        let m = &keyed.matched;
        Self { resource_type: m.resource_type.clone(), id: m.id.clone(), sort: keyed.sort.clone() }
    }

    /// `query` continued after this key.
    pub(crate) fn continue_query(&self, query: &mut SearchQuery) {
        query.after = Some((self.resource_type.clone(), self.id.clone()));
        query.after_sort = self.sort.clone();
    }
}

/// What a page link carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageState {
    /// The client the pages belong to ([`crate::access::Access::owner`]).
    pub(crate) owner: String,
    /// The searched path below the base (`Patient`, `Patient/1/*`, `Patient/1/$everything`).
    pub(crate) path: String,
    /// The parameters that run the search again on that path; `None` when they did not fit.
    pub(crate) params: Option<Vec<(String, String)>>,
    /// The page: its first match's place in the result set, and its size.
    pub(crate) offset: usize,
    pub(crate) count: usize,
    /// The match before the page (`None` for the first page).
    pub(crate) after: Option<Key>,
    /// The `after` of earlier pages, `offset - count` last; the oldest may be left out.
    pub(crate) back: Vec<Option<Key>>,
    /// `Bundle.total` as the first page found it.
    pub(crate) total: Option<u64>,
    /// The result set kept by the process that ran the search.
    pub(crate) token: String,
    /// Unix seconds after which the link is gone.
    pub(crate) expires: i64,
}

/// The result sets this process ran and keeps, and the key its links are sealed with.
pub(crate) struct Pages {
    sets: Cache<String, Arc<Snapshot>>,
    keys: Arc<Keys>,
    ttl: Duration,
}

impl Pages {
    pub(crate) fn new(ttl: Duration, keys: Arc<Keys>) -> Self {
        let sets = Cache::builder()
            .time_to_idle(ttl)
            .weigher(|_, set: &Arc<Snapshot>| u32::try_from(weight(set.read_len())).unwrap_or(u32::MAX))
            .max_capacity(MAX_CACHED_BYTES)
            .build();
        Self { sets, keys, ttl }
    }

    /// Keeps `snapshot` (under its token) for the pages that follow, weighed again when more
    /// of it was read since it was last kept.
    pub(crate) fn keep(&self, snapshot: &Arc<Snapshot>) {
        if snapshot.reweigh() || !self.sets.contains_key(&snapshot.token) {
            self.sets.insert(snapshot.token.clone(), Arc::clone(snapshot));
        }
    }

    /// The kept result set of `state`, if this process ran it and keeps it still.
    pub(crate) fn kept(&self, state: &PageState) -> Option<Arc<Snapshot>> {
        self.sets.get(&state.token).filter(|s| s.owner == state.owner && s.path == state.path)
    }

    /// The `_page` value of `state`, with a fresh expiry; `None` when it cannot be sealed.
    pub(crate) fn seal(&self, mut state: PageState) -> Option<String> {
        state.expires = now().saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let mut data = serde_json::to_vec(&state).ok()?;
        while data.len() > MAX_STATE && !state.back.is_empty() {
            state.back.remove(0);
            data = serde_json::to_vec(&state).ok()?;
        }
        if data.len() > MAX_STATE {
            state.params = None;
            data = serde_json::to_vec(&state).ok()?;
        }
        self.keys.seal(FORMAT, AAD, data)
    }

    /// The state a `_page` value carries, for `owner` on `path`; `None` when it is forged,
    /// altered, expired, another client's or another path's.
    pub(crate) fn open(&self, sealed: &str, owner: &str, path: &str) -> Option<PageState> {
        let why = |reason: &str| tracing::debug!(reason, "a `_page` value was refused");
        let Some(plain) = self.keys.open(FORMAT, AAD, sealed) else {
            why("forged, altered or sealed with a key no longer accepted");
            return None;
        };
        let state: PageState = serde_json::from_slice(&plain).ok()?;
        if state.expires < now() {
            why("expired");
            return None;
        }
        if state.owner != owner || state.path.trim_matches('/') != path.trim_matches('/') {
            why("another client's or another search's");
            return None;
        }
        Some(state)
    }
}

#[cfg(test)]
impl Pages {
    /// Runs the cache's pending evictions and weighings.
    pub(crate) fn settle(&self) {
        self.sets.run_pending_tasks();
    }

    /// The estimated bytes kept now, and their bound.
    pub(crate) fn weight(&self) -> u64 {
        self.sets.weighted_size()
    }

    pub(crate) fn bound(&self) -> u64 {
        MAX_CACHED_BYTES
    }
}

/// The estimated bytes of a kept result set of `matches` matches.
fn weight(matches: usize) -> usize {
    matches.saturating_mul(MATCH_BYTES).saturating_add(SET_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, sort: Vec<Option<SortValue>>) -> Key {
        Key { resource_type: "Patient".into(), id: id.into(), sort }
    }

    fn state() -> PageState {
        PageState {
            owner: "alice".into(),
            path: "Patient".into(),
            params: Some(vec![("name".into(), "x".into())]),
            offset: 20,
            count: 10,
            after: Some(key("p19", vec![Some(SortValue::Number(1.5)), None])),
            back: vec![None, Some(key("p09", vec![Some(SortValue::Text("x".into())), Some(SortValue::Integer(7))]))],
            total: Some(42),
            token: "t".into(),
            expires: 0,
        }
    }

    #[test]
    fn a_state_opens_only_for_its_owner_and_path_and_reveals_nothing() -> Result<(), String> {
        let pages = Pages::new(Duration::from_secs(60), Arc::new(Keys::new(&[3; 32], &[])?));
        let sealed = pages.seal(state()).ok_or("not sealed")?;
        let opened = pages.open(&sealed, "alice", "Patient").ok_or("not opened")?;
        assert_eq!(PageState { expires: 0, ..opened }, state());
        assert!(pages.open(&sealed, "bob", "Patient").is_none(), "another client");
        assert!(pages.open(&sealed, "alice", "Observation").is_none(), "another path");
        assert!(!sealed.contains("alice") && !sealed.contains("p19"));
        let other = Pages::new(Duration::from_secs(60), Arc::new(Keys::new(&[4; 32], &[])?));
        assert!(other.open(&sealed, "alice", "Patient").is_none(), "another key");
        let expired = Pages::new(Duration::ZERO, Arc::new(Keys::new(&[3; 32], &[])?));
        let sealed = expired.seal(state()).ok_or("not sealed")?;
        std::thread::sleep(Duration::from_millis(1100));
        assert!(expired.open(&sealed, "alice", "Patient").is_none(), "expired");
        Ok(())
    }

    #[test]
    fn large_states_drop_old_starts_then_the_parameters() -> Result<(), String> {
        let pages = Pages::new(Duration::from_secs(60), Arc::new(Keys::new(&[3; 32], &[])?));
        let mut deep = state();
        deep.back = (0..200).map(|n| Some(key(&format!("{n:0>60}"), Vec::new()))).collect();
        let opened = pages.open(&pages.seal(deep.clone()).ok_or("not sealed")?, "alice", "Patient").ok_or("no")?;
        assert!(opened.back.len() < 200 && opened.back.last() == deep.back.last() && opened.params.is_some());
        let mut wide = state();
        wide.params = Some(vec![("name".into(), "y".repeat(MAX_STATE))]);
        let opened = pages.open(&pages.seal(wide).ok_or("not sealed")?, "alice", "Patient").ok_or("no")?;
        assert_eq!(opened.params, None, "only the process that keeps the result set serves it");
        Ok(())
    }
}
