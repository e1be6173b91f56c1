//! Searches and history pages that never show a transaction half-applied. A committed
//! transaction is applied resource by resource (step 5), and a cross-partition query reads
//! partitions one after the other, so a query running during step 5 could see some of its
//! resources new and others old. [`consistent`] applies the transactions committed before the
//! query starts, runs it, then looks for transactions committed or applied since (records
//! `committed`, or `done` with a commit position after the start minus the allowed clock skew):
//! if one touches the types read, it runs the query again (at most [`ROUNDS`] times, then 503).

use std::collections::HashSet;
use std::time::Duration;

use azure_data_cosmos::Query;
use serde::Deserialize;

use super::txn::resolve;
use super::{COMMITTED, SKEW_MICROS};
use crate::CosmosStore;
use crate::error::Error;
use crate::read;

/// Runs of one query before giving up.
const ROUNDS: usize = 4;

#[derive(Deserialize)]
struct Recent {
    tx: String,
    state: String,
    types: Vec<String>,
}

/// Runs `query` until no transaction on `types` (every type when empty) was applied meanwhile.
pub(crate) async fn consistent<T, F, Fut>(store: &CosmosStore, types: &[String], query: F) -> Result<T, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    for _ in 0..ROUNDS {
        let since = store.inner.hlc.now().saturating_sub(SKEW_MICROS);
        let before = recent(store, types, since).await?;
        for record in before.iter().filter(|r| r.state == COMMITTED) {
            resolve(store, &record.tx, None).await?;
        }
        let settled: HashSet<String> = before.into_iter().map(|r| r.tx).collect();
        let out = query().await?;
        let after = recent(store, types, since).await?;
        if after.iter().all(|r| settled.contains(&r.tx)) {
            return Ok(out);
        }
    }
    Err(Error::Service {
        status: 503,
        message: "transactions kept committing while the query ran; try again".into(),
        retry_after: Some(Duration::from_secs(1)),
    })
}

/// The transactions on `types` committed and not applied yet, or applied with a commit position
/// from `since` on.
async fn recent(store: &CosmosStore, types: &[String], since: u64) -> Result<Vec<Recent>, Error> {
    let text = format!(
        "SELECT c.tx, c.state, c.types FROM c WHERE {}c.k = 't' AND (c.state = 'committed' OR (c.state = 'done' AND \
         c.cts >= @since))",
        store.in_store("c")
    );
    let found: Vec<Recent> =
        read::query(store, "transactions in flight", Query::from(text).with_parameter("@since", since)?).await?;
    Ok(found.into_iter().filter(|r| types.is_empty() || r.types.iter().any(|t| types.contains(t))).collect())
}
