//! Guard locks: one document per conditional-create criterion (`STORE|g|HASH`, id `g`, with the
//! holding transaction). Transactions guarded by the same criterion take the lock in turn, so
//! each runs its guard search after the previous one finished. A lock whose holder is gone,
//! done or aborted is taken over under its etag; a committed holder is applied first; a pending
//! one past its lease is aborted first (its commit then fails: it can never write after losing
//! the lock).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::txn::{Outcome, resolve};
use super::{create, delete, lost_race, replace};
use crate::CosmosStore;
use crate::error::Error;
use crate::read;

/// Attempts at taking a lock held by a live transaction before giving up (503).
const ATTEMPTS: u32 = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockDoc {
    id: String,
    pk: String,
    s: String,
    /// `g`.
    k: String,
    holder: String,
}

/// The partition of the lock of guard `key`.
pub(crate) fn pk(store: &CosmosStore, key: &str) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}|g|{hex}", store.store_name())
}

/// Takes the lock of guard `key` for transaction `tx`.
pub(crate) async fn acquire(store: &CosmosStore, key: &str, tx: &str) -> Result<(), Error> {
    let pk = pk(store, key);
    let doc =
        LockDoc { id: "g".into(), pk: pk.clone(), s: store.store_name().to_owned(), k: "g".into(), holder: tx.into() };
    for attempt in 0..ATTEMPTS {
        match create(store, &pk, "g", &doc).await {
            Ok(_) => return Ok(()),
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
        let Some((held, etag)) = read::item::<LockDoc>(store, &pk, "g").await? else { continue };
        if held.holder == tx {
            return Ok(());
        }
        if resolve(store, &held.holder, None).await? == Outcome::Live {
            tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt.min(50)))).await;
            continue;
        }
        // The holder finished (or was aborted and cleaned up): take the lock over, unless
        // someone else did first.
        match replace(store, &pk, "g", &doc, etag.as_deref()).await {
            Ok(_) => return Ok(()),
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Contended(format!("the conditional-create criterion `{key}` stayed locked by another transaction")))
}

/// Releases the lock at `pk` if transaction `tx` holds it.
pub(crate) async fn release(store: &CosmosStore, pk: &str, tx: &str) -> Result<(), Error> {
    let Some((held, etag)) = read::item::<LockDoc>(store, pk, "g").await? else { return Ok(()) };
    if held.holder != tx {
        return Ok(());
    }
    match delete(store, pk, "g", etag.as_deref()).await {
        Err(e) if !lost_race(&e) => Err(e),
        _ => Ok(()),
    }
}
