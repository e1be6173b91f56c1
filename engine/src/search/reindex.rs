//! Reindexing for a custom search parameter (`custom.rs`): every current resource of its `base`
//! types gets the parameter's entries ([`crate::storage::Store::reindex`], no new version), a
//! page of [`PAGE`] at a time; then the parameter is ready for searches. Up to [`INLINE`]
//! resources are done before the write of the SearchParameter answers (a small store has the
//! parameter ready at once); beyond that it goes on in the background, with a pause between
//! pages. Writes made meanwhile index it themselves (a pending parameter is extracted), and
//! a resource updated under the reindex keeps its newer version's entries.
//!
//! Completion is kept as a store job record (kind [`KIND`], id from a digest of the definition),
//! so a restart does not redo it; an interrupted reindex starts over at the next start (each
//! step is idempotent). A store that cannot reindex leaves the parameter pending (logged) unless
//! none of its resources exist.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::definitions::{Definitions, SearchParam};
use crate::interaction::Engine;
use crate::search::index::extract_only;
use crate::search::query::{ResultParams, SearchQuery};
use crate::storage::{JobRecord, Store, StoreError};

/// Job record kind of a completed reindex.
pub(crate) const KIND: &str = "reindex";

/// Resources reindexed per step.
const PAGE: u32 = 100;

/// Resources reindexed before the write that put a parameter in force answers.
const INLINE: u64 = 200;

/// Pause between steps in the background, leaving the store to the requests.
const PAUSE: Duration = Duration::from_millis(5);

/// Reindexes for the pending custom parameter `url`: up to [`INLINE`] resources now, the rest
/// in the background.
pub(crate) async fn start(engine: &Engine, url: &str) {
    let Some((param, false)) = Definitions::r4().custom_by_url(url) else { return };
    match run(engine.store.as_ref(), param, Some(INLINE)).await {
        Ok(Some(_)) => return Definitions::r4().mark_custom_ready(param),
        Ok(None) => {}
        Err(error) => tracing::debug!(%url, %error, "inline reindex failed; going on in the background"),
    }
    let store = Arc::clone(&engine.store);
    let run = async move {
        match run(store.as_ref(), param, None).await {
            Ok(count) => {
                let count = count.unwrap_or_default();
                tracing::info!(url = %param.url, code = %param.code, count, "custom search parameter ready");
                Definitions::r4().mark_custom_ready(param);
            }
            Err(error) => {
                tracing::warn!(url = %param.url, %error, "custom search parameter stays pending: reindex failed");
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn(run)),
        Err(_) => tracing::warn!(%url, "custom search parameter stays pending: no runtime to reindex on"),
    }
}

/// The job record id of `param`'s completed reindex.
fn job_id(param: &SearchParam) -> String {
    let text = format!("{param:?}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("reindex-{hex}")
}

/// Reindexes every current resource `param` covers; how many were, or `None` when more than
/// `limit` are there (then nothing is recorded).
async fn run(store: &dyn Store, param: &SearchParam, limit: Option<u64>) -> Result<Option<u64>, StoreError> {
    let id = job_id(param);
    if store.job(&id).await.ok().flatten().is_some() {
        return Ok(Some(0));
    }
    let (mut count, mut seen) = (0_u64, 0_u64);
    for base in &param.base {
        let mut after = None;
        loop {
            let query = SearchQuery {
                resource_type: Some(base.clone()),
                clauses: Vec::new(),
                result: ResultParams::default(),
                compartment: None,
                after: after.take(),
                after_sort: Vec::new(),
            };
            let page = store.search(&query, PAGE).await?;
            let Some(last) = page.last() else { break };
            seen += page.len() as u64;
            if limit.is_some_and(|limit| seen > limit) {
                return Ok(None);
            }
            after = Some((last.resource_type.clone(), last.id.clone()));
            for version in store.vread_many(&page).await? {
                let Some(json) = version.json.as_deref() else { continue };
                let resource: Value = serde_json::from_str(json)
                    .map_err(|e| StoreError::Corrupt(format!("`{}/{}`: {e}", version.resource_type, version.id)))?;
                let fresh = extract_only(Definitions::r4(), &resource, &[param.code.as_str()]);
                let (t, i, v) = (&version.resource_type, &version.id, version.version);
                let mut index = store.index(t, i, v).await?.unwrap_or_default();
                index.retain(|e| e.param != param.code);
                index.extend(fresh);
                if store.reindex(t, i, v, &index).await? {
                    count += 1;
                }
            }
            if limit.is_none() {
                tokio::time::sleep(PAUSE).await;
            }
        }
    }
    let record =
        JobRecord { id, kind: KIND.to_owned(), version: 1, body: serde_json::json!({ "url": param.url }).to_string() };
    if let Err(error) = store.put_job(&record).await {
        tracing::debug!(%error, "reindex completion not recorded; it is redone at the next start");
    }
    Ok(Some(count))
}
