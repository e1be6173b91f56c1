//! The partitioned layout (README, "The partitioned layout"): a logical partition per resource
//! (`STORE|Type|id`, documents `c` and `v|n`), a transaction record per multi-resource write
//! (`STORE|tx|ID`, document `t`), a lock per conditional-create criterion (`STORE|g|HASH`,
//! document `g`), ordered by a hybrid logical clock instead of a store-wide clock document.
//!
//! - [`write`]: single-resource writes (one transactional batch) and the entry point;
//! - [`txn`]: the transaction protocol (begin, stage, commit, apply, finish; abort and clean up)
//!   and the resolution of a transaction found by a reader or writer;
//! - [`lock`]: the guard locks of conditional creates;
//! - [`resolve`]: reads that see only committed transactions;
//! - [`settle`]: searches and history pages that never see a transaction half-applied;
//! - [`hlc`]: the hybrid logical clock;
//! - [`fault`]: the crash hook of the tests (a no-op outside emulator builds).

pub(crate) mod fault;
pub(crate) mod hlc;
mod lock;
pub(crate) mod resolve;
pub(crate) mod settle;
mod txn;
mod write;

pub(crate) use write::transact;

use azure_data_cosmos::options::{ItemWriteOptions, Precondition};
use serde::{Deserialize, Serialize};

use crate::CosmosStore;
use crate::error::Error;
use crate::read::charge;

/// The most resources one transaction may write (its record lists them: about 60 bytes each,
/// well inside a 2 MB document).
pub(crate) const MAX_WRITES: usize = 10_000;

/// Allowed skew between the clocks of gateway processes, in microseconds: a search re-reads if a
/// transaction whose commit position is this close to its start was applied meanwhile.
pub(crate) const SKEW_MICROS: u64 = 5_000_000;

/// How long a finished transaction record is kept (searches look for recent ones), in
/// microseconds; older ones are removed by the next transaction that finishes.
pub(crate) const RETENTION_MICROS: u64 = 600_000_000;

/// Transaction states.
pub(crate) const PENDING: &str = "pending";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const DONE: &str = "done";
pub(crate) const ABORTED: &str = "aborted";

/// A resource a transaction writes, `(type, id)`, with its versions and their history positions.
pub(crate) type Written = ((String, String), Vec<(u64, u64)>);

/// A transaction record: the commit point of a multi-resource write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TxDoc {
    /// `t`.
    pub id: String,
    pub pk: String,
    pub s: String,
    /// `t`.
    pub k: String,
    pub tx: String,
    /// `pending`, `committed`, `done` or `aborted`.
    pub state: String,
    /// `Type/id/version` of every write, in the engine's order (version `i` of the list gets the
    /// history position `cts + i`).
    pub writes: Vec<String>,
    /// The resource types written (searches only care about transactions on their types).
    pub types: Vec<String>,
    /// The partition keys of the guard locks held.
    pub guards: Vec<String>,
    /// Until when (Unix ms) a pending transaction may still commit; after that anyone may abort it.
    pub expires: i64,
    /// The history position of its first version, set at commit.
    pub cts: u64,
}

impl TxDoc {
    /// The partition of transaction `tx`.
    pub(crate) fn pk(store: &CosmosStore, tx: &str) -> String {
        format!("{}|tx|{tx}", store.store_name())
    }

    /// Each resource written, `(type, id)`, once, in first-write order, with the history
    /// position of each of its versions.
    pub(crate) fn resources(&self) -> Vec<Written> {
        let mut out: Vec<Written> = Vec::new();
        for (n, key) in self.writes.iter().enumerate() {
            let mut parts = key.splitn(3, '/');
            let (Some(t), Some(id), Some(v)) = (parts.next(), parts.next(), parts.next()) else { continue };
            let Ok(v) = v.parse::<u64>() else { continue };
            let seq = self.cts + u64::try_from(n).unwrap_or(0);
            let resource = (t.to_owned(), id.to_owned());
            match out.iter_mut().find(|(r, _)| *r == resource) {
                Some((_, versions)) => versions.push((v, seq)),
                None => out.push((resource, vec![(v, seq)])),
            }
        }
        out
    }
}

/// The options of a write under `etag`.
pub(crate) fn if_match(etag: &str) -> ItemWriteOptions {
    ItemWriteOptions::default().with_precondition(Precondition::IfMatch(etag.to_owned().into()))
}

/// Whether an error says a precondition failed or the document is not (or already) there.
pub(crate) fn lost_race(error: &Error) -> bool {
    matches!(error.status(), Some(404 | 409 | 412))
}

/// Creates a document; its new etag.
pub(crate) async fn create<T: Serialize + Send + Sync>(
    store: &CosmosStore,
    pk: &str,
    id: &str,
    doc: &T,
) -> Result<Option<String>, Error> {
    let response = store.inner.container.create_item(pk.to_owned(), id, doc, None).await?;
    store.charged("write", charge(&response));
    Ok(response.headers().etag().map(|e| e.to_string()))
}

/// Replaces a document (under `etag` if given); its new etag.
pub(crate) async fn replace<T: Serialize + Send + Sync>(
    store: &CosmosStore,
    pk: &str,
    id: &str,
    doc: &T,
    etag: Option<&str>,
) -> Result<Option<String>, Error> {
    let response = store.inner.container.replace_item(pk.to_owned(), id, doc, etag.map(if_match)).await?;
    store.charged("write", charge(&response));
    Ok(response.headers().etag().map(|e| e.to_string()))
}

/// Deletes a document (under `etag` if given); nothing if it is gone already.
pub(crate) async fn delete(store: &CosmosStore, pk: &str, id: &str, etag: Option<&str>) -> Result<(), Error> {
    match store.inner.container.delete_item(pk.to_owned(), id, etag.map(if_match)).await {
        Ok(response) => {
            store.charged("write", charge(&response));
            Ok(())
        }
        Err(e) if e.status().is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
