//! End-to-end attacks through FHIR XML: the XML path is the JSON path. Under the example
//! tenant forbids (`microsoft-roles` + `tenant-isolation`), a `globalWriter` of tenant `tA` sends
//! its reads, searches, counts, updates, patches, conditional creates and transaction Bundles in
//! XML against a Patient of tenant `tB`; each answer must be the answer the same request gets in
//! JSON (status, and body once read back from XML), name nothing of the hidden patient, and
//! change nothing of it.

use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use fhirgate_engine::{json_to_xml, xml_to_json};
use serde_json::{Value, json};

const XML: &str = "application/fhir+xml";
const JSON: &str = "application/fhir+json";

fn server() -> TestResult<Server> {
    let dir = temp_dir("attacks-xml")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    std::fs::copy(shipped.join("tenant-isolation.cedar"), policies.join("tenant-isolation.cedar"))?;
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

/// What a client can compare of an answer: status, and the body as JSON with what differs
/// between any two answers (ids the server made, times) left out.
fn seen(reply: &Reply) -> TestResult<(u16, Value)> {
    let body = if reply.body.trim().is_empty() {
        Value::Null
    } else if reply.header("Content-Type").is_some_and(|t| t.starts_with(XML)) {
        xml_to_json(reply.body.as_bytes()).map_err(|e| format!("not FHIR XML ({e}): {}", reply.body))?
    } else {
        reply.json()?
    };
    Ok((reply.status, comparable(body)))
}

fn comparable(mut value: Value) -> Value {
    match &mut value {
        Value::Object(o) => {
            for volatile in ["id", "meta", "lastUpdated", "timestamp", "fullUrl", "location", "etag", "url"] {
                o.remove(volatile);
            }
            for v in o.values_mut() {
                *v = comparable(std::mem::take(v));
            }
            // An empty array (the engine's `entry: []`) has no XML form.
            o.retain(|_, v| v.as_array().is_none_or(|a| !a.is_empty()));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| *v = comparable(std::mem::take(v))),
        _ => {}
    }
    value
}

/// Sends `body` (JSON) as JSON and as XML, asking each answer in its own format; both must be
/// the same to the client and neither may name the hidden patient.
fn same_both_ways(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> TestResult<(u16, Value)> {
    let mut answers = Vec::new();
    for format in [JSON, XML] {
        let bytes = match (body, format) {
            (None, _) => None,
            (Some(b), XML) => Some(json_to_xml(b, false).map_err(|e| e.to_string())?),
            (Some(b), _) => Some(serde_json::to_vec(b)?),
        };
        let mut headers = vec![("Accept", format), ("Content-Type", format)];
        headers.extend_from_slice(extra);
        let reply = s.send_as(Some(token), method, path, bytes.as_deref(), &headers)?;
        // `Hiddenzq` is only in the hidden patient's name (a search for `Hidden` would match it;
        // `zq` alone turned up in a history link's random `_snapshot` token).
        if reply.body.contains("Hiddenzq") {
            return Err(format!("{method} {path} in {format} names the hidden patient: {}", reply.body).into());
        }
        answers.push(seen(&reply)?);
    }
    if answers[0] != answers[1] {
        return Err(
            format!("{method} {path}: JSON and XML answers differ: {:?} vs {:?}", answers[0], answers[1]).into()
        );
    }
    Ok(answers.remove(0))
}

/// A searchset with no entry and no total above 0 (a remote target's filtered search has none).
fn nothing_found(bundle: &Value) -> bool {
    bundle["entry"].as_array().is_none_or(Vec::is_empty) && (bundle["total"] == 0 || bundle["total"].is_null())
}

#[test]
fn tenant_isolation_holds_in_xml_as_in_json() -> TestResult {
    let s = server()?;
    let seer = s.mint(&["--role", "globalAdmin", "--tenant", "tB"])?;
    let attacker = s.mint(&["--role", "globalWriter", "--tenant", "tA"])?;
    let hidden = json!({"resourceType": "Patient", "id": "hid-p2", "active": true,
        "meta": {"tag": [{"system": "urn:fhirgate:tenant", "code": "tB"}]},
        "name": [{"family": "Hiddenzq"}], "identifier": [{"system": "urn:x", "value": "hidden-1"}]});
    let r = s.send_as(Some(&seer), "PUT", "Patient/hid-p2", Some(hidden.to_string().as_bytes()), &[])?;
    assert!(matches!(r.status, 200 | 201), "seeding: {}", r.body);
    let before = s.send_as(Some(&seer), "GET", "Patient/hid-p2", None, &[])?.json()?;

    let (status, _) = same_both_ways(&s, &attacker, "GET", "Patient/hid-p2", None, &[])?;
    assert!(matches!(status, 403 | 404), "read: {status}");
    let (_, found) = same_both_ways(&s, &attacker, "GET", "Patient?family=Hidden", None, &[])?;
    assert!(nothing_found(&found), "search: {found}");
    let (_, counted) =
        same_both_ways(&s, &attacker, "GET", "Patient?identifier=urn:x|hidden-1&_summary=count", None, &[])?;
    assert!(nothing_found(&counted), "count: {counted}");
    let (_, history) = same_both_ways(&s, &attacker, "GET", "Patient/_history", None, &[])?;
    assert!(history["entry"].as_array().is_none_or(Vec::is_empty), "history: {history}");

    let changed = json!({"resourceType": "Patient", "id": "hid-p2", "active": false, "name": [{"family": "Changed"}]});
    let (status, _) = same_both_ways(&s, &attacker, "PUT", "Patient/hid-p2", Some(&changed), &[])?;
    assert!(matches!(status, 403 | 404 | 409), "update: {status}");
    let patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.active"},
        {"name": "value", "valueBoolean": false}]}]});
    let (status, _) = same_both_ways(&s, &attacker, "PATCH", "Patient/hid-p2", Some(&patch), &[])?;
    assert!(matches!(status, 403 | 404), "patch: {status}");
    let (status, _) = same_both_ways(&s, &attacker, "PATCH", "Patient?identifier=urn:x|hidden-1", Some(&patch), &[])?;
    assert!(matches!(status, 403 | 404 | 412), "conditional patch: {status}");

    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": changed, "request": {"method": "PUT", "url": "Patient/hid-p2"}}]});
    let (status, _) = same_both_ways(&s, &attacker, "POST", "", Some(&transaction), &[])?;
    assert!(status >= 400, "transaction: {status}");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/hid-p2"}},
        {"request": {"method": "GET", "url": "Patient?family=Hidden"}},
        {"request": {"method": "DELETE", "url": "Patient/hid-p2"}}]});
    let (status, reply) = same_both_ways(&s, &attacker, "POST", "", Some(&batch), &[])?;
    assert_eq!(status, 200, "batch: {reply}");

    let after = s.send_as(Some(&seer), "GET", "Patient/hid-p2", None, &[])?.json()?;
    assert_eq!(after, before, "the hidden patient is unchanged");
    assert_eq!(s.get("health")?.status, 200);
    Ok(())
}
