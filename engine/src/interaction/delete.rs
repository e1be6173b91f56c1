//! delete: `DELETE [type]/[id]`. Deleting a missing or already deleted resource is not an
//! error (204), and the deletion is a version in the history.
//! See <https://hl7.org/fhir/R4/http.html#delete>.

use super::write::{CONFLICT_RETRIES, commit, conflict_backoff};
use super::{Engine, Response};
use crate::error::{Error, Result};
use crate::resource::etag;
use crate::storage::WriteKind;

pub(super) async fn handle(engine: &Engine, resource_type: &str, id: &str) -> Result<Response> {
    for attempt in 0..CONFLICT_RETRIES {
        let current = engine.store.read(resource_type, id).await?;
        let Some(current) = current.filter(|c| !c.is_deleted()) else {
            return Ok(Response::empty(204));
        };
        match commit(engine, resource_type, id, current.version + 1, WriteKind::Delete, None).await {
            Ok(version) => return Ok(Response::empty(204).with_header("ETag", etag(version.version))),
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("`{resource_type}/{id}` is being updated concurrently; retry")))
}
