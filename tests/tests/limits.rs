//! End-to-end: hostile requests on every unbounded path end in a 4xx OperationOutcome and the
//! server keeps serving (`GET /health` answers 200 after each): a 3,000-level search chain sent
//! as a query, a `_search` form, `If-None-Exist`, a conditional URL, and inside transaction and
//! batch Bundles; nested `_has`; a body nested 100,000 levels deep (create, Bundle, PATCH);
//! a form body with too many parameters; and a FHIRPath Patch whose path costs the square of a
//! Patient with 3,000 names.

use fhirgate_e2e::{Reply, Server, TestResult};
use serde_json::{Value, json};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The 3,000-level chain of the issue, as a query parameter (not yet percent-encoded: it holds
/// only characters a query may carry).
fn deep_chain() -> String {
    format!("subject:Patient.organization{}.name=x", ".partof".repeat(3_000))
}

/// Fails unless `reply` is a 4xx with an OperationOutcome, then checks the server still answers.
fn refused(s: &Server, what: &str, reply: &Reply) -> TestResult {
    if !(400..500).contains(&reply.status) {
        return Err(format!("{what}: expected a 4xx, got {} {}", reply.status, truncate(&reply.body)).into());
    }
    let issues = reply.outcome_issues().map_err(|e| format!("{what}: {e}"))?;
    if issues.is_empty() {
        return Err(format!("{what}: an OperationOutcome without issues").into());
    }
    healthy(s, what)
}

fn healthy(s: &Server, what: &str) -> TestResult {
    let health = s.get("health")?;
    if health.status != 200 {
        return Err(format!("after {what}: /health answered {}", health.status).into());
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The diagnostics of an OperationOutcome reply, joined.
fn diagnostics(reply: &Reply) -> String {
    let issues = reply.outcome_issues().unwrap_or_default();
    issues.iter().filter_map(|i| i["diagnostics"].as_str()).collect::<Vec<_>>().join("; ")
}

#[test]
fn deep_chains_are_400_wherever_a_search_is_parsed() -> TestResult {
    let s = Server::start("limits-chains")?;
    let chain = deep_chain();

    let reply = s.get(&format!("Observation?{chain}"))?;
    refused(&s, "GET with a 3,000-level chain", &reply)?;
    if reply.status != 400 || !diagnostics(&reply).contains("max_chain_depth") {
        return Err(format!("the GET should name the limit: {} {}", reply.status, truncate(&reply.body)).into());
    }

    let reply = s.send("POST", "Observation/_search", Some(chain.as_bytes()), &[FORM])?;
    refused(&s, "POST _search with the chain as a form", &reply)?;

    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let body = observation.to_string();
    let reply = s.send("POST", "Observation", Some(body.as_bytes()), &[("If-None-Exist", &chain)])?;
    refused(&s, "If-None-Exist with the chain", &reply)?;

    for method in ["PUT", "DELETE", "PATCH"] {
        let (body, headers): (Option<&[u8]>, Vec<(&str, &str)>) = match method {
            "PUT" => (Some(body.as_bytes()), vec![]),
            "PATCH" => (Some(b"[]"), vec![("Content-Type", "application/json-patch+json")]),
            _ => (None, vec![]),
        };
        let reply = s.send(method, &format!("Observation?{chain}"), body, &headers)?;
        refused(&s, &format!("conditional {method} with the chain"), &reply)?;
    }

    let nested_has = format!("{}name=x", "_has:Patient:organization:".repeat(2_000));
    let reply = s.get(&format!("Organization?{nested_has}"))?;
    refused(&s, "2,000 nested _has", &reply)?;

    // Inside Bundles: a search entry, a conditional create and a conditional reference.
    let entries = json!([
        {"request": {"method": "GET", "url": format!("Observation?{chain}")}},
        {"fullUrl": "urn:uuid:6f1a3e2c-0000-4000-8000-000000000001",
         "resource": observation,
         "request": {"method": "POST", "url": "Observation", "ifNoneExist": chain}},
    ]);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    let reply = s.send("POST", "", Some(batch.to_string().as_bytes()), &[])?;
    healthy(&s, "a batch with the chain")?;
    if reply.status != 200 {
        return Err(format!("a batch answers 200 with an outcome per entry, got {}", reply.status).into());
    }
    let answered = reply.json()?;
    for (i, entry) in answered["entry"].as_array().ok_or("no entries")?.iter().enumerate() {
        let status = entry["response"]["status"].as_str().unwrap_or_default();
        let outcome = &entry["response"]["outcome"];
        if !status.starts_with('4') || outcome["resourceType"] != "OperationOutcome" {
            return Err(format!("batch entry {i}: expected a 4xx with an outcome, got {entry}").into());
        }
    }

    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let reply = s.send("POST", "", Some(transaction.to_string().as_bytes()), &[])?;
    refused(&s, "a transaction with the chain", &reply)?;
    let reference = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": format!("Patient?{}", chain.replace("subject:Patient.", ""))}},
        "request": {"method": "POST", "url": "Observation"}}]});
    let reply = s.send("POST", "", Some(reference.to_string().as_bytes()), &[])?;
    refused(&s, "a transaction with the chain in a conditional reference", &reply)?;

    // Within the limit, a chain still works.
    let reply = s.get("Observation?subject:Patient.organization.name=x")?;
    if reply.status != 200 {
        return Err(format!("a 2-level chain: {} {}", reply.status, truncate(&reply.body)).into());
    }
    Ok(())
}

#[test]
fn huge_forms_and_deep_bodies_are_refused() -> TestResult {
    let s = Server::start("limits-bodies")?;

    // 200,000 parameters in a 2.5 MB form body.
    let form: String = (0..200_000).map(|i| format!("name=n{i}&")).collect();
    let reply = s.send("POST", "Patient/_search", Some(form.as_bytes()), &[FORM])?;
    refused(&s, "a form with 200,000 parameters", &reply)?;
    let long = format!("_id={}", "a,".repeat(500_000));
    let reply = s.send("POST", "Patient/_search", Some(long.as_bytes()), &[FORM])?;
    refused(&s, "a 1 MB form parameter", &reply)?;
    let query: String = (0..150).map(|i| format!("name=n{i}&")).collect();
    refused(&s, "a query with 150 parameters", &s.get(&format!("Patient?{query}"))?)?;

    // JSON nested 100,000 levels.
    let depth = 100_000;
    let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let patient = format!("{{\"resourceType\":\"Patient\",\"extension\":{deep}}}");
    refused(&s, "a create nested 100,000 deep", &s.send("POST", "Patient", Some(patient.as_bytes()), &[])?)?;
    let bundle = format!("{{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":{deep}}}");
    refused(&s, "a Bundle nested 100,000 deep", &s.send("POST", "", Some(bundle.as_bytes()), &[])?)?;

    let created = s.post("Patient", &json!({"resourceType": "Patient", "active": true}))?.json()?;
    let id = created["id"].as_str().ok_or("no id")?;
    let path = format!("Patient/{id}");
    let json_patch = format!("[{{\"op\":\"add\",\"path\":\"/x\",\"value\":{deep}}}]");
    let headers = [("Content-Type", "application/json-patch+json")];
    refused(&s, "a JSON Patch nested 100,000 deep", &s.send("PATCH", &path, Some(json_patch.as_bytes()), &headers)?)?;
    let parameters = format!("{{\"resourceType\":\"Parameters\",\"parameter\":{deep}}}");
    refused(&s, "a FHIRPath Patch nested 100,000 deep", &s.send("PATCH", &path, Some(parameters.as_bytes()), &[])?)?;

    // Patches that would nest the resource deeper than it can be read back, or double it.
    let mut value = json!(1);
    for _ in 0..100 {
        value = json!([value]);
    }
    let ops = json!([{"op": "add", "path": "/x", "value": value},
                     {"op": "add", "path": format!("/x{}", "/0".repeat(99)), "value": value}]);
    let reply = s.send("PATCH", &path, Some(ops.to_string().as_bytes()), &headers)?;
    refused(&s, "a JSON Patch nesting the resource 200 deep", &reply)?;
    let mut doubling = vec![json!({"op": "add", "path": "/extension", "value": [{"url": "u", "valueString": "x"}]})];
    for _ in 0..40 {
        doubling.push(json!({"op": "copy", "from": "/extension", "path": "/extension/-"}));
    }
    let reply = s.send("PATCH", &path, Some(Value::Array(doubling).to_string().as_bytes()), &headers)?;
    refused(&s, "a JSON Patch doubling the resource 40 times", &reply)?;
    Ok(())
}

#[test]
fn a_costly_fhirpath_patch_ends_with_a_4xx() -> TestResult {
    let s = Server::start("limits-fhirpath")?;
    let names: Vec<Value> = (0..3_000).map(|i| json!({"family": format!("F{i}"), "given": ["A", "B"]})).collect();
    let created = s.post("Patient", &json!({"resourceType": "Patient", "name": names}))?;
    if created.status != 201 {
        return Err(format!("create: {} {}", created.status, truncate(&created.body)).into());
    }
    let id = created.json()?["id"].as_str().ok_or("no id")?.to_owned();
    let patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "delete"},
        {"name": "path", "valueString": "Patient.name.where(%resource.descendants().count() < 0).family"}
    ]}]});
    let reply = s.send("PATCH", &format!("Patient/{id}"), Some(patch.to_string().as_bytes()), &[])?;
    refused(&s, "the quadratic FHIRPath Patch", &reply)?;
    if !diagnostics(&reply).contains("budget") {
        return Err(format!("the outcome should name the budget: {}", truncate(&reply.body)).into());
    }
    // The same inside a transaction.
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": patch, "request": {"method": "PATCH", "url": format!("Patient/{id}")}}]});
    let reply = s.send("POST", "", Some(transaction.to_string().as_bytes()), &[])?;
    refused(&s, "the quadratic FHIRPath Patch in a transaction", &reply)?;
    // The resource is unchanged.
    let read = s.get(&format!("Patient/{id}"))?.json()?;
    if read["name"].as_array().map(Vec::len) != Some(3_000) || read["meta"]["versionId"] != "1" {
        return Err("the patched Patient changed".into());
    }
    Ok(())
}
