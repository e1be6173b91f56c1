//! The result sets of searches, kept for paging, and the opaque tokens of their page links.
//!
//! A page link carries only a random token; the token names a result set and a page of it here,
//! so a client cannot forge or alter a page (an unknown token is a 410). Tokens expire after
//! [`EngineConfig::search_page_ttl`](crate::EngineConfig) without use; the cache is bounded by
//! a weight that grows with the size of the result set a token keeps alive.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::outcome::Issue;
use crate::search::query::SearchQuery;
use crate::storage::SearchMatch;

/// Matches kept over all cached result sets (about 100 bytes each).
const MAX_CACHED_MATCHES: u64 = 2_000_000;
/// Page tokens kept.
const MAX_TOKENS: u64 = 200_000;

/// One search's result set, as it was when the search ran.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) query: SearchQuery,
    pub(crate) matches: Vec<SearchMatch>,
    /// `Bundle.total`, when known and asked for.
    pub(crate) total: Option<u64>,
    /// The searched path below the base (`Patient`, `Patient/1/*`, `` for a system search).
    pub(crate) path: String,
    /// The applied parameters, for the `self` link of the first page.
    pub(crate) self_query: String,
    /// Warnings for every page (ignored parameters, a truncated result set).
    pub(crate) notes: Vec<Issue>,
}

/// What a page token stands for.
#[derive(Clone)]
struct Page {
    snapshot: Arc<Snapshot>,
    offset: usize,
    count: usize,
}

/// The cached result sets and page tokens of an engine.
pub(crate) struct Pages {
    tokens: Cache<String, Page>,
}

impl Pages {
    pub(crate) fn new(ttl: Duration) -> Self {
        let tokens = Cache::builder()
            .time_to_idle(ttl)
            .weigher(|_, page: &Page| u32::try_from(page.snapshot.matches.len() / 16 + 1).unwrap_or(u32::MAX))
            .max_capacity(MAX_CACHED_MATCHES / 16 + MAX_TOKENS)
            .build();
        Self { tokens }
    }

    /// A new token for `count` matches of `snapshot` from `offset`.
    pub(crate) fn issue(&self, snapshot: &Arc<Snapshot>, offset: usize, count: usize) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.tokens.insert(token.clone(), Page { snapshot: Arc::clone(snapshot), offset, count });
        token
    }

    /// The page a token stands for.
    pub(crate) fn page(&self, token: &str) -> Option<(Arc<Snapshot>, usize, usize)> {
        self.tokens.get(token).map(|p| (p.snapshot, p.offset, p.count))
    }
}
