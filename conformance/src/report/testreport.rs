//! The R4 TestReport of one script run (<https://hl7.org/fhir/R4/testreport.html>).

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use crate::run::result::{ActionKind, ActionResult, ScriptResult, Status};

/// The TestReport resource of a script result.
pub fn test_report(result: &ScriptResult) -> Value {
    let mut report = Map::new();
    report.insert("resourceType".into(), json!("TestReport"));
    if let Some(id) = result.id.as_deref().filter(|id| is_id(id)) {
        report.insert("id".into(), json!(id));
    }
    report.insert("name".into(), json!(result.name));
    report.insert("status".into(), json!("completed"));
    let script = match &result.url {
        Some(url) => json!({"reference": url, "display": result.name}),
        None => json!({"display": result.path.display().to_string()}),
    };
    report.insert("testScript".into(), script);
    // R4 has no `skip` result for a whole report: a skipped script is `pending` (its tests are
    // still to be done), with the reason as a skipped setup operation.
    let outcome = match result.status() {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Skip => "pending",
    };
    report.insert("result".into(), json!(outcome));
    report.insert("score".into(), number(result.score() * 100.0));
    report.insert("tester".into(), json!("fhirgate-conformance"));
    if let Ok(issued) = result.started.replace_nanosecond(0).unwrap_or(result.started).format(&Rfc3339) {
        report.insert("issued".into(), json!(issued));
    }
    report.insert(
        "participant".into(),
        json!([{"type": "test-engine", "uri": "urn:fhirgate-conformance"}, {"type": "server", "uri": result.base_url}]),
    );
    let mut setup: Vec<Value> = result.setup.iter().map(action).collect();
    if let Some(reason) = &result.skipped {
        setup.push(json!({"operation": {"result": "skip", "message": format!("skipped: {reason}")}}));
    }
    if let Some(error) = &result.error {
        setup.push(json!({"operation": {"result": "error", "message": error}}));
    }
    if !setup.is_empty() {
        report.insert("setup".into(), json!({"action": setup}));
    }
    let tests: Vec<Value> = result
        .tests
        .iter()
        .filter(|t| !t.actions.is_empty())
        .map(|t| {
            let mut test = Map::new();
            test.insert("name".into(), json!(t.name));
            if !t.description.is_empty() {
                test.insert("description".into(), json!(t.description));
            }
            test.insert("action".into(), Value::Array(t.actions.iter().map(action).collect()));
            Value::Object(test)
        })
        .collect();
    if !tests.is_empty() {
        report.insert("test".into(), Value::Array(tests));
    }
    if !result.teardown.is_empty() {
        // Teardown actions are operations only.
        let actions: Vec<Value> = result.teardown.iter().map(|a| json!({"operation": detail(a)})).collect();
        report.insert("teardown".into(), json!({"action": actions}));
    }
    Value::Object(report)
}

/// One action: `{"operation": …}` or `{"assert": …}`.
fn action(result: &ActionResult) -> Value {
    match result.kind {
        ActionKind::Operation => json!({"operation": detail(result)}),
        ActionKind::Assert => json!({"assert": detail(result)}),
    }
}

fn detail(result: &ActionResult) -> Value {
    let mut detail = Map::new();
    detail.insert("result".into(), json!(result.outcome.code()));
    detail.insert("message".into(), json!(format!("{}: {}", result.label, result.message)));
    if let Some(exchange) = &result.exchange {
        if exchange.request.url.starts_with("http") {
            detail.insert("detail".into(), json!(exchange.request.url));
        }
    }
    Value::Object(detail)
}

/// A FHIR id: 1–64 of `[A-Za-z0-9\-.]`.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// A decimal with at most two places.
fn number(value: f64) -> Value {
    let rounded = (value * 100.0).round() / 100.0;
    serde_json::from_str(&format!("{rounded}")).unwrap_or(Value::Null)
}
