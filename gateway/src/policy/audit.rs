//! One JSON audit event per authorization decision, on tracing target `audit` (a layer of its
//! own that the log level cannot silence: [`crate::logging`]). The record is written as JSON
//! text field by field (no `serde_json::Value` built per decision: every read makes one) and
//! handed to the event as a `&str` (a `%` value would be copied through the formatter).

use fhirgate_policies::{AuthzRequest, Decision, Principal};

/// What the audit event needs from the HTTP exchange.
#[derive(Debug, Clone, Default)]
pub struct AuditInfo {
    pub request_id: String,
    /// The `X-Break-Glass` reason, when given.
    pub break_glass: Option<String>,
    /// The request's query string, as sent (without the `?`).
    pub query: Option<String>,
    /// The conditional criteria of the request: the `If-None-Exist` header of a conditional create.
    pub if_none_exist: Option<String>,
    /// The client's address (`ip:port`) as the server saw it.
    pub client_addr: Option<String>,
}

/// Emits the event, with the Cedar request it was decided on when given (`cedar`, see
/// `fhirgate_policies::replay`). Break-glass access is logged at warn level so it stands out.
pub fn record(
    principal: &Principal,
    request: &AuthzRequest,
    phase: &str,
    decision: &Decision,
    info: &AuditInfo,
    inputs: Option<&serde_json::Value>,
) {
    let mut event = header("authorization", principal, request, info);
    event.string("resource_type", &request.target.resource_type);
    event.string("resource_id", &request.target.id);
    event.optional("query", info.query.as_deref());
    event.optional("if_none_exist", info.if_none_exist.as_deref());
    event.string("phase", phase);
    event.string("decision", decision.as_str());
    event.strings("policies", &decision.policies);
    event.strings("errors", &decision.errors);
    event.boolean("covers_data", decision.covers_data);
    event.string("consent", request.consent.as_str());
    event.optional("break_glass", info.break_glass.as_deref());
    if let Some(inputs) = inputs {
        event.key("cedar");
        event.0.push_str(&inputs.to_string());
    }
    let event = event.finish();
    if info.break_glass.is_some() {
        tracing::warn!(target: "audit", record = event.as_str(), "authorization (break-glass)");
    } else {
        tracing::info!(target: "audit", record = event.as_str(), "authorization");
    }
}

/// Emits the event of an allowed decision on data that the patient's Consents deny: who saw
/// it, under which policies, with which break-glass reason, overriding which Consents. Logged at
/// warn level, like break-glass.
pub fn record_consent_override(
    principal: &Principal,
    request: &AuthzRequest,
    phase: &str,
    decision: &Decision,
    consents: &[String],
    info: &AuditInfo,
) {
    let mut event = header("consent-override", principal, request, info);
    event.string("resource_type", &request.target.resource_type);
    event.string("resource_id", &request.target.id);
    event.string("phase", phase);
    event.strings("policies", &decision.policies);
    event.strings("consents", consents);
    event.string("purpose_of_use", &request.context.purpose_of_use);
    event.optional("break_glass", info.break_glass.as_deref());
    let event = event.finish();
    tracing::warn!(target: "audit", record = event.as_str(), "consent overridden");
}

/// Emits the event of a committed write: which resource and version the request actually
/// changed (for a conditional interaction, the id its criteria matched).
pub fn record_write(
    principal: &Principal,
    request: &AuthzRequest,
    resource_type: &str,
    id: &str,
    version: u64,
    info: &AuditInfo,
) {
    let mut event = header("write", principal, request, info);
    event.string("resource_type", resource_type);
    event.string("resource_id", id);
    event.number("version", version);
    let event = event.finish();
    tracing::info!(target: "audit", record = event.as_str(), "write");
}

/// Emits the event of a finished request: who asked what, its status and how long it took.
pub fn record_request(request: &RequestRecord<'_>) {
    let event = request_event(request);
    tracing::info!(target: "audit", record = event.as_str(), "fhir request");
}

fn request_event(request: &RequestRecord<'_>) -> String {
    let mut event = JsonObject::new();
    event.string("request_id", request.request_id);
    event.string("method", request.method);
    event.string("path", request.path);
    event.number("status", u64::from(request.status));
    event.optional("subject", request.subject);
    event.optional("client", request.client);
    event.key("elapsed_ms");
    let elapsed = serde_json::Number::from_f64(request.elapsed_ms);
    event.0.push_str(&elapsed.map_or_else(|| "null".to_owned(), |n| n.to_string()));
    event.finish()
}

/// What the event of a finished request says ([`record_request`]).
pub struct RequestRecord<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    pub elapsed_ms: f64,
}

/// What every event says: which event, of which request, by whom, from where, doing what.
fn header(event: &str, principal: &Principal, request: &AuthzRequest, info: &AuditInfo) -> JsonObject {
    let mut header = JsonObject::new();
    header.string("event", event);
    header.string("request_id", &info.request_id);
    header.key("principal");
    header.0.push('"');
    escape_into(&mut header.0, principal.entity_type());
    escape_into(&mut header.0, "::\"");
    escape_into(&mut header.0, &principal.subject);
    escape_into(&mut header.0, "\"");
    header.0.push('"');
    header.string("issuer", &principal.issuer);
    header.string("tenant", &principal.tenant);
    header.string("client_id", &principal.client_id);
    header.optional("client", info.client_addr.as_deref());
    header.string("action", request.action.as_str());
    header.string("route", &request.context.route);
    header.string("target", &request.context.target);
    header
}

/// A JSON object written as text, one member at a time (keys are this module's literals).
struct JsonObject(String);

impl JsonObject {
    fn new() -> Self {
        let mut text = String::with_capacity(512);
        text.push('{');
        Self(text)
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push('"');
        escape_into(&mut self.0, value);
        self.0.push('"');
    }

    fn optional(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.string(key, value),
            None => {
                self.key(key);
                self.0.push_str("null");
            }
        }
    }

    fn strings(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.0.push('[');
        for (n, value) in values.iter().enumerate() {
            if n > 0 {
                self.0.push(',');
            }
            self.0.push('"');
            escape_into(&mut self.0, value);
            self.0.push('"');
        }
        self.0.push(']');
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.0.push_str(&value.to_string());
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Appends `value` as the inside of a JSON string.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    if !value.chars().any(|c| c == '"' || c == '\\' || c < ' ') {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhirgate_policies::{Action, RequestContext, Target};
    use serde_json::{Value, json};

    #[test]
    fn the_request_record_is_json_with_every_field() -> Result<(), serde_json::Error> {
        let record = RequestRecord {
            request_id: "r1",
            method: "GET",
            path: "/Patient/\"1\"",
            status: 200,
            subject: Some("u"),
            client: None,
            elapsed_ms: 1.25,
        };
        let parsed: Value = serde_json::from_str(&request_event(&record))?;
        assert_eq!(
            parsed,
            json!({"request_id": "r1", "method": "GET", "path": "/Patient/\"1\"", "status": 200, "subject": "u",
                "client": null, "elapsed_ms": 1.25})
        );
        Ok(())
    }

    #[test]
    fn the_record_is_json_with_every_field() -> Result<(), serde_json::Error> {
        let principal =
            Principal::from_claims(&json!({"sub": "we\"ird\\\n\u{1}", "iss": "i", "roles": ["r"]}), "patient");
        let target = Target { resource_type: "Patient".into(), id: "1".into(), operation: String::new() };
        let context = RequestContext { route: "lab".into(), target: "lab-\"1\"".into(), ..RequestContext::default() };
        let request = AuthzRequest::type_level(Action::Read, target, context);
        let decision = Decision { allowed: true, policies: vec!["a".into(), "b\"".into()], ..Decision::default() };
        let info = AuditInfo { request_id: "r1".into(), query: Some("name=\"x\"".into()), ..AuditInfo::default() };
        let mut event = header("authorization", &principal, &request, &info);
        event.optional("query", info.query.as_deref());
        event.strings("policies", &decision.policies);
        event.strings("errors", &decision.errors);
        event.boolean("covers_data", true);
        event.number("version", 7);
        let parsed: Value = serde_json::from_str(&event.finish())?;
        assert_eq!(
            parsed,
            json!({"event": "authorization", "request_id": "r1",
                "principal": "Fhir::Application::\"we\"ird\\\n\u{1}\"", "issuer": "i", "tenant": "", "client_id": "",
                "client": null, "action": "read", "route": "lab", "target": "lab-\"1\"", "query": "name=\"x\"", "policies": ["a", "b\""], "errors": [],
                "covers_data": true, "version": 7})
        );
        Ok(())
    }
}
