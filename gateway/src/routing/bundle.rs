//! Batches and transactions on a route with several targets. Each entry belongs to the target
//! whose id prefix its `request.url` carries, else to the route's `write_target`. A transaction
//! runs on one target: entries for two are refused (400, nothing sent anywhere). A batch is
//! split: each target gets a batch of its entries (in parallel), and the answers are put back
//! in the order of the client's entries.

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::interaction::{Request, Response};
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::dispatch::{Caller, call, failure, json_response, prefixed, write_target};
use super::{Route, RouteTarget, Routing};

pub(super) async fn answer(routing: &Routing, route: &Route, request: &Request, caller: &Caller<'_>) -> Response {
    let Ok(bundle) = serde_json::from_slice::<Value>(&request.body) else {
        // Not JSON: the write target's engine says what is wrong with it.
        return call(routing, route, write_target(route), request, caller).await;
    };
    let entries = bundle.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
    let owners: Vec<&RouteTarget> = entries.iter().map(|entry| owner(route, entry, &request.base_url)).collect();
    let mut targets: Vec<&RouteTarget> = Vec::new();
    for owner in &owners {
        if !targets.iter().any(|t| std::ptr::eq(*t, *owner)) {
            targets.push(owner);
        }
    }
    match targets.as_slice() {
        [] => return call(routing, route, write_target(route), request, caller).await,
        [one] => return call(routing, route, one, request, caller).await,
        _ => {}
    }
    if bundle.get("type").and_then(Value::as_str) != Some("batch") {
        let second = owners.iter().position(|o| !std::ptr::eq(*o, owners[0])).unwrap_or(0);
        return failure(FhirError::bad_request(format!(
            "entries 1 and {} of this transaction belong to different servers behind this route; a transaction \
             runs on one server: nothing was written, send one transaction per server",
            second + 1
        )));
    }
    let parts: Vec<(&RouteTarget, Vec<usize>)> = targets
        .iter()
        .map(|t| (*t, owners.iter().enumerate().filter(|(_, o)| std::ptr::eq(**o, *t)).map(|(i, _)| i).collect()))
        .collect();
    let sent: Vec<Request> = parts
        .iter()
        .map(|(_, indexes)| {
            let batch = json!({
                "resourceType": "Bundle",
                "type": "batch",
                "entry": indexes.iter().map(|i| entries[*i].clone()).collect::<Vec<_>>(),
            });
            Request { body: batch.to_string().into_bytes(), ..request.clone() }
        })
        .collect();
    let answers = join_all(parts.iter().zip(&sent).map(|((t, _), r)| call(routing, route, t, r, caller))).await;
    let mut out = vec![Value::Null; entries.len()];
    for ((_, indexes), answer) in parts.iter().zip(answers) {
        let answered: Vec<Value> = if answer.status == 200 {
            serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|b| b.get("entry").and_then(Value::as_array).cloned())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let whole_failure = answered.len() != indexes.len();
        let outcome = serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null);
        for (n, index) in indexes.iter().enumerate() {
            out[*index] = if whole_failure {
                let status = if answer.status == 200 { 502 } else { answer.status };
                json!({ "response": { "status": status.to_string(), "outcome": outcome } })
            } else {
                answered[n].clone()
            };
        }
    }
    let reply = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "batch-response",
        "entry": out,
    });
    json_response(200, &reply, request)
}

/// The target an entry belongs to: its `request.url`'s prefixed id, else the write target.
/// An absolute URL is read below the route's `base`.
fn owner<'r>(route: &'r Route, entry: &Value, base: &str) -> &'r RouteTarget {
    let url = entry.pointer("/request/url").and_then(Value::as_str).unwrap_or_default();
    let url = url.strip_prefix(base).unwrap_or(url);
    let path = url.split('?').next().unwrap_or_default();
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let id = segments.nth(1).filter(|s| !s.starts_with(['_', '$']));
    id.and_then(|id| prefixed(route, id)).unwrap_or_else(|| write_target(route))
}
