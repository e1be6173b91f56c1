//! create: `POST [type]`, with a server-assigned id, and conditional create (`If-None-Exist`).
//! See <https://hl7.org/fhir/R4/http.html#create> and <https://hl7.org/fhir/R4/http.html#ccreate>.

use serde_json::Value;

use super::conditional::Criteria;
use super::gate::Gate;
use super::write::{CONFLICT_RETRIES, commit_guarded, conflict_backoff, parse_resource, respond};
use super::{Engine, Request, Response, read};
use crate::error::{Error, Result};
use crate::storage::{Guard, StoreError, WriteKind};

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
) -> Result<Response> {
    let mut resource = parse_resource(request, resource_type)?;
    gate.check_incoming_loaded(engine, &resource).await?;
    let criteria =
        request.headers.if_none_exist.as_deref().map(|c| Criteria::parse(engine, resource_type, c)).transpose()?;
    for attempt in 0..CONFLICT_RETRIES {
        let mut guards: Vec<Guard> = Vec::new();
        if let Some(criteria) = &criteria {
            let found = criteria.matches(engine, gate, 2).await?;
            match found.visible.as_slice() {
                [] => guards = found.guards(criteria),
                [one] => {
                    // It exists already: nothing is created (http.html#ccreate).
                    let current = engine.store.read(&one.resource_type, &one.id).await?;
                    let current = read::live_version(current, &one.resource_type, &one.id)?;
                    return read::representation(request, &current, 200);
                }
                _ => return Err(criteria.ambiguous("nothing was created")),
            }
        }
        // The server assigns the id; one sent by the client is ignored (http.html#create).
        let id = (engine.config.ids)();
        resource.insert("id".into(), Value::String(id.clone()));
        match commit_guarded(engine, resource_type, &id, 1, WriteKind::Create, Some(&mut resource), &guards).await {
            Ok(version) => {
                gate.written(&version);
                return respond(request, &version, 201);
            }
            // Someone created a match (guard) or took the id first: look again.
            Err(Error::Conflict(_) | Error::PreconditionFailed(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::from(StoreError::Unavailable("could not allocate a unique id".into())))
}
