//! The probes, answered without a token:
//!
//! - `GET /health/live` (liveness): 200 while the process serves requests. It checks nothing
//!   else, so a store outage never gets the process restarted.
//! - `GET /health/ready` (readiness): 200 only when every local store answers its health check
//!   and a policy set is in force (authentication on); 503 otherwise, with what is missing, and
//!   again 200 once it is back. A remote target that is down does not make the server unready:
//!   its routes answer 503 while the others serve.
//! - `GET /health`: as before the two existed (200 while the stores answer, else 503 with an
//!   OperationOutcome), for existing probes and monitors.

use fhirgate_engine::MediaType;
use fhirgate_engine::interaction::Response;
use serde_json::json;

use crate::policy::Policies;
use crate::routing::Routing;

/// `GET /health/live`.
pub fn live() -> Response {
    Response::rendered(200, "application/json", br#"{"status":"live"}"#.to_vec())
}

/// `GET /health/ready`. `policies`: `None` when authentication is off.
pub async fn ready(routing: &Routing, policies: Option<&Policies>) -> Response {
    let store = routing.health().await.is_ok();
    let policies = policies.is_none_or(Policies::loaded);
    let ready = store && policies;
    let body = json!({
        "status": if ready { "ready" } else { "unready" },
        "store": if store { "ok" } else { "unavailable" },
        "policies": if policies { "loaded" } else { "not loaded" },
    });
    Response::rendered(if ready { 200 } else { 503 }, "application/json", body.to_string().into_bytes())
}

/// `GET /health`.
pub async fn health(routing: &Routing) -> Response {
    match routing.health().await {
        Ok(()) => Response::rendered(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
        Err(e) => Response::error(&e, MediaType::FhirJson, false),
    }
}
