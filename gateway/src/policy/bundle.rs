//! Batch and transaction bundles under the policies: every entry is decided on its own, with
//! the same checks as the request it stands for ([`enforce::before`]), before the engine runs
//! the bundle. A denied entry fails a transaction as a whole (403 naming the entry, nothing
//! runs); in a batch it answers 403 in its place while the other entries run. What the engine
//! returns in the response entries (resources read, search and history bundles) is decided
//! again on its data, like a single read or search, unless a type-level decision on reading
//! covers any data ([`fhirgate_policies::Decision::covers_data`]).

use fhirgate_engine::Engine;
use fhirgate_engine::interaction::{Method, Request, Response, parse_query};
use fhirgate_policies::{Action, AuthzRequest, Principal};
use serde_json::{Value, json};

use super::audit::{self, AuditInfo};
use super::enforce;
use super::{Phase, Policies};
use crate::error::GatewayError;

pub(super) async fn handle(
    policies: &Policies,
    engine: &Engine,
    principal: &Principal,
    authz: &AuthzRequest,
    request: &Request,
    audit: &AuditInfo,
) -> Result<Response, GatewayError> {
    let Ok(mut bundle) = serde_json::from_slice::<Value>(&request.body) else {
        return Ok(engine.handle(request).await); // not a Bundle: the engine says what is wrong
    };
    let is_batch = authz.action == Action::Batch;
    let entries = bundle.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut denied: Vec<(usize, GatewayError)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some((sub, entry_authz)) = entry_request(request, entry, authz) else { continue };
        if let Err(e) = enforce::before(policies, engine, principal, &entry_authz, &sub, audit).await {
            if !is_batch {
                return Err(GatewayError::Forbidden(format!("Bundle.entry[{i}]: {e}; nothing of the transaction ran")));
            }
            denied.push((i, e));
        }
    }
    let mut forwarded = request.clone();
    if !denied.is_empty() {
        let kept: Vec<Value> = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !denied.iter().any(|(d, _)| d == i))
            .map(|(_, e)| e.clone())
            .collect();
        match bundle.as_object_mut() {
            Some(map) if kept.is_empty() => drop(map.remove("entry")),
            _ => bundle["entry"] = Value::Array(kept),
        }
        forwarded.body = serde_json::to_vec(&bundle).unwrap_or_default();
    }
    let mut response = engine.handle(&forwarded).await;
    if response.status != 200 {
        return Ok(response);
    }
    // What the response entries hold is read back to the client: one type-level decision on
    // reading, and when it covers any data (as for a `globalAdmin`), no decision per entry.
    let read = AuthzRequest::type_level(Action::Read, Default::default(), authz.context.clone());
    let reading = policies.evaluate(principal, &read);
    if reading.covers_data {
        audit::record(principal, &read, Phase::Type.as_str(), &reading, audit);
        if denied.is_empty() {
            return Ok(response);
        }
    }
    let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else { return Ok(response) };
    let mut out: Vec<Value> = answer.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, error) in denied {
        out.insert(i.min(out.len()), refused(error));
    }
    for entry in out.iter_mut().filter(|_| !reading.covers_data) {
        let Some(resource) = entry.get_mut("resource") else { continue };
        if resource.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            filter_entries(policies, principal, &read, resource, audit);
        } else if !policies.decide_data(principal, &read, resource, Phase::Outgoing, audit).allowed {
            let what = format!(
                "`{}/{}` is not allowed for this resource",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            *entry = refused(GatewayError::Forbidden(what));
        }
    }
    if !out.is_empty() {
        answer["entry"] = Value::Array(out);
    }
    let body = if request.pretty() { serde_json::to_vec_pretty(&answer) } else { serde_json::to_vec(&answer) };
    response.body = body.unwrap_or_default();
    Ok(response)
}

/// An entry as the request it stands for, with its type-level authorization request.
fn entry_request(outer: &Request, entry: &Value, authz: &AuthzRequest) -> Option<(Request, AuthzRequest)> {
    let method = entry.pointer("/request/method").and_then(Value::as_str)?;
    let url = entry.pointer("/request/url").and_then(Value::as_str)?;
    let url = url.strip_prefix(&outer.base_url).unwrap_or(url).trim_start_matches('/');
    let (path, query) = url.split_once('?').map_or((url, ""), |(p, q)| (p, q));
    let mut request = Request::new(Method::parse(method), path, &outer.base_url);
    request.query = parse_query(query);
    if let Some(resource) = entry.get("resource") {
        request.body = serde_json::to_vec(resource).unwrap_or_default();
    }
    let (action, target) = Action::from_http(method, path, !query.is_empty())?;
    Some((request, AuthzRequest::type_level(action, target, authz.context.clone())))
}

/// The response entry of a denied entry.
fn refused(error: GatewayError) -> Value {
    let response = error.response();
    let outcome: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let reason = if response.status == 404 { "Not Found" } else { "Forbidden" };
    json!({ "response": { "status": format!("{} {reason}", response.status), "outcome": outcome } })
}

/// Drops the entries of a search or history bundle inside a response that the principal may
/// not see; its `total` goes too, since it would count them.
fn filter_entries(
    policies: &Policies,
    principal: &Principal,
    read: &AuthzRequest,
    bundle: &mut Value,
    audit: &AuditInfo,
) {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else { return };
    let before = entries.len();
    entries.retain(|e| {
        enforce::search_mode(e) == Some("outcome")
            || e.get("resource")
                .is_none_or(|r| policies.decide_data(principal, read, r, Phase::Outgoing, audit).allowed)
    });
    if entries.len() != before {
        if let Some(map) = bundle.as_object_mut() {
            map.remove("total");
        }
    }
}
