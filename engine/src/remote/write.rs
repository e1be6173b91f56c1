//! create, update, patch and delete on a remote (<https://hl7.org/fhir/R4/http.html>).
//!
//! With a per-resource grant, every resource sent is decided ([`Phase::Incoming`]: the body, or
//! the patched result) and every resource replaced or deleted is decided on its current version,
//! fetched from the remote first ([`Phase::Stored`]); the write is then sent with `If-Match` of
//! that version, so the remote refuses it (412) if anything changed between the decision and the
//! write. A patch is applied here on the fetched version, decided, and sent as an update of
//! exactly that content. A client `If-Match` that is not the current version is a 412 without
//! anything sent. A write that lost a race is decided and sent again, a few times.

use serde_json::{Map, Value};

use super::Call;
use super::read::not_found;
use super::send::{self, Flow, Halt, Reply};
use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::Error;
use crate::interaction::{Gate, Method, Request, Response, parse_resource};
use crate::patch::Patch;
use crate::resource::without_server_meta;
use crate::validation::validate;

/// How often a write without a client `If-Match` is decided and sent again after the remote
/// answered 412 (someone else wrote in between).
const ATTEMPTS: u32 = 3;

/// `POST [type]`, conditional with `If-None-Exist`.
pub(super) async fn create(call: &Call<'_>, gate: &Gate<'_>, request: &Request, resource_type: &str) -> Flow<Response> {
    let criteria = match request.headers.if_none_exist.as_deref() {
        Some(text) => {
            let text = text.strip_prefix(resource_type).unwrap_or(text);
            let params = crate::interaction::parse_query(text.trim_start_matches('?'));
            Some(super::conditional::Criteria::parse(call, resource_type, &params)?)
        }
        None => None,
    };
    if let Some(criteria) = &criteria {
        gate.check_traversals(&criteria.query)?;
    }
    if gate.covers_data() && criteria.as_ref().is_none_or(|_| reader_covers(gate, resource_type)) {
        return forward(call, request).await;
    }
    let resource = parse_resource(request, resource_type)?;
    call.load_consents_of(gate, &resource, &request.base_url).await?;
    gate.check_incoming(&resource)?;
    if let Some(criteria) = &criteria {
        let found = criteria.matches(call, gate, &request.base_url, 2).await?;
        match found.as_slice() {
            [] => {}
            [one] => return Ok(Response::json(200, Value::Object(one.clone()))),
            _ => return Err(Halt::Error(criteria.ambiguous("nothing was created"))),
        }
    }
    create_plain(call, gate, request, resource_type, resource).await
}

/// `POST [type]` of a decided `resource`, without conditions.
pub(super) async fn create_plain(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    resource: Map<String, Value>,
) -> Flow<Response> {
    let mut post = send::with_body(
        send::request(Method::Post, resource_type, Vec::new(), &request.base_url),
        &Value::Object(resource),
    );
    post.headers.prefer.clone_from(&request.headers.prefer);
    let reply = send::exchange(call.upstream, &post).await?;
    written(call, gate, resource_type, &reply);
    reply.pass()
}

/// `PUT [type]/[id]`.
pub(super) async fn update(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Flow<Response> {
    if gate.covers_data() {
        return forward(call, request).await;
    }
    let resource = parse_resource(request, resource_type)?;
    update_at(call, gate, request, resource_type, id, resource).await
}

/// The update of `resource_type/id` to `resource`, decided on both and sent with `If-Match`.
pub(super) async fn update_at(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
    resource: Map<String, Value>,
) -> Flow<Response> {
    match resource.get("id") {
        Some(Value::String(body_id)) if body_id == id => {}
        Some(Value::String(body_id)) => {
            return Err(Halt::Error(Error::bad_request(format!(
                "id `{body_id}` in the body does not match `{id}` in the URL"
            ))));
        }
        _ => {
            return Err(Halt::Error(Error::bad_request(format!(
                "the resource must have an `id` (`{id}`) for an update"
            ))));
        }
    }
    call.load_consents_of(gate, &resource, &request.base_url).await?;
    gate.check_incoming(&resource)?;
    let body = Value::Object(resource);
    for attempt in 0..ATTEMPTS {
        let current = current(call, gate, request, resource_type, id).await?;
        check_if_match(request, resource_type, id, current.as_ref().map(|(_, v)| v.as_str()))?;
        let reply = put(call, request, resource_type, id, &body, current.as_ref().map(|(_, v)| v.as_str())).await?;
        if let Some(reply) = settled(request, reply, attempt)? {
            written(call, gate, resource_type, &reply);
            return reply.pass();
        }
    }
    Err(raced(resource_type, id))
}

/// `PATCH [type]/[id]`.
pub(super) async fn patch(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Flow<Response> {
    if gate.covers_data() {
        return forward(call, request).await;
    }
    let content_type = request.headers.content_type.as_deref().unwrap_or_default();
    let patch = Patch::from_body(content_type, &request.body)?;
    patch_at(call, gate, request, &patch, resource_type, id).await
}

/// Applies `patch` to the current version of `resource_type/id`, decides on both, and sends
/// the result as an update of that version.
pub(super) async fn patch_at(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    patch: &Patch,
    resource_type: &str,
    id: &str,
) -> Flow<Response> {
    for attempt in 0..ATTEMPTS {
        let Some((stored, version)) = current(call, gate, request, resource_type, id).await? else {
            return Err(Halt::Error(not_found(resource_type, id)));
        };
        check_if_match(request, resource_type, id, Some(&version))?;
        let stored = Value::Object(stored);
        let Value::Object(patched) = patch.apply_within(&stored, crate::fhirpath::Budget::from(call.config))? else {
            return Err(Halt::Error(Error::unprocessable("the patch did not leave a resource")));
        };
        let issues = validate(Definitions::r4(), &Value::Object(patched.clone()));
        if !issues.is_empty() {
            return Err(Halt::Error(Error::Unprocessable(issues)));
        }
        // Decided on what the patch would write.
        call.load_consents_of(gate, &patched, &request.base_url).await?;
        gate.check_incoming(&patched)?;
        if stored.as_object().is_some_and(|s| without_server_meta(s) == without_server_meta(&patched)) {
            return Ok(Response::json(200, stored));
        }
        let reply = put(call, request, resource_type, id, &Value::Object(patched), Some(&version)).await?;
        if let Some(reply) = settled(request, reply, attempt)? {
            written(call, gate, resource_type, &reply);
            return reply.pass();
        }
    }
    Err(raced(resource_type, id))
}

/// `DELETE [type]/[id]`: a resource that does not exist is not an error (204).
pub(super) async fn delete(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Flow<Response> {
    if gate.covers_data() {
        return forward(call, request).await;
    }
    for attempt in 0..ATTEMPTS {
        let Some((_, version)) = current(call, gate, request, resource_type, id).await? else {
            return Ok(Response::empty(204));
        };
        check_if_match(request, resource_type, id, Some(&version))?;
        let mut delete = send::request(Method::Delete, &format!("{resource_type}/{id}"), Vec::new(), &request.base_url);
        delete.headers.if_match = Some(send::etag(&version));
        let reply = send::answer(call.upstream, &delete).await?;
        if let Some(reply) = settled(request, reply, attempt)? {
            written(call, gate, resource_type, &reply);
            return reply.pass();
        }
    }
    Err(raced(resource_type, id))
}

/// The client's request sent as it is (the grant covers every resource it touches).
pub(super) async fn forward(call: &Call<'_>, request: &Request) -> Flow<Response> {
    let reply = send::exchange(call.upstream, &send::forwarded(request)).await?;
    reply.pass()
}

/// Whether the client may read every resource of `resource_type` (so criteria need no
/// decision on their matches).
pub(super) fn reader_covers(gate: &Gate<'_>, resource_type: &str) -> bool {
    gate.reader(resource_type).is_some_and(|r| r.covers_data())
}

/// The current version of `resource_type/id` on the remote and its version id, decided as the
/// resource the write replaces (403 when not allowed); `None` when there is none.
async fn current(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
) -> Flow<Option<(Map<String, Value>, String)>> {
    let read = send::request(Method::Get, &format!("{resource_type}/{id}"), Vec::new(), &request.base_url);
    let reply = send::answer(call.upstream, &read).await?;
    match reply.status {
        404 | 410 => return Ok(None),
        s if s >= 400 => return Err(send::failure(reply)),
        _ => {}
    }
    let resource = reply.resource_of(resource_type)?.clone();
    if resource.get("id").and_then(Value::as_str) != Some(id) {
        return Err(super::bad_gateway(format!("asked for `{resource_type}/{id}`, got another resource")));
    }
    call.load_consents_of(gate, &resource, &request.base_url).await?;
    if !gate.allows(&Value::Object(resource.clone()), Phase::Stored) {
        return Err(Halt::Error(Error::Forbidden(format!(
            "`{}` on `{resource_type}/{id}` is not allowed on the stored resource",
            gate.target().interaction
        ))));
    }
    let version = reply.version().ok_or_else(|| super::bad_gateway("the resource has no version"))?;
    Ok(Some((resource, version)))
}

/// 412 when the client's `If-Match` names another version than `current` (or there is none).
fn check_if_match(request: &Request, resource_type: &str, id: &str, current: Option<&str>) -> Flow<()> {
    let Some(tag) = &request.headers.if_match else { return Ok(()) };
    let expected = send::etag_value(tag);
    if current == Some(expected.as_str()) {
        return Ok(());
    }
    Err(Halt::Error(Error::PreconditionFailed(format!(
        "`If-Match` version {expected} is not the current version of `{resource_type}/{id}` ({})",
        current.unwrap_or("none")
    ))))
}

/// `PUT [type]/[id]` of `body`, with `If-Match` of `version` when there is one.
async fn put(
    call: &Call<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
    body: &Value,
    version: Option<&str>,
) -> Flow<Reply> {
    let mut put = send::with_body(
        send::request(Method::Put, &format!("{resource_type}/{id}"), Vec::new(), &request.base_url),
        body,
    );
    put.headers.if_match = version.map(send::etag);
    put.headers.prefer.clone_from(&request.headers.prefer);
    send::answer(call.upstream, &put).await
}

/// The remote's answer to a write: done (`Some`), or `None` when it lost a race and may be
/// tried again (a 412 the client's own `If-Match` did not ask for).
fn settled(request: &Request, reply: Reply, attempt: u32) -> Flow<Option<Reply>> {
    match reply.status {
        412 if request.headers.if_match.is_none() && attempt + 1 < ATTEMPTS => Ok(None),
        s if s >= 400 => Err(send::failure(reply)),
        _ => Ok(Some(reply)),
    }
}

fn raced(resource_type: &str, id: &str) -> Halt {
    Halt::Error(Error::Conflict(format!("`{resource_type}/{id}` is being updated concurrently; retry")))
}

/// Tells the access a write committed, with the version the remote reports.
fn written(call: &Call<'_>, gate: &Gate<'_>, resource_type: &str, reply: &Reply) {
    let id = reply.body.as_ref().and_then(|b| b.get("id")).and_then(Value::as_str).map(str::to_owned).or_else(|| {
        let location = reply.header("Location")?;
        let path = location.split("/_history/").next()?;
        path.rsplit('/').next().map(str::to_owned)
    });
    let version = reply.version().and_then(|v| v.parse::<u64>().ok());
    if let (Some(id), Some(version)) = (id, version) {
        call.access.written(gate.target(), resource_type, &id, version);
    }
}
