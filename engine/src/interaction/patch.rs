//! patch: `PATCH [type]/[id]` and conditional `PATCH [type]?criteria`, with JSON Patch or
//! FHIRPath Patch bodies (http.html#patch, fhirpatch.html). The patched resource is validated
//! like any write: a result that is not valid FHIR is a 422 and nothing is stored. `If-Match`
//! makes the patch apply only to that version (412 otherwise); without it, a patch that loses a
//! race with another writer is applied again to the new current version.

use serde_json::Value;

use super::conditional::Criteria;
use super::gate::Gate;
use super::write::{CONFLICT_RETRIES, commit, conflict_backoff, if_match, respond};
use super::{Engine, Request, Response, read};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::patch::Patch;
use crate::resource::without_server_meta;
use crate::storage::WriteKind;
use crate::validation::validate;

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Result<Response> {
    let patch = parse(request)?;
    patch_at(engine, gate, request, &patch, resource_type, id).await
}

/// `PATCH [type]?criteria`: one match is patched; none is a 404, several a 412.
pub(super) async fn conditional(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
) -> Result<Response> {
    let patch = parse(request)?;
    let criteria = Criteria::from_params(engine, resource_type, &request.query)?;
    match criteria.matches(engine, gate, 2).await?.visible.as_slice() {
        [] => Err(Error::NotFound(format!("`{}` matches no resource to patch", criteria.text))),
        [one] => patch_at(engine, gate, request, &patch, resource_type, &one.id).await,
        _ => Err(criteria.ambiguous("nothing was patched")),
    }
}

fn parse(request: &Request) -> Result<Patch> {
    let content_type = request.headers.content_type.as_deref().unwrap_or_default();
    Patch::from_body(content_type, &request.body)
}

/// The patched version of `resource_type/id`: applies `patch` to the current version and stores it.
pub(super) async fn patch_at(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    patch: &Patch,
    resource_type: &str,
    id: &str,
) -> Result<Response> {
    let if_match = if_match(request)?;
    for attempt in 0..CONFLICT_RETRIES {
        let current = read::live_version(engine.store.read(resource_type, id).await?, resource_type, id)?;
        gate.check_stored(engine, &current).await?;
        if let Some(expected) = if_match.filter(|v| *v != current.version) {
            return Err(Error::PreconditionFailed(format!(
                "`If-Match` version {expected} is not the current version of `{resource_type}/{id}` ({})",
                current.version
            )));
        }
        let stored: Value = serde_json::from_str(current.json.as_deref().unwrap_or("{}"))
            .map_err(|e| Error::Internal(format!("stored `{resource_type}/{id}` is not JSON: {e}")))?;
        let Value::Object(mut patched) = patch.apply_within(&stored, crate::fhirpath::Budget::from(&engine.config))?
        else {
            return Err(Error::unprocessable("the patch did not leave a resource"));
        };
        let issues = validate(Definitions::r4(), &Value::Object(patched.clone()));
        if !issues.is_empty() {
            return Err(Error::Unprocessable(issues));
        }
        // Decided on what the patch would write.
        gate.check_incoming_loaded(engine, &patched).await?;
        let unchanged = stored.as_object().is_some_and(|s| without_server_meta(s) == without_server_meta(&patched));
        if unchanged && !engine.config.version_unchanged_updates {
            return respond(request, &current, 200);
        }
        match commit(engine, resource_type, id, current.version + 1, WriteKind::Update, Some(&mut patched)).await {
            Ok(version) => {
                gate.written(&version);
                return respond(request, &version, 200);
            }
            Err(Error::Conflict(m)) if if_match.is_some() => return Err(Error::PreconditionFailed(m)),
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("`{resource_type}/{id}` is being updated concurrently; retry")))
}
