//! read: `GET [type]/[id]`, with conditional read (`If-None-Match`, `If-Modified-Since`),
//! `_summary` and `_elements`. See <https://hl7.org/fhir/R4/http.html#read>.

use serde_json::Value;

use super::gate::Gate;
use super::{Engine, Request, Response};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::format::{Summary, apply_elements, apply_summary};
use crate::resource::{parse_etag, parse_http_date};
use crate::storage::ResourceVersion;

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Result<Response> {
    let current = engine.store.read(resource_type, id).await.map_err(Error::from)?;
    if let Some(current) = &current {
        // Decided on the whole resource, whatever `_summary`, `_elements`, HEAD or a 304 leave
        // out; a resource the client may not see does not exist for it, deleted or not.
        gate.check_outgoing(engine, current, || not_found(resource_type, id)).await?;
    }
    let version = live_version(current, resource_type, id)?;
    if not_modified(request, &version) {
        return Ok(Response::empty(304).with_version_headers(&version));
    }
    representation(request, &version, 200)
}

/// The current version, or 404 / 410 when there is none or it is a deletion.
pub(super) fn live_version(current: Option<ResourceVersion>, resource_type: &str, id: &str) -> Result<ResourceVersion> {
    match current {
        None => Err(not_found(resource_type, id)),
        Some(v) if v.is_deleted() => {
            Err(Error::Gone(format!("resource `{resource_type}/{id}` was deleted (version {})", v.version)))
        }
        Some(v) => Ok(v),
    }
}

/// The 404 of a resource that does not exist (or that the client may not see).
pub(super) fn not_found(resource_type: &str, id: &str) -> Error {
    Error::NotFound(format!("resource `{resource_type}/{id}` not found"))
}

/// Whether the client's cached copy is still current (conditional read).
fn not_modified(request: &Request, version: &ResourceVersion) -> bool {
    if let Some(tags) = &request.headers.if_none_match {
        // `If-None-Match` wins over `If-Modified-Since` (RFC 9110 13.2.2).
        return tags.split(',').any(|t| t.trim() == "*" || parse_etag(t) == Some(version.version));
    }
    if let Some(since) = request.headers.if_modified_since.as_deref().and_then(parse_http_date) {
        return version.last_updated.unix_timestamp() <= since.unix_timestamp();
    }
    false
}

/// A response carrying `version`, with `ETag`/`Last-Modified` and `_summary`/`_elements` applied.
pub(super) fn representation(request: &Request, version: &ResourceVersion, status: u16) -> Result<Response> {
    let Some(json) = &version.json else {
        return Err(Error::Gone(format!("resource `{}/{}` was deleted", version.resource_type, version.id)));
    };
    let summary = request.param("_summary").map(Summary::parse).transpose()?;
    let elements: Option<Vec<String>> = request
        .param("_elements")
        .map(|e| e.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    let response = if summary.is_none_or(|s| s == Summary::False) && elements.is_none() {
        Response::stored(status, json.clone())
    } else {
        let mut value: Value = serde_json::from_str(json).map_err(|e| {
            Error::Internal(format!("stored `{}/{}` is not JSON: {e}", version.resource_type, version.id))
        })?;
        if let Some(resource) = value.as_object_mut() {
            let defs = Definitions::r4();
            let rt = version.resource_type.as_str();
            if let Some(s) = summary {
                apply_summary(resource, s, |e| defs.is_summary_element(rt, e), |e| defs.is_mandatory_element(rt, e));
            } else if let Some(elements) = &elements {
                apply_elements(resource, elements, |e| defs.is_mandatory_element(rt, e));
            }
        }
        Response::json(status, value)
    };
    Ok(response.with_version_headers(version))
}
