//! End-to-end: PATCH with JSON Patch and FHIRPath Patch (http.html#patch, fhirpatch.html):
//! `If-Match`, validation of the result (422, nothing stored), conditional patch, and PATCH
//! entries of a transaction.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use fhirgate_e2e::{Reply, Server, TestResult};
use serde_json::{Value, json};

const JSON_PATCH: (&str, &str) = ("Content-Type", "application/json-patch+json");
const FHIR_JSON: (&str, &str) = ("Content-Type", "application/fhir+json");

fn patch(s: &Server, path: &str, body: &Value, headers: &[(&str, &str)]) -> TestResult<Reply> {
    s.send("PATCH", path, Some(body.to_string().as_bytes()), headers)
}

fn create(s: &Server, mrn: &str) -> TestResult<String> {
    let body = json!({ "resourceType": "Patient", "identifier": [{ "system": "urn:mrn", "value": mrn }],
                       "name": [{ "family": "Before", "given": ["Pat"] }] });
    let created = s.post("Patient", &body)?.json()?;
    Ok(created["id"].as_str().ok_or("no id")?.to_owned())
}

fn fhirpath_patch(kind: &str, path: &str, name: Option<&str>, value: Option<(&str, Value)>) -> Value {
    let mut parts = vec![json!({ "name": "type", "valueCode": kind }), json!({ "name": "path", "valueString": path })];
    if let Some(name) = name {
        parts.push(json!({ "name": "name", "valueString": name }));
    }
    if let Some((key, v)) = value {
        let mut part = json!({ "name": "value" });
        part[key] = v;
        parts.push(part);
    }
    json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": parts }] })
}

#[test]
fn json_patch_and_fhirpath_patch() -> TestResult {
    let s = Server::start("patch")?;
    let id = create(&s, "1")?;
    let path = format!("Patient/{id}");
    let ops = json!([{ "op": "replace", "path": "/name/0/family", "value": "After" }, { "op": "add", "path": "/active", "value": true }]);
    let r = patch(&s, &path, &ops, &[JSON_PATCH])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let patched = r.json()?;
    assert_eq!(patched["name"][0]["family"], "After");
    assert_eq!(patched["active"], true);
    assert_eq!(patched["meta"]["versionId"], "2");
    assert_eq!(r.header("ETag"), Some("W/\"2\""));

    let add = fhirpath_patch("add", "Patient", Some("birthDate"), Some(("valueDate", json!("1990-02-03"))));
    let r = patch(&s, &path, &add, &[FHIR_JSON])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let read = s.get(&path)?.json()?;
    assert_eq!(read["birthDate"], "1990-02-03");
    assert_eq!(read["meta"]["versionId"], "3");
    assert_eq!(s.get("Patient?birthdate=1990-02-03&_summary=count")?.json()?["total"], 1, "reindexed");
    Ok(())
}

#[test]
fn patch_preconditions_and_bad_results() -> TestResult {
    let s = Server::start("patch-errors")?;
    let id = create(&s, "2")?;
    let path = format!("Patient/{id}");
    let ops = json!([{ "op": "replace", "path": "/name/0/family", "value": "X" }]);
    assert_eq!(patch(&s, &path, &ops, &[JSON_PATCH, ("If-Match", "W/\"9\"")])?.status, 412);
    assert_eq!(patch(&s, &path, &ops, &[JSON_PATCH, ("If-Match", "W/\"1\"")])?.status, 200);
    let version = |s: &Server| -> TestResult<Value> { Ok(s.get(&path)?.json()?["meta"]["versionId"].clone()) };
    assert_eq!(version(&s)?, "2");

    let cases: Vec<(Value, (&str, &str), u16)> = vec![
        (json!([{ "op": "add", "path": "/birthDate", "value": "yesterday" }]), JSON_PATCH, 422),
        (json!([{ "op": "replace", "path": "/id", "value": "other" }]), JSON_PATCH, 422),
        (json!([{ "op": "test", "path": "/name/0/family", "value": "nope" }]), JSON_PATCH, 422),
        (json!([{ "op": "remove", "path": "/nothing/here" }]), JSON_PATCH, 422),
        (json!({ "op": "not a list" }), JSON_PATCH, 400),
        (fhirpath_patch("replace", "Patient.gender", None, Some(("valueCode", json!("male")))), FHIR_JSON, 422),
        (json!({ "resourceType": "Patient" }), FHIR_JSON, 400),
        (ops.clone(), ("Content-Type", "text/plain"), 415),
    ];
    for (body, content_type, status) in cases {
        let r = patch(&s, &path, &body, &[content_type])?;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(!r.outcome_issues()?.is_empty());
    }
    assert_eq!(version(&s)?, "2", "no failed patch stored anything");
    assert_eq!(patch(&s, "Patient/missing", &ops, &[JSON_PATCH])?.status, 404);
    Ok(())
}

#[test]
fn conditional_patch() -> TestResult {
    let s = Server::start("patch-conditional")?;
    let id = create(&s, "c1")?;
    create(&s, "twin")?;
    create(&s, "twin")?;
    let ops = json!([{ "op": "add", "path": "/active", "value": false }]);
    let r = patch(&s, "Patient?identifier=urn:mrn|c1", &ops, &[JSON_PATCH])?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get(&format!("Patient/{id}"))?.json()?["active"], false);
    assert_eq!(patch(&s, "Patient?identifier=urn:mrn|nobody", &ops, &[JSON_PATCH])?.status, 404);
    assert_eq!(patch(&s, "Patient?identifier=urn:mrn|twin", &ops, &[JSON_PATCH])?.status, 412);
    Ok(())
}

#[test]
fn patch_entries_in_a_transaction() -> TestResult {
    let s = Server::start("patch-transaction")?;
    let a = create(&s, "ta")?;
    let b = create(&s, "tb")?;
    let json_patch = json!([{ "op": "replace", "path": "/name/0/family", "value": "Binary" }]);
    let binary = json!({ "resourceType": "Binary", "contentType": "application/json-patch+json",
                         "data": BASE64_STANDARD.encode(json_patch.to_string()) });
    let parameters = fhirpath_patch("replace", "Patient.name.family", None, Some(("valueString", json!("Parameters"))));
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": binary, "request": { "method": "PATCH", "url": format!("Patient/{a}") } },
        { "resource": parameters, "request": { "method": "PATCH", "url": format!("Patient/{b}") } },
    ]});
    let r = s.post("", &bundle)?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get(&format!("Patient/{a}"))?.json()?["name"][0]["family"], "Binary");
    assert_eq!(s.get(&format!("Patient/{b}"))?.json()?["name"][0]["family"], "Parameters");
    // A transaction whose patch cannot apply stores nothing.
    let bad = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": { "resourceType": "Patient", "id": a, "active": true }, "request": { "method": "PUT", "url": format!("Patient/{a}") } },
        { "resource": fhirpath_patch("replace", "Patient.gender", None, Some(("valueCode", json!("male")))),
          "request": { "method": "PATCH", "url": format!("Patient/{b}") } },
    ]});
    let r = s.post("", &bad)?;
    assert_eq!(r.status, 422, "replacing an element that is not there: {}", r.body);
    assert!(r.outcome_issues()?[0]["diagnostics"].as_str().unwrap_or("").contains("Bundle.entry[1]"));
    assert!(s.get(&format!("Patient/{a}"))?.json()?.get("active").is_none(), "the PUT was rolled back");
    Ok(())
}
