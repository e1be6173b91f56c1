//! `$operations` and the CapabilityStatement of a remote (<https://hl7.org/fhir/R4/operations.html>,
//! <https://hl7.org/fhir/R4/http.html#capabilities>).
//!
//! An operation is allowed or denied at type level before it is sent; with a per-resource grant
//! the instance it runs on is read and decided first, and the resources it is given are decided
//! as resources sent (`Parameters.parameter.resource` at the first level). What it returns is decided
//! like any resource the client would see: a returned resource that is hidden is a 404 (or 403
//! when denied reads are not hidden); a returned Bundle loses its hidden entries (and `total`);
//! the resources inside a returned `Parameters` are decided one by one and hidden ones removed.
//! `OperationOutcome`s are the remote's messages and pass.

use serde_json::{Map, Value};

use super::Call;
use super::filter::{self, Shape};
use super::read::not_found;
use super::send::{self, Flow, Halt};
use crate::access::Phase;
use crate::error::Error;
use crate::interaction::{Gate, Method, Request, Response};

/// `GET metadata`: the remote's CapabilityStatement (the gateway limits it to the route).
pub(super) async fn capabilities(call: &Call<'_>, request: &Request) -> Flow<Response> {
    let reply = send::exchange(call.upstream, &send::forwarded(request)).await?;
    reply.resource_of("CapabilityStatement")?;
    Ok(reply.respond(reply.body.clone()))
}

pub(super) async fn handle(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Flow<Response> {
    if !gate.covers_data() {
        check_instance(call, gate, request).await?;
        check_input(call, gate, request).await?;
    }
    let (sent, shape) = if gate.covers_data() { (request.clone(), Shape::default()) } else { Shape::strip(request)? };
    let reply = send::exchange(call.upstream, &send::forwarded(&sent)).await?;
    let Some(body) = &reply.body else { return Ok(reply.respond(None)) };
    let mut resource = reply.resource()?.clone();
    if gate.covers_data() {
        return Ok(reply.respond(Some(body.clone())));
    }
    call.load_consents(gate, &[body], &request.base_url).await?;
    match resource.get("resourceType").and_then(Value::as_str).unwrap_or_default() {
        "OperationOutcome" => {}
        "Bundle" => {
            filter::entries(&mut resource, gate);
            shape.apply_entries(&mut resource);
        }
        "Parameters" => parameters(&mut resource, gate, 0),
        _ => {
            if !gate.allows(body, Phase::Outgoing) {
                let target = gate.target();
                return Err(Halt::Error(if call.access.hides_denied_reads() {
                    Error::NotFound(format!("`${}` on `{}` found nothing", target.operation, target.path()))
                } else {
                    Error::Forbidden(format!(
                        "`${}` on `{}` returned a resource that is not allowed",
                        target.operation,
                        target.path()
                    ))
                }));
            }
            shape.apply(&mut resource);
        }
    }
    Ok(reply.respond(Some(Value::Object(resource))))
}

/// An operation on an instance runs only on an instance the client may see (`GET`) or change
/// (other methods): it is read and decided first; hidden, it does not exist for the client.
async fn check_instance(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Flow<()> {
    let target = gate.target();
    if target.id.is_empty() {
        return Ok(());
    }
    let (resource_type, id) = (target.resource_type.as_str(), target.id.as_str());
    let read = send::request(Method::Get, &format!("{resource_type}/{id}"), Vec::new(), &request.base_url);
    let reply = send::answer(call.upstream, &read).await?;
    match reply.status {
        404 | 410 => return Err(Halt::Error(not_found(resource_type, id))),
        s if s >= 400 => return Err(send::failure(reply)),
        _ => {}
    }
    let instance = Value::Object(reply.resource_of(resource_type)?.clone());
    call.load_consents(gate, &[&instance], &request.base_url).await?;
    let phase = if matches!(request.method, Method::Get | Method::Head) { Phase::Outgoing } else { Phase::Stored };
    if gate.allows(&instance, phase) {
        Ok(())
    } else if call.access.hides_denied_reads() {
        Err(Halt::Error(not_found(resource_type, id)))
    } else {
        Err(Halt::Error(Error::Forbidden(format!(
            "`${}` on `{resource_type}/{id}` is not allowed on this resource",
            target.operation
        ))))
    }
}

/// The resources an operation is given (the body, or the resources of its `Parameters`) are
/// decided like any resource sent.
async fn check_input(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Flow<()> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")))?;
    call.load_consents(gate, &[&body], &request.base_url).await?;
    let Value::Object(resource) = body else {
        return Err(Halt::Error(Error::bad_request("the body must be a FHIR resource")));
    };
    if resource.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok(gate.check_incoming(&resource)?);
    }
    let parameters = resource.get("parameter").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for parameter in parameters {
        if let Some(Value::Object(inner)) = parameter.get("resource") {
            gate.check_incoming(inner)?;
        }
    }
    Ok(())
}

/// Most levels of `Parameters.parameter.part` looked into.
const MAX_DEPTH: usize = 8;

/// Removes the parameters whose resource the client may not see (Bundles inside are filtered).
fn parameters(resource: &mut Map<String, Value>, gate: &Gate<'_>, depth: usize) {
    let key = if depth == 0 { "parameter" } else { "part" };
    let Some(Value::Array(list)) = resource.get_mut(key) else { return };
    list.retain_mut(|parameter| {
        if let Some(Value::Object(inner)) = parameter.get_mut("resource") {
            match inner.get("resourceType").and_then(Value::as_str) {
                Some("OperationOutcome") => {}
                Some("Bundle") => filter::entries(inner, gate),
                _ => return gate.allows(&Value::Object(inner.clone()), Phase::Outgoing),
            }
        }
        if parameter.get("part").is_some() {
            if depth >= MAX_DEPTH {
                return false;
            }
            if let Value::Object(map) = parameter {
                parameters(map, gate, depth + 1);
            }
        }
        true
    });
}
