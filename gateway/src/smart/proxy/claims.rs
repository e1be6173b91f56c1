//! One-time use of the proxy's sealed values ([`super::sealed`]) across replicas: using a value
//! claims its id in the store every replica shares, as a job record ([`JobRecord`], kind
//! [`KIND`]) created only when absent (a put of version 1 conflicts when the record exists, on
//! every store), so of two replicas using one value at once exactly one wins.
//!
//! The store is the first local target's (in configuration order). Without one, or with a
//! store that keeps no job records, claims are kept in this process only: one replica (or
//! sticky sessions), which the proxy warns about at start.
//!
//! A record only has to outlive the value it burns: each replica removes the expired ones
//! at most every [`SWEEP_SECONDS`], in the background of a claim.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use fhirgate_engine::seal::unix_now;
use fhirgate_engine::storage::{JobRecord, Store, StoreError};
use serde_json::{Value, json};

use super::sealed::Kind;
use crate::error::GatewayError;

/// The kind of the claim records.
pub const KIND: &str = "smart-claim";
/// How often a replica removes expired claim records, at most.
pub const SWEEP_SECONDS: i64 = 300;

/// The claims of this process, and when it last swept the store's.
pub struct Claims {
    /// Used ids, when there is no shared store; each kept as long as its value lives.
    local: moka::sync::Cache<String, ()>,
    last_sweep: AtomicI64,
}

impl Default for Claims {
    fn default() -> Self {
        Self::new()
    }
}

/// The record's id of `jti` of a `kind`.
fn record_id(kind: Kind, jti: &str) -> String {
    format!("smart-{}-{jti}", kind.name())
}

impl Claims {
    pub fn new() -> Self {
        let local = moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            // Longer than any value lives: an id is never forgotten while its value opens.
            .time_to_live(Duration::from_secs(900))
            .build();
        Self { local, last_sweep: AtomicI64::new(0) }
    }

    /// Claims the value `jti` of a `kind` that expires at `expires`: `Ok(true)` for the first
    /// use anywhere, `Ok(false)` when it was used already; `Err` when the store cannot say.
    pub async fn claim(
        &self,
        store: Option<&Arc<dyn Store>>,
        kind: Kind,
        jti: &str,
        expires: i64,
    ) -> Result<bool, GatewayError> {
        let id = record_id(kind, jti);
        let Some(store) = store else { return Ok(self.claim_here(id)) };
        let record =
            JobRecord { id: id.clone(), kind: KIND.into(), version: 1, body: json!({"expires": expires}).to_string() };
        let claimed = match store.put_job(&record).await {
            Ok(()) => true,
            Err(StoreError::VersionConflict { .. }) => false,
            Err(StoreError::Unsupported(_)) => return Ok(self.claim_here(id)),
            Err(e) => return Err(GatewayError::Store(format!("cannot claim a SMART {}: {e}", kind.name()))),
        };
        self.sweep_now_and_then(store);
        Ok(claimed)
    }

    fn claim_here(&self, id: String) -> bool {
        self.local.entry(id).or_insert(()).is_fresh()
    }

    /// Removes the store's expired claim records in the background, unless this process did
    /// within the last [`SWEEP_SECONDS`].
    fn sweep_now_and_then(&self, store: &Arc<dyn Store>) {
        let now = unix_now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_SECONDS
            || self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            match sweep(store.as_ref(), now).await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "SMART proxy: expired claim records removed"),
                Err(e) => tracing::warn!(error = %e, "SMART proxy: cannot remove expired claim records"),
            }
        });
    }
}

/// Removes the claim records that expired before `now`; how many.
pub async fn sweep(store: &dyn Store, now: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    for record in store.jobs(KIND).await? {
        let expires = serde_json::from_str::<Value>(&record.body).ok().and_then(|b| b["expires"].as_i64());
        // A record without a readable expiry is none of the proxy's making: removed too.
        if expires.is_none_or(|at| at < now) {
            store.delete_job(&record.id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_claimed_once_in_the_store_and_expired_records_are_swept() -> Result<(), GatewayError> {
        let store = crate::stores::open("sqlite::memory:", &crate::config::StoreConfig::default()).await?;
        let (one, other) = (Claims::new(), Claims::new());
        let now = unix_now();
        assert!(one.claim(Some(&store), Kind::Code, "j1", now + 60).await?, "first use");
        assert!(!other.claim(Some(&store), Kind::Code, "j1", now + 60).await?, "another process, same store");
        assert!(!one.claim(Some(&store), Kind::Code, "j1", now + 60).await?);
        assert!(other.claim(Some(&store), Kind::State, "j1", now + 60).await?, "the same id of another kind");
        assert!(one.claim(Some(&store), Kind::Launch, "old", now - 1).await?);
        let removed = sweep(store.as_ref(), now).await.map_err(|e| GatewayError::Store(e.to_string()))?;
        assert_eq!(removed, 1, "only the expired record");
        let left = store.jobs(KIND).await.map_err(|e| GatewayError::Store(e.to_string()))?;
        assert_eq!(left.len(), 2);
        // Without a store: once in this process.
        assert!(one.claim(None, Kind::Pick, "j2", now + 60).await?);
        assert!(!one.claim(None, Kind::Pick, "j2", now + 60).await?);
        Ok(())
    }
}
