//! End-to-end attacks on `$validate`: it is decided as a read of the type, and the instance it
//! may name (`GET [type]/[id]/$validate`, `mode=delete`) as a read of that instance. A SMART
//! patient token validating another patient's stored record gets the 404 of a patient that does
//! not exist, never its issues; a token without read access to a type gets 403; nothing sent to
//! `$validate` is stored. A narrative carrying script is refused on every write path, and a
//! stored profile built to make binding checks costly stays bounded. With
//! `fhir.references_must_exist`, a target hidden from the caller is reported as a missing one.

use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

fn send(s: &Server, token: &str, method: &str, path: &str, body: Option<&Value>) -> TestResult<(u16, Value)> {
    let bytes = body.map(serde_json::to_vec).transpose()?;
    let headers = [("Content-Type", "application/fhir+json")];
    let reply = s.send_as(Some(token), method, path, bytes.as_deref(), &headers)?;
    let parsed = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    Ok((reply.status, parsed))
}

#[test]
fn validate_reveals_nothing_a_read_would_not() -> TestResult {
    let s = Server::start("attacks-validate")?;
    for p in ["p1", "p2"] {
        s.put_resource(&json!({ "resourceType": "Patient", "id": p, "birthDate": "2000-01-01" }))?;
    }
    let attacker = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;

    // Another patient's stored record: 404 like a patient that does not exist.
    let (status, other) = send(&s, &attacker, "GET", "Patient/p2/$validate", None)?;
    let (missing_status, missing) = send(&s, &attacker, "GET", "Patient/none/$validate", None)?;
    assert_eq!((status, missing_status), (404, 404), "{other}");
    assert_eq!(other["issue"][0]["code"], missing["issue"][0]["code"], "{other} / {missing}");
    let delete = json!({"resourceType": "Parameters"});
    assert_eq!(send(&s, &attacker, "POST", "Patient/p2/$validate?mode=delete", Some(&delete))?.0, 404);

    // Its own: validated.
    let (status, own) = send(&s, &attacker, "GET", "Patient/p1/$validate", None)?;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["resourceType"], "OperationOutcome");

    // A type it may not read: refused before anything is looked at.
    let observer = s.mint(&["--scope", "patient/Observation.rs", "--patient", "p1"])?;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "X"}]});
    let (status, body) = send(&s, &observer, "POST", "Patient/$validate", Some(&patient))?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(send(&s, &observer, "GET", "Patient/p1/$validate", None)?.0, 403);

    // Validation stores nothing.
    let admin = s.token.clone().ok_or("no admin token")?;
    let (status, _) = send(&s, &admin, "POST", "Patient/$validate", Some(&patient))?;
    assert_eq!(status, 200);
    let (_, bundle) = send(&s, &admin, "GET", "Patient?family=X", None)?;
    assert_eq!(bundle["entry"].as_array().map_or(0, Vec::len), 0, "{bundle}");
    Ok(())
}

/// Stored XSS: a narrative carrying script (a `script` element, an event attribute, a
/// `javascript:` link, even disguised with a character reference) is refused on every write
/// path, with the R4 rule it breaks, and nothing is stored.
#[test]
fn a_narrative_carrying_script_is_never_stored() -> TestResult {
    let s = Server::start("attacks-narrative")?;
    let payloads = [
        "<script>alert(1)</script>hi",
        "<p onmouseover=\"alert(1)\">hi</p>",
        "<a href=\"javascript:alert(1)\">hi</a>",
        "<a href=\"java&#x09;script:alert(1)\">hi</a>",
        "<img src=\"x\" onerror=\"alert(1)\"/>",
        "<iframe src=\"https://evil.example\"></iframe>hi",
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let id = format!("xss{i}");
        let div = format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{payload}</div>");
        let patient = json!({"resourceType": "Patient", "id": id, "text": {"status": "generated", "div": div}});
        let created = s.post("Patient", &patient)?;
        assert!(matches!(created.status, 400 | 422), "create {payload}: {} {}", created.status, created.body);
        assert!(created.body.contains("narrative"), "{}", created.body);
        let updated = s.put(&format!("Patient/{id}"), &patient)?;
        assert!(matches!(updated.status, 400 | 422), "update {payload}: {} {}", updated.status, updated.body);
        let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": patient, "request": {"method": "PUT", "url": format!("Patient/{id}")}}]});
        let posted = s.post("", &transaction)?;
        assert!(matches!(posted.status, 400 | 422), "transaction {payload}: {} {}", posted.status, posted.body);
        assert_eq!(s.get(&format!("Patient/{id}"))?.status, 404, "{payload} was stored");
    }
    // A plain narrative with a link is fine.
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>See <a href=\"https://example.org/x\">x</a></p></div>";
    let patient = json!({"resourceType": "Patient", "id": "plain", "text": {"status": "generated", "div": div}});
    assert_eq!(s.put("Patient/plain", &patient)?.status / 100, 2);
    Ok(())
}

/// `$validate` reads the targets of references its profiles constrain (`targetProfile`) to check
/// them, as a read by the caller: a target the caller may not read answers exactly as one that
/// does not exist (nothing checked, nothing named), while one it may read is checked.
#[test]
fn reference_targets_are_read_only_as_the_caller_may_read_them() -> TestResult {
    let s = Server::start("attacks-validate-targets")?;
    let url = "http://example.org/StructureDefinition/linked-patient";
    s.put_resource(&json!({
        "resourceType": "StructureDefinition", "id": "linked-patient", "url": url, "name": "LinkedPatient",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient.gender", "path": "Patient.gender", "fixedCode": "other"},
            {"id": "Patient.link.other", "path": "Patient.link.other",
             "type": [{"code": "Reference", "targetProfile": [url]}]}
        ]}
    }))?;
    for p in ["p1", "p2"] {
        s.put_resource(&json!({ "resourceType": "Patient", "id": p, "gender": "male" }))?;
    }
    let linking = |target: &str| {
        json!({"resourceType": "Patient", "gender": "other",
            "link": [{"other": {"reference": target}, "type": "seealso"}]})
    };
    let path = format!("Patient/$validate?profile={url}");
    let errors = |outcome: &Value| -> Vec<String> {
        outcome["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["severity"] == "error")
            .map(|i| i["diagnostics"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    // The admin may read p2: the target is checked (it is `male`, the profile wants `other`).
    let admin = s.token.clone().ok_or("no admin token")?;
    let (status, seen) = send(&s, &admin, "POST", &path, Some(&linking("Patient/p2")))?;
    assert_eq!(status, 200, "{seen}");
    assert!(errors(&seen).iter().any(|e| e.contains("Patient/p2") && e.contains("target profiles")), "{seen}");

    // p1's token: its own record is checked the same way...
    let attacker = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    let (status, own) = send(&s, &attacker, "POST", &path, Some(&linking("Patient/p1")))?;
    assert_eq!(status, 200, "{own}");
    assert!(errors(&own).iter().any(|e| e.contains("Patient/p1")), "{own}");
    // ...but another patient's is answered as a patient that does not exist.
    let (status, hidden) = send(&s, &attacker, "POST", &path, Some(&linking("Patient/p2")))?;
    let (missing_status, missing) = send(&s, &attacker, "POST", &path, Some(&linking("Patient/p3")))?;
    assert_eq!((status, missing_status), (200, 200), "{hidden} / {missing}");
    assert_eq!(errors(&hidden), Vec::<String>::new(), "{hidden}");
    assert_eq!(hidden.to_string().replace("p2", "p3"), missing.to_string(), "the answers must not differ");
    assert!(!hidden.to_string().contains("male"), "{hidden}");
    Ok(())
}

/// A stored profile built to make binding checks costly: a contained ValueSet whose expansion
/// nests forty levels (past the sixteen looked at), two hundred additional bindings on one element
/// (sixteen looked at), a coding list of thousands. `$validate` against it and a create that
/// declares it answer (200, and 201, 422 or a store's size limit), never 500: what is past a
/// bound is not checked.
/// (Two hundred, not more: the profile must fit Cosmos DB's 2 MB transactional batch in the
/// one-partition layout, where its version, current copy and index entries go together.)
#[test]
fn hostile_bindings_in_a_stored_profile_stay_bounded() -> TestResult {
    let s = Server::start("attacks-bindings")?;
    let url = "https://attacker.example/StructureDefinition/costly-bindings";
    let mut nested = json!({"system": "http://loinc.org", "code": "deep", "display": "deep"});
    for i in 0..40 {
        nested = json!({"system": "http://loinc.org", "code": format!("c{i}"), "display": "d", "contains": [nested]});
    }
    let additional: Vec<Value> = (0..200)
        .map(|_| {
            json!({"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
                "extension": [{"url": "purpose", "valueCode": "required"}, {"url": "valueSet", "valueCanonical": "#deep"}]})
        })
        .collect();
    let profile = json!({
        "resourceType": "StructureDefinition", "id": "costly-bindings", "url": url, "name": "CostlyBindings",
        "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
        "contained": [{"resourceType": "ValueSet", "id": "deep", "url": "https://attacker.example/ValueSet/deep",
            "status": "active", "expansion": {"timestamp": "2026-12-07T00:00:00Z", "contains": [nested]}}],
        "differential": {"element": [{"id": "Observation.code", "path": "Observation.code",
            "binding": {"strength": "required", "valueSet": "#deep", "extension": additional}}]}
    });
    let stored = s.put("StructureDefinition/costly-bindings", &profile)?;
    assert!(matches!(stored.status, 200 | 201), "{} {}", stored.status, stored.body);
    let codings: Vec<Value> =
        (0..5000).map(|i| json!({"system": "http://loinc.org", "code": format!("x{i}"), "display": "d"})).collect();
    let observation = json!({"resourceType": "Observation", "status": "final", "meta": {"profile": [url]},
        "code": {"coding": codings}});
    let admin = s.token.clone().ok_or("no admin token")?;
    let (status, outcome) = send(&s, &admin, "POST", "Observation/$validate", Some(&observation))?;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let created = s.post("Observation", &observation)?;
    // 400 `not-supported`: a store's own limit (Cosmos DB's one-partition layout takes 2 MB per
    // write, which 5,000 codings and their index entries pass).
    let too_large = created.status == 400 && created.body.contains("not-supported");
    assert!(matches!(created.status, 201 | 422) || too_large, "{} {}", created.status, created.body);
    Ok(())
}

/// With `fhir.references_must_exist`, a reference to a resource the caller may not read is
/// reported exactly as one to a resource that does not exist: `$validate` is no way to learn
/// what exists beyond what the caller may read.
#[test]
fn an_existence_check_tells_a_hidden_target_from_a_missing_one_in_no_way() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("attacks-references-exist")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_REFERENCES_MUST_EXIST", "true")])?;
    for p in ["p1", "p2"] {
        s.put_resource(&json!({ "resourceType": "Patient", "id": p }))?;
    }
    let attacker = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    let issues = |subject: &str| -> TestResult<Vec<Value>> {
        let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": subject}});
        let (status, outcome) = send(&s, &attacker, "POST", "Observation/$validate", Some(&observation))?;
        assert_eq!(status, 200, "{outcome}");
        let mut issues = outcome["issue"].as_array().cloned().unwrap_or_default();
        // The reference itself is the caller's own input: compare the issues with it blanked.
        for issue in &mut issues {
            if let Some(d) = issue["diagnostics"].as_str() {
                issue["diagnostics"] = Value::String(d.replace(subject, "REF"));
            }
        }
        Ok(issues)
    };
    let own = issues("Patient/p1")?;
    assert!(!own.iter().any(|i| i["severity"] == "error"), "{own:?}");
    let hidden = issues("Patient/p2")?;
    let missing = issues("Patient/p3")?;
    assert!(hidden.iter().any(|i| i["severity"] == "error"), "{hidden:?}");
    assert_eq!(hidden, missing);
    Ok(())
}
