//! The storage trait: what the engine needs from a store, and nothing about how a store does it.
//!
//! A store keeps every version of every resource as raw JSON (meta included), with the search
//! index entries the engine computed for it. Writes are data ([`Write`]): the engine decides ids,
//! versions and timestamps; the store applies a batch of writes atomically and checks the one
//! precondition that makes optimistic concurrency work: a write of version `n` succeeds only if
//! the resource's current version is `n - 1` (0 meaning "never existed").
//!
//! Store-neutral helpers for front ends live here too, so that they name no store: [`cost`]
//! (what requests cost their store), [`redact_url`] (a store URL fit for logs) and
//! [`Capabilities`] (what a store can do, for the CapabilityStatement).
//!
//! Besides the FHIR data a store may keep the records of asynchronous jobs ([`JobRecord`]),
//! which no search or history sees; a store that does not answers [`StoreError::Unsupported`].

mod capabilities;
pub mod cost;
pub mod encoding;
mod index;
mod jobs;
mod redact;

#[cfg(feature = "contract")]
pub mod contract;

pub use capabilities::Capabilities;
pub use index::{IndexEntry, IndexValue};
pub use jobs::JobRecord;
pub use redact::redact_url;

use async_trait::async_trait;

use crate::search::query::{SearchQuery, SortValue};
use time::OffsetDateTime;

/// Errors a store reports. The engine maps them to [`crate::Error`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's version precondition did not hold: someone else wrote first.
    #[error("version conflict on `{resource_type}/{id}`: expected current version {expected}, found {found}")]
    VersionConflict { resource_type: String, id: String, expected: u64, found: u64 },
    /// The store cannot be reached or failed to answer.
    #[error("{0}")]
    Unavailable(String),
    /// The store returned something that makes no sense (corrupt row, bad JSON...).
    #[error("{0}")]
    Corrupt(String),
    /// A search asks for something this store cannot answer (a clear error, never a wrong answer).
    #[error("{0}")]
    Unsupported(String),
    /// The store gave up on a statement that ran past its time budget.
    #[error("{0}")]
    Timeout(String),
    /// A [`Guard`] of the batch found a match: the batch was not applied.
    #[error("guard {0} of the batch matched a resource")]
    GuardMatched(usize),
}

/// How a version came to be; history entries report it as `request.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
    Delete,
}

impl WriteKind {
    /// A stable code for storing the kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// The inverse of [`WriteKind::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "create" => Some(Self::Create),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// One version of one resource, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    /// Stores keep (at least) millisecond precision and give the same instant back; the engine
    /// passes instants with millisecond precision, as `meta.lastUpdated` shows them.
    pub last_updated: OffsetDateTime,
    pub kind: WriteKind,
    /// The resource's JSON text with `meta` filled in; `None` for a deletion.
    pub json: Option<String>,
}

impl ResourceVersion {
    /// Whether this version is a deletion.
    pub fn is_deleted(&self) -> bool {
        self.kind == WriteKind::Delete
    }
}

/// A write the engine asks the store to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The version to create. The write succeeds only if the current version is `version - 1`.
    pub version: ResourceVersion,
    /// Search index entries for this version (empty for deletions).
    pub index: Vec<IndexEntry>,
}

/// A condition a batch of writes depends on (conditional create, and conditional update that
/// creates): no current resource may match `query` when the batch commits. The store checks it
/// inside the batch's transaction, serialised with every other batch guarded by the same `key`,
/// so two concurrent conditional creates with the same criteria create one resource, even from
/// two servers on one database.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// Batches whose guards share a key are serialised (the criteria as written, normalised).
    pub key: String,
    pub query: SearchQuery,
}

/// Which versions a history request covers, and which page of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryQuery {
    /// `None` for system-level history.
    pub resource_type: Option<String>,
    /// `Some` only with `resource_type`, for instance-level history.
    pub id: Option<String>,
    /// `_since`: only versions with `last_updated >= since`.
    pub since: Option<OffsetDateTime>,
    /// `_at`: only versions that were current at this instant: for each resource, its newest
    /// version with `last_updated <= at` (within the snapshot), left out if that version is a
    /// deletion (the resource did not exist then). Combines with `since` by intersection.
    pub at: Option<OffsetDateTime>,
    /// Only versions written at or before this point of the store's write order
    /// ([`HistoryPage::snapshot`] of the first page), so pages stay stable while writes arrive.
    pub snapshot: Option<HistorySnapshot>,
    /// Number of matching versions to skip (newest first). Ignored when `cursor` is set; kept for
    /// page links issued before history pages went by key (their cost grows with the offset).
    pub offset: u64,
    /// Where the page starts in the store's history order: the versions just older (the next
    /// page) or just newer (the previous page) than a version of an earlier page, by its key
    /// ([`HistoryPage::first_key`], [`HistoryPage::last_key`]), so a page costs what it shows
    /// however deep it is.
    pub cursor: Option<HistoryCursor>,
    /// Maximum number of versions to return.
    pub count: u32,
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub versions: Vec<ResourceVersion>,
    /// How many versions match the query in all (within the snapshot).
    pub total: u64,
    /// The write positions this page was read at; pass them back in [`HistoryQuery::snapshot`].
    pub snapshot: HistorySnapshot,
    /// The key of the page's first (newest) version, `None` when the page is empty.
    pub first_key: Option<HistoryKey>,
    /// The key of the page's last (oldest) version, `None` when the page is empty.
    pub last_key: Option<HistoryKey>,
}

/// A version's place in a store's history order (the order it lists history in, total: no two
/// versions share a key), as text only the store that wrote it reads: SQLite's write position,
/// PostgreSQL's `(last_updated, bucket, pos)`, Cosmos DB's `(seq, document id)`, or the version
/// number for instance history. Page links carry it sealed, so it is never a client's text; a
/// store answers [`StoreError::Unsupported`] for a key it cannot read (one another store wrote).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryKey(pub String);

/// Which side of a key a history page is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The `count` versions just older than the key (a `next` page), newest first.
    OlderThan(HistoryKey),
    /// The `count` versions just newer than the key (a `previous` page), newest first.
    NewerThan(HistoryKey),
}

/// Where a store's writes stood when a history's first page was read: one write position per
/// position bucket of the store (a store with one write order has one bucket). A version is
/// inside the snapshot when its position is at most its bucket's entry; a bucket the snapshot
/// does not name had no version then. Within a bucket positions are commit-ordered, so what a
/// snapshot shows never changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistorySnapshot(pub Vec<u64>);

impl HistorySnapshot {
    /// A store with one write order, at `position`.
    pub fn single(position: u64) -> Self {
        Self(vec![position])
    }

    /// Whether every bucket of `self` is at or past `other`'s.
    pub fn covers(&self, other: &HistorySnapshot) -> bool {
        other.0.iter().enumerate().all(|(n, p)| self.0.get(n).is_some_and(|q| q >= p))
    }
}

/// A resource a search matched: the version that was current when the search ran, so pages
/// read later show the result set as it was.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchMatch {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
}

/// A search match with the values its `_sort` keys had (one per key, `None` where the resource
/// has none): what a continuation after it ([`SearchQuery::after_sort`]) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub matched: SearchMatch,
    pub sort: Vec<Option<SortValue>>,
}

/// How full one connection pool of a store is, for monitoring (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool's part in the store (`shared`; SQLite: `read`, `write`).
    pub pool: &'static str,
    /// Connections open now, busy or idle.
    pub open: u32,
    /// Of those, connections idle in the pool.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// A FHIR store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current version of a resource, deletions included; `None` if it never existed.
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError>;

    /// A given version of a resource.
    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError>;

    /// The versions `keys` name (a page of search matches), in that order, leaving out any the
    /// store does not have. Stores that can answer in one round trip do; this default asks
    /// [`Store::vread`] for each.
    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.extend(self.vread(&key.resource_type, &key.id, key.version).await?);
        }
        Ok(found)
    }

    /// The index entries stored with a given version, in the order they were written;
    /// `None` if that version does not exist. Lets the contract suite (and reindexing tools)
    /// check what a store kept; search itself does not go through it.
    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError>;

    /// Replaces the index entries of `resource_type/id` version `version` by `index`, without a
    /// new version, if that version is still the current one (a racing write makes it a no-op);
    /// whether it did. Indexes existing resources for a new custom search parameter.
    async fn reindex(
        &self,
        _resource_type: &str,
        _id: &str,
        _version: u64,
        _index: &[IndexEntry],
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unsupported(format!("the {} store cannot reindex resources", self.kind())))
    }

    /// Applies all writes atomically: either every write is stored or none is.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.transact_guarded(writes, &[]).await
    }

    /// Applies all writes atomically if no guard matches (see [`Guard`]); otherwise nothing is
    /// stored and the first guard that matched is reported as [`StoreError::GuardMatched`].
    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError>;

    /// An initial load's batch: creates (version 1) of distinct resources that never existed,
    /// every one or none; [`StoreError::VersionConflict`] when one of them exists (or existed),
    /// [`StoreError::Unsupported`] for a write that is not a create. The same rows as
    /// [`Store::transact`] of the same writes, so a store may write them its fastest way (many
    /// rows per statement, no per-resource lock). By default, [`Store::transact`].
    async fn load(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.transact(writes.to_vec()).await
    }

    /// An initial load begins (before its first [`Store::load`]): a store may set aside, until
    /// [`Store::load_ends`], what it builds faster once at the end than row by row (an empty
    /// store's search indexes). Every answer stays right meanwhile; searches may be slower.
    /// By default, nothing.
    async fn load_begins(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// An initial load ended (done, failed or cancelled): builds again one piece of what
    /// [`Store::load_begins`] set aside; `true` while pieces remain, so the caller may renew its
    /// job's lease between calls. A store also builds them when it opens after a crash.
    /// By default, nothing is set aside.
    async fn load_ends(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// A page of history.
    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// The current, non-deleted resources matching `query`'s clauses (and compartment), ordered by
    /// its `_sort` keys, then by type and id; at most `limit`. Result parameters other than
    /// `_sort` are the engine's business.
    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError>;

    /// [`Store::search`], each match with its sort key values, so a sorted search can continue
    /// after the last match by key ([`SearchQuery::after_sort`]) rather than by offset. A
    /// store that cannot report them refuses sorted searches here (never a wrong order).
    async fn search_keyed(&self, query: &SearchQuery, limit: u32) -> Result<Vec<Keyed>, StoreError> {
        if !query.result.sort.is_empty() {
            return Err(StoreError::Unsupported(format!("the `{}` store cannot page `_sort` by key", self.kind())));
        }
        let matches = self.search(query, limit).await?;
        Ok(matches.into_iter().map(|matched| Keyed { matched, sort: Vec::new() }).collect())
    }

    /// How many resources [`Store::search`] would match without a limit.
    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError>;

    /// The record of job `id`, if there is one.
    async fn job(&self, _id: &str) -> Result<Option<JobRecord>, StoreError> {
        Err(jobs::unsupported(self.kind()))
    }

    /// Stores `job`: a new record when `job.version` is 1, otherwise the next version of the
    /// stored one. [`StoreError::VersionConflict`] when the stored version is not
    /// `job.version - 1` (someone else wrote first, or the record was deleted).
    async fn put_job(&self, _job: &JobRecord) -> Result<(), StoreError> {
        Err(jobs::unsupported(self.kind()))
    }

    /// Removes the record of job `id` (nothing when there is none).
    async fn delete_job(&self, _id: &str) -> Result<(), StoreError> {
        Err(jobs::unsupported(self.kind()))
    }

    /// Every job record of `kind` (a store holds few: they are removed when they expire).
    async fn jobs(&self, _kind: &str) -> Result<Vec<JobRecord>, StoreError> {
        Err(jobs::unsupported(self.kind()))
    }

    /// Whether the store is reachable and answering.
    async fn health(&self) -> Result<(), StoreError>;

    /// A short name for logs and the CapabilityStatement (`sqlite`, `postgres`...).
    fn kind(&self) -> &'static str;

    /// What this store can do where stores differ, for the CapabilityStatement. What each call
    /// costs is not here: a store that charges reports it through [`cost::charge`].
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Its connection pools' usage now, for monitoring; none for a store without pools of its
    /// own (Cosmos DB: the SDK's HTTP connections).
    fn pools(&self) -> Vec<PoolUsage> {
        Vec::new()
    }
}
