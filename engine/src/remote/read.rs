//! read and vread on a remote (<https://hl7.org/fhir/R4/http.html#read>): the resource is
//! decided on its whole content before the client sees anything of it. A resource the client
//! may not see answers exactly as one the remote does not have (the engine's 404), and so does
//! a deleted one it could not see before the deletion (decided on the last version with
//! content in the remote's history, as the engine decides a deletion). With a
//! per-resource grant the remote is asked for the whole resource without conditions
//! (`_summary`, `_elements`, `If-None-Match`, `If-Modified-Since`, HEAD), which are applied
//! here after the decision, so a 304 never reveals a hidden resource. When the type-level
//! decision covers every resource, a resource of the asked type passes as the remote wrote it,
//! checked to be JSON of that type but never parsed into a value ([`send::unparsed`]).

use super::Call;
use super::filter::Shape;
use super::send::{self, Flow, Halt};
use crate::access::Phase;
use crate::error::Error;
use crate::format::Summary;
use crate::interaction::{Gate, Method, Request, Response};
use crate::resource::parse_http_date;

pub(super) async fn handle(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Flow<Response> {
    let target = gate.target();
    let (resource_type, id) = (target.resource_type.as_str(), target.id.as_str());
    let missing = || Halt::Error(not_found(resource_type, id));
    if gate.covers_data() {
        let mut response = call.upstream.send(&send::forwarded(request)).await?;
        // The decision covers every resource: a resource of the asked type passes unread.
        if request.method != Method::Head
            && let Some(passed) = send::unparsed(&mut response, resource_type)
        {
            return Ok(passed);
        }
        let mut reply = send::parse(response)?;
        return match reply.status {
            404 => Err(missing()),
            304 => Ok(reply.respond(None)),
            s if s >= 400 => Err(send::failure(reply)),
            _ if request.method == Method::Head => Ok(reply.respond(None)),
            _ => {
                reply.resource_of(resource_type)?;
                let body = reply.body.take();
                Ok(reply.respond(body))
            }
        };
    }
    let summary = request.param("_summary").map(Summary::parse).transpose()?;
    let shape = Shape::of_read(summary, request.param("_elements"));
    let whole = send::request(Method::Get, &request.path, Vec::new(), &request.base_url);
    let reply = send::answer(call.upstream, &whole).await?;
    let hides = call.access.hides_denied_reads();
    match reply.status {
        404 => return Err(missing()),
        410 if hides && !deleted_visible(call, gate, request, resource_type, id).await? => return Err(missing()),
        s if s >= 400 => return Err(send::failure(reply)),
        _ => {}
    }
    let mut resource = reply.resource_of(resource_type)?.clone();
    if resource.get("id").and_then(serde_json::Value::as_str) != Some(id) {
        return Err(super::bad_gateway(format!("asked for `{resource_type}/{id}`, got another resource")));
    }
    call.load_consents_of(gate, &resource, &request.base_url).await?;
    if !gate.allows(&serde_json::Value::Object(resource.clone()), Phase::Outgoing) {
        return Err(if hides {
            missing()
        } else {
            Halt::Error(Error::Forbidden(format!(
                "`{}` on `{resource_type}/{id}` is not allowed for this resource",
                target.interaction
            )))
        });
    }
    if not_modified(request, &reply) {
        let mut response = reply.respond(None);
        response.status = 304;
        return Ok(response);
    }
    if request.method == Method::Head {
        return Ok(reply.respond(None));
    }
    shape.apply(&mut resource);
    Ok(reply.respond(Some(serde_json::Value::Object(resource))))
}

/// Whether the client may see the version a deleted resource had before its deletion (the
/// engine decides a deletion on it): the newest version with content in its history.
async fn deleted_visible(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Flow<bool> {
    let query = vec![("_count".to_owned(), "2".to_owned())];
    let history = send::request(Method::Get, &format!("{resource_type}/{id}/_history"), query, &request.base_url);
    let mut reply = send::answer(call.upstream, &history).await?;
    if reply.status != 200 {
        return Ok(false);
    }
    let bundle = reply.bundle(&["history"])?;
    let entries = bundle.get("entry").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let last = entries.iter().find_map(|e| e.get("resource").filter(|r| r.is_object()));
    if let Some(last) = last {
        call.load_consents(gate, &[last], &request.base_url).await?;
    }
    Ok(last.is_some_and(|resource| {
        resource["resourceType"] == resource_type && resource["id"] == id && gate.allows(resource, Phase::Outgoing)
    }))
}

/// The 404 of a resource that does not exist (or that the client may not see), worded as the
/// engine words it.
pub(super) fn not_found(resource_type: &str, id: &str) -> Error {
    Error::NotFound(format!("resource `{resource_type}/{id}` not found"))
}

/// Whether the client's cached copy is still current (conditional read), from the remote's
/// `ETag` and `Last-Modified`.
fn not_modified(request: &Request, reply: &send::Reply) -> bool {
    if let Some(tags) = &request.headers.if_none_match {
        let current = reply.version();
        return tags.split(',').any(|t| t.trim() == "*" || Some(send::etag_value(t)) == current);
    }
    let since = request.headers.if_modified_since.as_deref().and_then(parse_http_date);
    let modified = reply.header("Last-Modified").and_then(parse_http_date);
    match (since, modified) {
        (Some(since), Some(modified)) => modified.unix_timestamp() <= since.unix_timestamp(),
        _ => false,
    }
}
