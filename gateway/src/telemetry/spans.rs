//! The spans of a request. [`request`] is always made: its fields are the context of the
//! request's log lines (request id, principal, interaction, resource type). The others have the
//! target [`SPAN_TARGET`] and exist only while traces are exported. Attributes follow the
//! OpenTelemetry semantic conventions for HTTP (`http.request.method`, `url.path`,
//! `http.response.status_code`, `http.route`); FHIR and Cedar ones have their own prefixes.
//! No span carries resource data: types, ids named in the URL, decisions and policy ids only.

use fhirgate_engine::access::{Interaction, Target};
use fhirgate_engine::interaction::Request;
use fhirgate_policies::{AuthzRequest, Decision};
use opentelemetry::trace::{Status, TraceContextExt as _};
use pingora::http::RequestHeader;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{SPAN_TARGET, enabled};

/// The target of the request span.
const REQUEST_TARGET: &str = "fhirgate::request";

/// Whether `meta` is the request span's callsite.
pub(super) fn is_request(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == REQUEST_TARGET && meta.name() == "request"
}

/// The span of one request: the server span of its trace, a child of the caller's span when the
/// request carries a `traceparent`.
pub fn request(header: &RequestHeader, request_id: &str, client: Option<&str>) -> tracing::Span {
    let method = header.method.as_str();
    let span = tracing::info_span!(
        target: REQUEST_TARGET,
        "request",
        request_id = %request_id,
        method = %method,
        path = %header.uri.path(),
        principal = Empty,
        interaction = Empty,
        resource_type = Empty,
        otel.kind = Empty,
        otel.name = Empty,
    );
    if enabled() {
        span.record("otel.kind", "server");
        span.record("otel.name", method);
        // Not yet entered: the parent can still be set.
        let _ = span.set_parent(super::propagation::extract(header));
        span.set_attribute("http.request.method", method.to_owned());
        span.set_attribute("url.path", header.uri.path().to_owned());
        span.set_attribute("url.scheme", "http");
        span.set_attribute("fhirgate.request_id", request_id.to_owned());
        if let Some(agent) = header.headers.get("user-agent").and_then(|v| v.to_str().ok()) {
            span.set_attribute("user_agent.original", agent.to_owned());
        }
        if let Some(client) = client {
            span.set_attribute("client.address", client.to_owned());
        }
    }
    span
}

/// Records who the request's principal is (the token's subject).
pub fn principal(span: &tracing::Span, subject: &str) {
    span.record("principal", subject);
}

/// Records the interaction `request` performs (as the engine parses it) on the request span,
/// and, in traces, names the span after its route template (`GET /Patient/{id}`).
pub fn interaction(span: &tracing::Span, request: &Request) {
    // No log line and no trace reads it: not worth parsing the request again.
    if span.is_disabled() && !enabled() {
        return;
    }
    let Ok(target) = Target::of(request) else { return };
    span.record("interaction", target.interaction.as_str());
    if !target.resource_type.is_empty() {
        span.record("resource_type", target.resource_type.as_str());
    }
    if enabled() {
        let route = route(&target);
        // The span has started by now (its children have): renamed through its OTel context.
        span.context().span().update_name(format!("{} {route}", request.method.as_str()));
        span.set_attribute("http.route", route);
        span.set_attribute("fhir.interaction", target.interaction.as_str());
        if !target.resource_type.is_empty() {
            span.set_attribute("fhir.resource_type", target.resource_type);
        }
    }
}

/// The route template of an interaction: few values, fit for a span name.
fn route(target: &Target) -> String {
    use Interaction as I;
    let t = target.resource_type.as_str();
    let instance = !target.id.is_empty();
    match target.interaction {
        I::Capabilities => "/metadata".into(),
        I::Read | I::Update | I::Patch | I::Delete if instance => format!("/{t}/{{id}}"),
        I::Read | I::Update | I::Patch | I::Delete | I::Create | I::SearchType => format!("/{t}"),
        I::Vread => format!("/{t}/{{id}}/_history/{{vid}}"),
        I::SearchCompartment => format!("/{t}/{{id}}/{{type}}"),
        I::HistoryInstance => format!("/{t}/{{id}}/_history"),
        I::HistoryType => format!("/{t}/_history"),
        I::HistorySystem => "/_history".into(),
        I::SearchSystem | I::Batch | I::Transaction => "/".into(),
        I::Operation if instance => format!("/{t}/{{id}}/{{operation}}"),
        I::Operation if !t.is_empty() => format!("/{t}/{{operation}}"),
        I::Operation => "/{operation}".into(),
    }
}

/// Ends the request span's story: the status answered (a 5xx, or no answer, marks the span
/// failed).
pub fn finished(span: &tracing::Span, status: u16) {
    if !enabled() {
        return;
    }
    if status == 0 {
        // Nothing was answered (the client went away, or pingora failed before a response).
        span.set_status(Status::error("no response"));
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(format!("status {status}")));
    }
}

/// The verification of the request's bearer token.
pub fn authenticate(parent: &tracing::Span) -> tracing::Span {
    tracing::info_span!(target: SPAN_TARGET, parent: parent, "authenticate", fhirgate.outcome = Empty)
}

/// Records how authentication ended (`ok` or `rejected`).
pub fn authenticated(span: &tracing::Span, ok: bool) {
    span.record("fhirgate.outcome", if ok { "ok" } else { "rejected" });
    if !ok {
        span.set_status(Status::error("rejected"));
    }
}

/// One Cedar decision (`phase`: `type`, or the data-level phase).
pub fn decision(request: &AuthzRequest, phase: &str) -> tracing::Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "cedar.decide",
        cedar.phase = phase,
        cedar.action = request.action.as_str(),
        cedar.decision = Empty,
        cedar.policies = Empty,
        cedar.policy_set = Empty,
    )
}

/// Records a decision: its outcome, the determining policies (`<set>:<id>`) and their sets.
pub fn decided(span: &tracing::Span, decision: &Decision) {
    if span.is_disabled() {
        return;
    }
    span.record("cedar.decision", if decision.allowed { "allow" } else { "deny" });
    span.record("cedar.policies", decision.policies.join(",").as_str());
    let mut sets: Vec<&str> = decision.policies.iter().filter_map(|p| p.split_once(':').map(|(s, _)| s)).collect();
    sets.dedup();
    span.record("cedar.policy_set", sets.join(",").as_str());
}

/// The engine (local target) or the remote path (remote target) answering on one target.
pub fn engine(target: &str, remote: bool) -> tracing::Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "engine",
        fhirgate.target = target,
        fhirgate.target_kind = if remote { "remote" } else { "local" },
    )
}

/// One exchange with a remote FHIR server (its retries inside).
pub fn upstream(target: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "upstream",
        otel.kind = "client",
        http.request.method = method,
        fhirgate.target = target,
        http.response.status_code = Empty,
    )
}

/// Records the remote's status (a 5xx marks the span failed), or the failure.
pub fn upstream_done(span: &tracing::Span, result: Result<u16, &fhirgate_engine::Error>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(status) => {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.set_status(Status::error(format!("status {status}")));
            }
        }
        Err(why) => span.set_status(Status::error(why.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_name_types_not_ids() {
        let at = |interaction, t: &str, id: &str| route(&Target::new(interaction, t, id));
        assert_eq!(at(Interaction::Read, "Patient", "p1"), "/Patient/{id}");
        assert_eq!(at(Interaction::SearchType, "Observation", ""), "/Observation");
        assert_eq!(at(Interaction::Vread, "Patient", "p1"), "/Patient/{id}/_history/{vid}");
        assert_eq!(at(Interaction::Transaction, "", ""), "/");
        assert_eq!(at(Interaction::Operation, "Patient", "p1"), "/Patient/{id}/{operation}");
        assert_eq!(at(Interaction::Capabilities, "", ""), "/metadata");
    }
}
