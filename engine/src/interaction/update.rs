//! update: `PUT [type]/[id]`, with `If-Match` and update-as-create, and conditional update
//! `PUT [type]?criteria`. See <https://hl7.org/fhir/R4/http.html#update> and
//! <https://hl7.org/fhir/R4/http.html#cond-update>.

use serde_json::Value;

use super::conditional::Criteria;
use super::gate::Gate;
use super::write::{CONFLICT_RETRIES, commit_guarded, conflict_backoff, if_match, parse_resource, respond};
use super::{Engine, Request, Response};
use crate::error::{Error, Result};
use crate::resource::without_server_meta;
use crate::storage::{Guard, WriteKind};

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Result<Response> {
    let resource = parse_resource(request, resource_type)?;
    update_at(engine, gate, request, resource_type, id, resource, &[]).await
}

/// `PUT [type]?criteria`: no match creates (at the body's id, or a new one), one match is
/// updated, several are a 412.
pub(super) async fn conditional(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
) -> Result<Response> {
    let criteria = Criteria::from_params(engine, resource_type, &request.query)?;
    let resource = parse_resource(request, resource_type)?;
    let body_id = resource.get("id").and_then(Value::as_str).map(str::to_owned);
    let mut attempt = 0;
    loop {
        let mut resource = resource.clone();
        let found = criteria.matches(engine, gate, 2).await?;
        match found.visible.as_slice() {
            [] => {
                let id = body_id.clone().unwrap_or_else(|| (engine.config.ids)());
                resource.insert("id".into(), Value::String(id.clone()));
                match update_at(engine, gate, request, resource_type, &id, resource, &found.guards(&criteria)).await {
                    // A concurrent write created a match: decide again on what matches now.
                    Err(Error::PreconditionFailed(_)) if attempt < 3 => attempt += 1,
                    other => return other,
                }
            }
            [one] => {
                if body_id.as_ref().is_some_and(|b| *b != one.id) {
                    return Err(Error::bad_request(format!(
                        "the body's id `{}` is not the id of the resource `{}` matches (`{}`)",
                        body_id.unwrap_or_default(),
                        criteria.text,
                        one.id
                    )));
                }
                resource.insert("id".into(), Value::String(one.id.clone()));
                return update_at(engine, gate, request, resource_type, &one.id, resource, &[]).await;
            }
            _ => return Err(criteria.ambiguous("nothing was updated")),
        }
    }
}

/// The update of `resource_type/id` to `resource`, honouring `If-Match`; `guards` must hold
/// when it creates the resource.
async fn update_at(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
    mut resource: serde_json::Map<String, Value>,
    guards: &[Guard],
) -> Result<Response> {
    match resource.get("id") {
        Some(Value::String(body_id)) if body_id == id => {}
        Some(Value::String(body_id)) => {
            return Err(Error::bad_request(format!("id `{body_id}` in the body does not match `{id}` in the URL")));
        }
        _ => return Err(Error::bad_request(format!("the resource must have an `id` (`{id}`) for an update"))),
    }
    gate.check_incoming_loaded(engine, &resource).await?;
    let if_match = if_match(request)?;
    for attempt in 0..CONFLICT_RETRIES {
        let current = engine.store.read(resource_type, id).await?;
        let live = current.as_ref().filter(|c| !c.is_deleted());
        if let Some(live) = live {
            gate.check_stored(engine, live).await?;
        }
        if let Some(expected) = if_match {
            if live.map(|c| c.version) != Some(expected) {
                return Err(Error::PreconditionFailed(format!(
                    "`If-Match` version {expected} does not match the current version of `{resource_type}/{id}` ({})",
                    live.map_or_else(|| "none".to_string(), |c| c.version.to_string())
                )));
            }
        }
        if current.is_none() && !engine.config.update_create {
            return Err(Error::MethodNotAllowed(format!(
                "`{resource_type}/{id}` does not exist and this server does not create resources with client ids"
            )));
        }
        if let Some(live) = live {
            if !engine.config.version_unchanged_updates && unchanged(live.json.as_deref(), &resource) {
                return respond(request, live, 200);
            }
        }
        let next = current.as_ref().map_or(1, |c| c.version + 1);
        let status = if live.is_some() { 200 } else { 201 };
        let guards = if current.is_none() { guards } else { &[] };
        match commit_guarded(engine, resource_type, id, next, WriteKind::Update, Some(&mut resource), guards).await {
            Ok(version) => {
                gate.written(&version);
                return respond(request, &version, status);
            }
            Err(Error::Conflict(m)) if if_match.is_some() => return Err(Error::PreconditionFailed(m)),
            // A concurrent conditional update created a match: the criteria now decide again.
            Err(e @ Error::PreconditionFailed(_)) => return Err(e),
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!("`{resource_type}/{id}` is being updated concurrently; retry")))
}

/// Whether the new content equals the stored version, server-managed meta aside.
fn unchanged(stored: Option<&str>, new: &serde_json::Map<String, Value>) -> bool {
    let Some(Ok(Value::Object(stored))) = stored.map(serde_json::from_str::<Value>) else {
        return false;
    };
    without_server_meta(&stored) == without_server_meta(new)
}
