//! The result sets of searches, kept for paging, and the opaque tokens of their page links.
//!
//! A page link carries only a random token; the token names a result set and a page of it here,
//! so a client cannot forge or alter a page (an unknown token is a 410). Tokens expire after
//! [`EngineConfig::search_page_ttl`](crate::EngineConfig) without use; the cache is bounded by
//! a weight that grows with the size of the result set a token keeps alive (as read when the
//! token was issued).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::snapshot::Snapshot;

/// Matches kept over all cached result sets (about 100 bytes each).
const MAX_CACHED_MATCHES: u64 = 2_000_000;
/// Page tokens kept.
const MAX_TOKENS: u64 = 200_000;

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
            .weigher(|_, page: &Page| u32::try_from(page.snapshot.read_len() / 16 + 1).unwrap_or(u32::MAX))
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
