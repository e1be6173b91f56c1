//! One JSON audit event per authorization decision, on tracing target `audit` (a layer of its
//! own that the log level cannot silence: [`crate::logging`]).

use fhirgate_policies::{AuthzRequest, Decision, Principal};
use serde_json::{Map, Value, json};

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

/// Emits the event. Break-glass access is logged at warn level so it stands out.
pub fn record(principal: &Principal, request: &AuthzRequest, phase: &str, decision: &Decision, info: &AuditInfo) {
    let mut event = header("authorization", principal, request, info);
    for (key, value) in [
        ("resource_type", json!(request.target.resource_type)),
        ("resource_id", json!(request.target.id)),
        ("query", json!(info.query)),
        ("if_none_exist", json!(info.if_none_exist)),
        ("phase", json!(phase)),
        ("decision", json!(decision.as_str())),
        ("policies", json!(decision.policies)),
        ("errors", json!(decision.errors)),
        ("covers_data", json!(decision.covers_data)),
        ("break_glass", json!(info.break_glass)),
    ] {
        event.insert(key.to_owned(), value);
    }
    let event = Value::Object(event);
    if info.break_glass.is_some() {
        tracing::warn!(target: "audit", record = %event, "authorization (break-glass)");
    } else {
        tracing::info!(target: "audit", record = %event, "authorization");
    }
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
    event.insert("resource_type".to_owned(), json!(resource_type));
    event.insert("resource_id".to_owned(), json!(id));
    event.insert("version".to_owned(), json!(version));
    let event = Value::Object(event);
    tracing::info!(target: "audit", record = %event, "write");
}

/// What every event says: which event, of which request, by whom, from where, doing what.
fn header(event: &str, principal: &Principal, request: &AuthzRequest, info: &AuditInfo) -> Map<String, Value> {
    let header = json!({
        "event": event,
        "request_id": info.request_id,
        "principal": format!("{}::\"{}\"", principal.entity_type(), principal.subject),
        "issuer": principal.issuer,
        "tenant": principal.tenant,
        "client_id": principal.client_id,
        "client": info.client_addr,
        "action": request.action.as_str(),
        "route": request.context.route,
        "target": request.context.target,
    });
    match header {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
