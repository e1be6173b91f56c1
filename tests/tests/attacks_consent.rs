//! End-to-end attacks on patient consent (the shipped `consent` set on top of
//! `microsoft-roles`), on each store: a practitioner a patient's Consent denies tries to lift
//! or outvote the deny by writing Consents, to learn the hidden data through `_has:Consent`,
//! chains, counts, a resource that names two patients, a conditional update or a transaction.
//! Through a remote target the same attacks fail (counts are refused there outright).

use fhirgate_e2e::{Reply, Server, TestResult, backend, temp_dir};
use serde_json::{Value, json};

fn consent(id: &str, patient: &str, kind: &str, actor: &str) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit", "provision": [{"type": kind, "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
            "reference": {"reference": actor}}]}]}})
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": format!("Patient/{patient}")}})
}

/// A count's total; through a remote target a count for a client whose decisions depend on the
/// data is refused (403), which hides as well.
fn total(r: &Reply) -> TestResult<Value> {
    if backend() == "remote" {
        assert_eq!(r.status, 403, "{}", r.body);
        return Ok(Value::Null);
    }
    Ok(r.json()?["total"].clone())
}

/// What `total` gives for `expected`.
fn counted(expected: u64) -> Value {
    if backend() == "remote" { Value::Null } else { json!(expected) }
}

#[test]
fn a_denied_practitioner_cannot_lift_outvote_or_probe_a_consent_deny() -> TestResult {
    let s = Server::start_with(&temp_dir("attacks-consent")?, &[("FHIRGATE_POLICY_SETS", "microsoft-roles,consent")])?;
    let manager = s.mint(&["--role", "globalAdmin", "--role", "consentManager", "--sub", "manager"])?;
    let as_manager = |method: &str, path: &str, body: &Value| {
        s.send_as(Some(&manager), method, path, Some(body.to_string().as_bytes()), &[])
    };
    for (path, body) in [
        ("Patient/p1", json!({"resourceType": "Patient", "id": "p1"})),
        ("Patient/p2", json!({"resourceType": "Patient", "id": "p2"})),
        ("Observation/o1", observation("o1", "p1")),
        ("Observation/o2", observation("o2", "p2")),
        // About p2, performed by p1: in both patients' compartments.
        (
            "Observation/o3",
            json!({"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p1"}]}),
        ),
        ("Consent/c1", consent("c1", "p1", "deny", "Practitioner/dr-x")),
    ] {
        let r = as_manager("PUT", path, &body)?;
        assert!(r.status == 200 || r.status == 201, "{path}: {} {}", r.status, r.body);
    }
    let attacker = s.mint(&["--role", "globalWriter", "--sub", "dr-x", "--fhir-user", "Practitioner/dr-x"])?;
    let send = |method: &str, path: &str, body: Option<&Value>| {
        let text = body.map(Value::to_string);
        s.send_as(Some(&attacker), method, path, text.as_deref().map(str::as_bytes), &[])
    };
    let hidden = || -> TestResult {
        let r = send("GET", "Observation/o1", None)?;
        assert_eq!(r.status, 404, "o1 must stay hidden: {}", r.body);
        Ok(())
    };

    // Lift the deny: revoke, replace or delete the Consent, or write one of its own.
    let mut revoked = consent("c1", "p1", "deny", "Practitioner/dr-x");
    revoked["status"] = json!("inactive");
    assert_eq!(send("PUT", "Consent/c1", Some(&revoked))?.status, 403, "revoke");
    let patch = br#"[{"op": "replace", "path": "/status", "value": "inactive"}]"#;
    let r = s.send_as(
        Some(&attacker),
        "PATCH",
        "Consent/c1",
        Some(patch),
        &[("Content-Type", "application/json-patch+json")],
    )?;
    assert_eq!(r.status, 403, "patch: {}", r.body);
    assert_eq!(send("DELETE", "Consent/c1", None)?.status, 403, "delete");
    assert_eq!(send("POST", "Consent", Some(&consent("mine", "p1", "permit", "Practitioner/dr-x")))?.status, 403);
    hidden()?;
    // Outvote it: a permit naming the attacker, written by a manager, does not beat a deny.
    let r = as_manager("PUT", "Consent/c9", &consent("c9", "p1", "permit", "Practitioner/dr-x"))?;
    assert_eq!(r.status, 201, "{}", r.body);
    hidden()?;

    // Probe: traversals through Consent or Patient are refused whatever the data; counts count
    // nothing hidden.
    let r = send("GET", "Patient?_has:Consent:patient:status=active", None)?;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send("GET", "Observation?subject:Patient.identifier=x", None)?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(total(&send("GET", "Consent?patient=Patient/p1&_summary=count", None)?)?, counted(0));
    assert_eq!(total(&send("GET", "Observation?_summary=count", None)?)?, counted(1), "o2 only");
    assert_eq!(total(&send("GET", "Observation?performer=Patient/p1&_summary=count", None)?)?, counted(0));
    let listed = send("GET", "Observation?performer=Patient/p1", None)?.json()?;
    assert!(listed.get("entry").is_none(), "{listed}");
    assert_eq!(send("GET", "Observation/o3", None)?.status, 404, "a resource of two patients: p1's deny hides it");
    // The Consent that denies the attacker is hidden like the rest of p1's data.
    for url in ["Patient?_revinclude=Consent:patient", "Consent?_id=c1", "Consent"] {
        let found = send("GET", url, None)?.json()?;
        let listed = found["entry"].as_array().into_iter().flatten();
        let names: Vec<&Value> = listed.map(|e| &e["resource"]["id"]).collect();
        assert!(!names.iter().any(|id| *id == "c1" || *id == "p1"), "{url}: {found}");
    }

    // Writes through conditions and bundles.
    let r = send("PUT", "Observation?subject=Patient/p1", Some(&observation("o1", "p1")))?;
    assert_eq!(r.status, 403, "a conditional update cannot see or recreate p1's data: {}", r.body);
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": observation("o1", "p1"), "request": {"method": "PUT", "url": "Observation/o1"}}]});
    assert_eq!(send("POST", "", Some(&transaction))?.status, 403, "transaction");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Consent/c1"}},
        {"request": {"method": "GET", "url": "Observation?_summary=count"}}]});
    let answer = send("POST", "", Some(&batch))?.json()?;
    assert!(answer["entry"][0]["response"]["status"].as_str().is_some_and(|s| s.starts_with("404")), "{answer}");
    if backend() != "remote" {
        assert_eq!(answer["entry"][1]["resource"]["total"], 1, "{answer}");
    }
    let admin_view = s.send_as(Some(&manager), "GET", "Observation/o1", None, &[])?.json()?;
    assert_eq!(admin_view["meta"]["versionId"], "1", "o1 unchanged: {admin_view}");
    hidden()
}
