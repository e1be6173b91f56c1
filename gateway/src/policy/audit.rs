//! One JSON audit event per authorization decision, on tracing target `audit` (a layer of its
//! own that the log level cannot silence: [`crate::logging`]).

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

/// Emits the event. Break-glass access is logged at warn level so it stands out.
pub fn record(principal: &Principal, request: &AuthzRequest, phase: &str, decision: &Decision, info: &AuditInfo) {
    let event = serde_json::json!({
        "event": "authorization",
        "request_id": info.request_id,
        "principal": format!("{}::\"{}\"", principal.entity_type(), principal.subject),
        "issuer": principal.issuer,
        "tenant": principal.tenant,
        "client_id": principal.client_id,
        "client": info.client_addr,
        "action": request.action.as_str(),
        "resource_type": request.target.resource_type,
        "resource_id": request.target.id,
        "query": info.query,
        "if_none_exist": info.if_none_exist,
        "phase": phase,
        "decision": decision.as_str(),
        "policies": decision.policies,
        "errors": decision.errors,
        "covers_data": decision.covers_data,
        "break_glass": info.break_glass,
    });
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
    let event = serde_json::json!({
        "event": "write",
        "request_id": info.request_id,
        "principal": format!("{}::\"{}\"", principal.entity_type(), principal.subject),
        "issuer": principal.issuer,
        "tenant": principal.tenant,
        "action": request.action.as_str(),
        "resource_type": resource_type,
        "resource_id": id,
        "version": version,
    });
    tracing::info!(target: "audit", record = %event, "write");
}
