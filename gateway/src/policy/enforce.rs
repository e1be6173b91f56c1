//! Enforcement around one FHIR interaction: the type-level decision first, then the data-level
//! decisions on the body sent (create, update), on the stored resource replaced or deleted
//! (read through the engine just before: a concurrent write between the two is not covered),
//! and on what the engine returns (read, vread; history bundles lose the entries denied, and
//! their total; a search matches only what the principal may see, decided by the engine on every
//! match before counting and paging, and loses the included resources denied). Each entry of a
//! batch or transaction goes through the same checks ([`bundle`]). When the type-level allow
//! covers any data ([`fhirgate_policies::Decision::covers_data`]: e.g. the role `globalAdmin` or
//! `globalReader`, with no forbid that reads data), no data-level decision is made.

use fhirgate_engine::Engine;
use fhirgate_engine::interaction::{Method, Request, Response};
use fhirgate_engine::patch::Patch;
use fhirgate_policies::{Action, AuthzRequest, Principal, RequestContext};
use serde_json::Value;

use super::audit::AuditInfo;
use super::{Phase, Policies, bundle};
use crate::error::GatewayError;

/// Runs `request` through the policies and the engine.
pub async fn handle(
    policies: &Policies,
    engine: &Engine,
    principal: &Principal,
    request: &Request,
    context: RequestContext,
    audit: &AuditInfo,
) -> Result<Response, GatewayError> {
    let Some((action, target)) = Action::from_http(request.method.as_str(), &request.path, !request.query.is_empty())
    else {
        // Not a FHIR interaction (unknown path): the engine answers 404 or 405 without data.
        return Ok(engine.handle(request).await);
    };
    // `POST /` is a batch or a transaction, as the Bundle says.
    let action = match action {
        Action::Transaction if bundle_type(&request.body).as_deref() == Some("batch") => Action::Batch,
        other => other,
    };
    let authz = AuthzRequest::type_level(action, target, context);
    let is_read = matches!(action, Action::Read | Action::Vread);
    let denied = |what: &str| denial(policies, action, request, what);
    let gate = before(policies, engine, principal, &authz, request, audit).await?;
    if matches!(action, Action::Batch | Action::Transaction) {
        return bundle::handle(policies, engine, principal, &authz, request, audit).await;
    }
    let is_search = matches!(action, Action::SearchType | Action::SearchSystem | Action::SearchCompartment);
    let mut response = if is_search && !gate.covers_data {
        // The engine decides on every match before counting and paging, so `total` and the
        // pages hold only what the principal may see.
        let visible = |resource: &Value| gate.allows(resource, Phase::Outgoing);
        engine.handle_visible(request, Some(&visible)).await
    } else {
        engine.handle(request).await
    };
    if gate.covers_data {
        return Ok(response); // whatever it holds, the type-level allow covers it
    }
    if is_read && response.status == 304 {
        // "Not modified" tells the version: only for those who may read the resource.
        let allowed = current(engine, request, &request.path).await.is_some_and(|r| gate.allows(&r, Phase::Outgoing));
        return if allowed { Ok(response) } else { Err(denied("is not allowed for this resource")) };
    }
    if response.status != 200 {
        return Ok(response);
    }
    if is_read {
        // Decide on the whole resource, whatever `_summary`, `_elements` or HEAD left out.
        let whole = match serde_json::from_slice::<Value>(&response.body) {
            Ok(v @ Value::Object(_)) if request.method != Method::Head && !trimmed(request) => Some(v),
            _ => current(engine, request, &request.path).await,
        };
        if !whole.is_some_and(|r| gate.allows(&r, Phase::Outgoing)) {
            return Err(denied("is not allowed for this resource"));
        }
    }
    if matches!(action, Action::HistoryInstance | Action::HistoryType | Action::HistorySystem) {
        filter_bundle(&gate, request, &mut response, Filter::History);
    } else if is_search {
        // Matches were decided by the engine (unless this is a later page, issued to whoever
        // ran the search); included resources are decided here.
        let matches_decided = request.param("_page").is_none();
        filter_bundle(&gate, request, &mut response, Filter::Search { matches_decided });
    }
    Ok(response)
}

/// The data-level decisions of one request, after its type-level allow.
pub(super) struct Gate<'a> {
    policies: &'a Policies,
    principal: &'a Principal,
    authz: &'a AuthzRequest,
    audit: &'a AuditInfo,
    /// The type-level allow holds for any resource data ([`fhirgate_policies::Decision::covers_data`]):
    /// no data-level decision is made (nor audited; the type-level event says `covers_data`).
    covers_data: bool,
}

impl Gate<'_> {
    /// Whether the principal may have `resource` in this request.
    fn allows(&self, resource: &Value, phase: Phase) -> bool {
        self.covers_data || self.policies.decide_data(self.principal, self.authz, resource, phase, self.audit).allowed
    }
}

/// The decisions before an interaction runs: the type-level one, then those on the body sent
/// and on the stored resource it replaces or deletes. Gives the gate for the data that follows.
pub(super) async fn before<'a>(
    policies: &'a Policies,
    engine: &Engine,
    principal: &'a Principal,
    authz: &'a AuthzRequest,
    request: &Request,
    audit: &'a AuditInfo,
) -> Result<Gate<'a>, GatewayError> {
    let action = authz.action;
    let decision = policies.decide(principal, authz, Phase::Type, audit);
    if !decision.allowed {
        return Err(denial(policies, action, request, "is not allowed"));
    }
    let gate = Gate { policies, principal, authz, audit, covers_data: decision.covers_data };
    if gate.covers_data {
        return Ok(gate);
    }
    if matches!(action, Action::Create | Action::Update) {
        if let Ok(body @ Value::Object(_)) = serde_json::from_slice::<Value>(&request.body) {
            if !gate.allows(&body, Phase::Incoming) {
                return Err(denial(policies, action, request, "is not allowed for this content"));
            }
        }
    }
    if matches!(action, Action::Update | Action::Patch | Action::Delete) && !authz.target.id.is_empty() {
        if let Some(stored) =
            current(engine, request, &format!("{}/{}", authz.target.resource_type, authz.target.id)).await
        {
            if !gate.allows(&stored, Phase::Stored) {
                return Err(denial(policies, action, request, "is not allowed on the stored resource"));
            }
            // A patch is decided on what it would write: the stored resource, patched. A patch
            // that cannot apply is left to the engine, which refuses it and stores nothing.
            if action == Action::Patch {
                let content_type = request.headers.content_type.as_deref().unwrap_or_default();
                let patched = Patch::from_body(content_type, &request.body).and_then(|p| p.apply(&stored));
                if let Ok(patched) = patched {
                    if !gate.allows(&patched, Phase::Incoming) {
                        return Err(denial(policies, action, request, "is not allowed for the patched content"));
                    }
                }
            }
        }
    }
    Ok(gate)
}

/// The error for a denial: 403, or 404 for a read when reads are hidden.
pub(super) fn denial(policies: &Policies, action: Action, request: &Request, what: &str) -> GatewayError {
    if matches!(action, Action::Read | Action::Vread) && policies.hides_reads() {
        GatewayError::Hidden(format!("`{}` not found", request.path))
    } else {
        GatewayError::Forbidden(format!("`{}` on `{}` {what}", action, request.path.trim_matches('/')))
    }
}

/// `Bundle.type` of a request body.
fn bundle_type(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("type").and_then(Value::as_str).map(str::to_string)
}

/// Whether the client asked for part of the resource only.
fn trimmed(request: &Request) -> bool {
    request.query.iter().any(|(k, _)| k == "_summary" || k == "_elements")
}

/// The resource at `path` as the engine stores it, when it exists.
async fn current(engine: &Engine, request: &Request, path: &str) -> Option<Value> {
    let read = Request::new(Method::Get, path, &request.base_url);
    let response = engine.handle(&read).await;
    (response.status == 200).then(|| serde_json::from_slice(&response.body).ok()).flatten()
}

/// Which bundle [`filter_bundle`] filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    /// A history page: every entry is decided here.
    History,
    /// A searchset; its matches were already decided by the engine when `matches_decided`.
    Search { matches_decided: bool },
}

/// `Bundle.entry.search.mode` of a search entry.
pub(super) fn search_mode(entry: &Value) -> Option<&str> {
    entry.pointer("/search/mode").and_then(Value::as_str)
}

/// Drops the entries of a Bundle whose resource the principal may not see.
fn filter_bundle(gate: &Gate<'_>, request: &Request, response: &mut Response, filter: Filter) {
    let Ok(mut bundle) = serde_json::from_slice::<Value>(&response.body) else {
        response.body = Vec::new(); // not JSON: nothing can be checked, nothing is sent
        return;
    };
    let mut changed = false;
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        let before = entries.len();
        let matches_decided = filter == Filter::Search { matches_decided: true };
        entries.retain(|entry| match (search_mode(entry), entry.get("resource")) {
            // The server's own warnings about the search (an OperationOutcome) are not data.
            (Some("outcome"), _) => true,
            (Some("match"), _) if matches_decided => true,
            (_, Some(resource)) => gate.allows(resource, Phase::Outgoing),
            (_, None) => true, // a deletion entry carries no data
        });
        changed = entries.len() != before;
    }
    if !changed {
        return;
    }
    // A total would count what was left out: it goes.
    if let Some(map) = bundle.as_object_mut() {
        map.remove("total");
    }
    let body = if request.pretty() { serde_json::to_vec_pretty(&bundle) } else { serde_json::to_vec(&bundle) };
    response.body = body.unwrap_or_default();
}
