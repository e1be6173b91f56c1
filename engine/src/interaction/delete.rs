//! delete: `DELETE [type]/[id]`, and conditional delete `DELETE [type]?criteria`. Deleting a
//! missing or already deleted resource is not an error (204), and the deletion is a version in
//! the history. See <https://hl7.org/fhir/R4/http.html#delete> and
//! <https://hl7.org/fhir/R4/http.html#cdelete>.
//!
//! `If-Match` makes the delete conditional on the current version (412 otherwise), as for an
//! update: a client (or a gateway that decided on that version) deletes only what it saw.
//!
//! Conditional delete deletes one match; several matches are a 412, unless the request allows
//! more with `_count=N` (at most [`EngineConfig::max_conditional_delete`](super::EngineConfig)),
//! as in Microsoft's server. Then every match is deleted in one atomic batch, or none is.

use super::conditional::Criteria;
use super::gate::Gate;
use super::write::{CONFLICT_RETRIES, commit, conflict_backoff, if_match, prepare};
use super::{Engine, Request, Response};
use crate::error::{Error, Result};
use crate::resource::etag;
use crate::storage::WriteKind;

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Result<Response> {
    let if_match = if_match(request)?;
    for attempt in 0..CONFLICT_RETRIES {
        let current = engine.store.read(resource_type, id).await?;
        let live = current.filter(|c| !c.is_deleted());
        if let Some(expected) = if_match {
            if live.as_ref().map(|c| c.version) != Some(expected) {
                if let Some(live) = &live {
                    // Whether the resource exists is the client's to know only if it may see it.
                    gate.check_stored(engine, live).await?;
                }
                return Err(Error::PreconditionFailed(format!(
                    "`If-Match` version {expected} does not match the current version of `{resource_type}/{id}`"
                )));
            }
        }
        let Some(current) = live else {
            return Ok(Response::empty(204));
        };
        gate.check_stored(engine, &current).await?;
        match commit(engine, resource_type, id, current.version + 1, WriteKind::Delete, None).await {
            Ok(version) => {
                gate.written(&version);
                return Ok(Response::empty(204).with_header("ETag", etag(version.version)));
            }
            Err(Error::Conflict(m)) if if_match.is_some() => return Err(Error::PreconditionFailed(m)),
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("`{resource_type}/{id}` is being updated concurrently; retry")))
}

/// `DELETE [type]?criteria`.
pub(super) async fn conditional(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
) -> Result<Response> {
    let criteria = Criteria::from_params(engine, resource_type, &request.query)?;
    let allowed = match request.param("_count") {
        None => 1,
        Some(n) => match n.parse::<u32>() {
            Ok(n) if (1..=engine.config.max_conditional_delete).contains(&n) => n,
            _ => {
                return Err(Error::bad_request(format!(
                    "`_count` of a conditional delete must be 1 to {}, not `{n}`",
                    engine.config.max_conditional_delete
                )));
            }
        },
    };
    for attempt in 0..CONFLICT_RETRIES {
        let found = criteria.matches(engine, gate, allowed + 1).await?.visible;
        if found.len() > allowed as usize {
            return Err(criteria.ambiguous(&format!("more than {allowed} to delete; nothing was deleted")));
        }
        let mut writes = Vec::with_capacity(found.len());
        for m in &found {
            if let Some(stored) = engine.store.vread(&m.resource_type, &m.id, m.version).await? {
                gate.check_stored(engine, &stored).await?;
            }
            writes.push(prepare(engine, &m.resource_type, &m.id, m.version + 1, WriteKind::Delete, None)?);
        }
        if writes.is_empty() {
            return Ok(Response::empty(204));
        }
        let single = (writes.len() == 1).then(|| etag(writes[0].version.version));
        let deleted: Vec<_> = writes.iter().map(|w| w.version.clone()).collect();
        match engine.store.transact(writes).await.map_err(Error::from) {
            Ok(()) => {
                deleted.iter().for_each(|v| gate.written(v));
                let response = Response::empty(204);
                return Ok(match single {
                    Some(tag) => response.with_header("ETag", tag),
                    None => response,
                });
            }
            // A match changed meanwhile: look again.
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("`{}` keeps changing concurrently; retry", criteria.text)))
}
