//! A route's CapabilityStatement: the union of its targets' (a local target's from its engine, a
//! remote's from its `/metadata`, kept for the target's `capabilities_ttl_seconds` and then
//! fetched again; while a remote cannot give a new one, its last one is served), limited to the
//! route's `types`, with the route's base as `implementation.url`. Each target's statement is
//! asked under that target's decisions (`capabilities` for `context.target`), also when it
//! comes from the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::access::{Grant, Interaction, Target as Asked};
use fhirgate_engine::interaction::{Method, Request, Response};
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::dispatch::{Caller, call, failure, json_response};
use super::{Route, RouteTarget, Routing};

/// Remote targets' CapabilityStatements, by target id, with when they were fetched.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<String, (Value, Instant)>>);

impl Cache {
    /// The statement of `target` and whether it is younger than `ttl`.
    fn get(&self, target: &str, ttl: Duration) -> Option<(Value, bool)> {
        let map = self.0.lock().ok()?;
        map.get(target).map(|(statement, fetched)| (statement.clone(), fetched.elapsed() < ttl))
    }

    fn put(&self, target: &str, statement: &Value) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(target.to_owned(), (statement.clone(), Instant::now()));
        }
    }
}

pub(super) async fn answer(routing: &Routing, route: &Route, request: &Request, caller: &Caller<'_>) -> Response {
    let asked = Request {
        method: Method::Get,
        path: "metadata".into(),
        query: Vec::new(),
        headers: request.headers.clone(),
        body: Vec::new(),
        base_url: request.base_url.clone(),
    };
    let statements =
        join_all(route.targets.iter().map(|target| statement(routing, route, target, &asked, caller))).await;
    let mut found = Vec::new();
    let mut first_failure = None;
    for statement in statements {
        match statement {
            Ok(s) => found.push(s),
            Err(r) => {
                first_failure.get_or_insert(r);
            }
        }
    }
    let Some(mut merged) = found.first().cloned() else {
        return first_failure.unwrap_or_else(|| failure(FhirError::NotFound("no CapabilityStatement".into())));
    };
    let mut resources: Vec<Value> = Vec::new();
    for s in &found {
        let listed = s.pointer("/rest/0/resource").and_then(Value::as_array).cloned().unwrap_or_default();
        for resource in listed {
            let Some(t) = resource.get("type").and_then(Value::as_str) else { continue };
            let allowed = route.config.types.is_empty() || route.config.types.iter().any(|x| x == t);
            let known = resources.iter().any(|r| r.get("type").and_then(Value::as_str) == Some(t));
            if allowed && !known {
                resources.push(resource);
            }
        }
    }
    if let Some(rest) = merged.pointer_mut("/rest/0").and_then(Value::as_object_mut) {
        // Clients authenticate with this server, not with the targets: its `security`, before `resource`.
        let mut ordered = serde_json::Map::new();
        for (key, value) in std::mem::take(rest) {
            if key == "security" || key == "resource" {
                continue;
            }
            if key == "interaction" {
                put_security_and_resources(&mut ordered, routing.security.as_ref(), &resources);
            }
            ordered.insert(key, value);
        }
        if !ordered.contains_key("resource") {
            put_security_and_resources(&mut ordered, routing.security.as_ref(), &resources);
        }
        *rest = ordered;
    }
    merged["implementation"] = json!({
        "description": format!("fhirgate route `{}`", route.config.id),
        "url": request.base_url,
    });
    json_response(200, &merged, request)
}

/// Puts `security` (when the server has one) and `resource` into a `rest` being rebuilt in order.
fn put_security_and_resources(
    rest: &mut serde_json::Map<String, Value>,
    security: Option<&Value>,
    resources: &[Value],
) {
    if let Some(security) = security {
        rest.insert("security".into(), security.clone());
    }
    rest.insert("resource".into(), Value::Array(resources.to_vec()));
}

/// One target's statement, or its failure.
async fn statement(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    asked: &Request,
    caller: &Caller<'_>,
) -> Result<Value, Response> {
    let remote = !target.target.is_local();
    let mut stale = None;
    if remote {
        let access = caller.access(&route.config.id, &target.target.id);
        if let Grant::Denied(why) = access.decide(&Asked::new(Interaction::Capabilities, "", "")) {
            return Err(failure(FhirError::Forbidden(why)));
        }
        match routing.capabilities.get(&target.target.id, target.target.capabilities_ttl) {
            Some((cached, true)) => return Ok(cached),
            Some((cached, false)) => stale = Some(cached),
            None => {}
        }
    }
    let fetched = fetch(routing, route, target, asked, caller).await;
    match (fetched, stale) {
        (Ok(value), _) => {
            if remote {
                routing.capabilities.put(&target.target.id, &value);
            }
            Ok(value)
        }
        (Err(answer), Some(stale)) => {
            tracing::warn!(
                target_id = %target.target.id,
                status = answer.status,
                "a remote target's CapabilityStatement could not be fetched again; the last one is served"
            );
            Ok(stale)
        }
        (Err(answer), None) => Err(answer),
    }
}

/// The target's statement as it answers now.
async fn fetch(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    asked: &Request,
    caller: &Caller<'_>,
) -> Result<Value, Response> {
    let answer = call(routing, route, target, asked, caller).await;
    if answer.status != 200 {
        return Err(answer);
    }
    let value: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| failure(FhirError::BadGateway(format!("a CapabilityStatement that is no JSON: {e}"))))?;
    if value.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
        return Err(failure(FhirError::BadGateway("a target's `metadata` is no CapabilityStatement".into())));
    }
    let mut value = value;
    if !target.target.is_local() {
        without_export(&mut value);
    }
    Ok(value)
}

/// A remote's statement without `$export` and `$import`: bulk jobs run on this server's own
/// stores only (the remote path refuses them).
fn without_export(statement: &mut Value) {
    let drop_export = |holder: &mut Value| {
        if let Some(operations) = holder.get_mut("operation").and_then(Value::as_array_mut) {
            operations.retain(|o| !matches!(o.get("name").and_then(Value::as_str), Some("export" | "import")));
        }
    };
    for rest in statement.get_mut("rest").and_then(Value::as_array_mut).into_iter().flatten() {
        drop_export(rest);
        for resource in rest.get_mut("resource").and_then(Value::as_array_mut).into_iter().flatten() {
            drop_export(resource);
        }
    }
}
