//! What create and update share: reading and checking the body, committing a version, and the
//! response a write gets (`Location`, `ETag`, `Prefer: return=...`).

use serde_json::{Map, Value};

use super::request::PreferReturn;
use super::{Engine, Request, Response, read};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::format::check_body_content_type;
use crate::outcome::{Issue, IssueType, OperationOutcome};
use crate::resource::{parse_etag, set_meta};
use crate::search::index::extract;
use crate::storage::{Guard, ResourceVersion, Write, WriteKind};
use crate::validation::validate;

/// How often a write without `If-Match` is tried when other writers keep getting there first.
pub(super) const CONFLICT_RETRIES: u32 = 12;

/// Waits before retry `attempt` (0-based) after a version conflict: exponential, capped at 64 ms,
/// with jitter so that writers who collided do not collide again in lockstep.
pub(super) async fn conflict_backoff(attempt: u32) {
    let cap_ms = 1u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % cap_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(cap_ms / 2 + jitter / 2 + 1)).await;
}

/// Parses and validates the request body as a resource of `resource_type`.
pub(crate) fn parse_resource(request: &Request, resource_type: &str) -> Result<Map<String, Value>> {
    check_body_content_type(request.headers.content_type.as_deref())?;
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request("the request body is empty: expected a FHIR resource in JSON"));
    }
    let value: Value = serde_json::from_slice(&request.body).map_err(|e| {
        Error::BadRequest(vec![Issue::error(IssueType::Structure, format!("the body is not valid JSON: {e}"))])
    })?;
    let Value::Object(mut resource) = value else {
        return Err(Error::BadRequest(vec![Issue::error(
            IssueType::Structure,
            "the body must be a JSON object with a `resourceType`",
        )]));
    };
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == resource_type => {}
        Some(t) => {
            return Err(Error::bad_request(format!(
                "resource type `{t}` in the body does not match `{resource_type}` in the URL"
            )));
        }
        None => {
            return Err(Error::BadRequest(vec![
                Issue::error(IssueType::Required, "the resource has no `resourceType`").at(resource_type),
            ]));
        }
    }
    drop_empty_meta(&mut resource);
    let issues = validate(Definitions::r4(), &Value::Object(resource.clone()));
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    Ok(resource)
}

/// The version `If-Match` names (`W/"3"`), when the request has one; a malformed one is a 400.
pub(super) fn if_match(request: &Request) -> Result<Option<u64>> {
    let Some(tag) = request.headers.if_match.as_deref() else { return Ok(None) };
    parse_etag(tag).map(Some).ok_or_else(|| {
        Error::bad_request(format!("invalid `If-Match` value `{tag}`: expected a version like `W/\"1\"`"))
    })
}

/// Removes a `meta` that is an empty object. JSON FHIR has no empty objects, but generators
/// (Synthea among them) write `"meta": {}`; the server fills `meta` on every write anyway, so
/// the empty one means nothing and is not worth rejecting the resource for.
pub(super) fn drop_empty_meta(resource: &mut Map<String, Value>) {
    if resource.get("meta").is_some_and(|m| m.as_object().is_some_and(Map::is_empty)) {
        resource.remove("meta");
    }
}

/// Stamps `meta`, serialises and stores one new version.
pub(super) async fn commit(
    engine: &Engine,
    resource_type: &str,
    id: &str,
    version: u64,
    kind: WriteKind,
    resource: Option<&mut Map<String, Value>>,
) -> Result<ResourceVersion> {
    commit_guarded(engine, resource_type, id, version, kind, resource, &[]).await
}

/// [`commit`], if no guard matches (conditional create).
pub(super) async fn commit_guarded(
    engine: &Engine,
    resource_type: &str,
    id: &str,
    version: u64,
    kind: WriteKind,
    resource: Option<&mut Map<String, Value>>,
    guards: &[Guard],
) -> Result<ResourceVersion> {
    if let Some(resource) = resource.as_deref() {
        super::validate::enforce(engine, resource).await?;
    }
    let write = prepare(engine, resource_type, id, version, kind, resource)?;
    let stored = write.version.clone();
    engine.store.transact_guarded(vec![write], guards).await?;
    super::validate::written(engine, &stored).await;
    Ok(stored)
}

/// The write of one new version: `meta` stamped on the resource, its JSON and index entries.
pub(crate) fn prepare(
    engine: &Engine,
    resource_type: &str,
    id: &str,
    version: u64,
    kind: WriteKind,
    resource: Option<&mut Map<String, Value>>,
) -> Result<Write> {
    let last_updated = engine.now();
    let (json, index) = match resource {
        Some(r) => {
            set_meta(r, version, last_updated);
            let json = serde_json::to_string(r).map_err(|e| Error::Internal(format!("serialising a resource: {e}")))?;
            // Extraction reads the resource as stored (meta included): `_lastUpdated`, `_tag`...
            let value = Value::Object(std::mem::take(r));
            let index = extract(Definitions::r4(), &value);
            if let Value::Object(map) = value {
                *r = map;
            }
            (Some(json), index)
        }
        None => (None, Vec::new()),
    };
    let version = ResourceVersion {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version,
        last_updated,
        kind,
        json,
    };
    Ok(Write { version, index })
}

/// The response to a successful create or update, honouring `Prefer: return=`.
pub(super) fn respond(request: &Request, version: &ResourceVersion, status: u16) -> Result<Response> {
    let location = request.url(&format!("{}/{}/_history/{}", version.resource_type, version.id, version.version));
    let response = match request.prefer_return() {
        PreferReturn::Minimal => Response::empty(status).with_version_headers(version),
        PreferReturn::OperationOutcome => {
            let message = if status == 201 { "created" } else { "updated" };
            let outcome = OperationOutcome {
                issues: vec![Issue::information(format!(
                    "{message} `{}/{}` version {}",
                    version.resource_type, version.id, version.version
                ))],
            };
            Response::json(status, outcome.to_json()).with_version_headers(version)
        }
        PreferReturn::Representation => read::representation(request, version, status)?,
    };
    Ok(response.with_header("Location", location))
}
