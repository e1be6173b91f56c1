//! End-to-end attacks on `$everything`: it is decided as a search of the owner's compartment by
//! the same client, so a SMART patient token asking for another patient's record gets the 404
//! of a patient that does not exist; a resource labelled restricted never appears in a record
//! (as a match or as an included resource) and is never counted; a hidden owner answers 404;
//! the record's page links serve no other token.

use std::collections::BTreeSet;

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

fn ids(bundle: &Value) -> BTreeSet<String> {
    let list = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter(|e| e["resource"]["resourceType"] != "OperationOutcome")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or("?"),
                e["resource"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn restricted() -> Value {
    json!({ "security": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" }] })
}

fn observation(id: &str, patient: &str) -> Value {
    json!({ "resourceType": "Observation", "id": id, "status": "final", "code": { "text": "x" },
        "subject": { "reference": format!("Patient/{patient}") },
        "performer": [{ "reference": "Practitioner/doc" }] })
}

/// A total counts only what the client sees; through a remote target (`FHIRGATE_E2E_STORE=remote`)
/// it is dropped when anything could be hidden, which is fine too.
fn total_is(bundle: &Value, visible: u64) -> bool {
    bundle.get("total").is_none_or(|t| t == &json!(visible))
}

fn get(s: &Server, token: &str, path: &str) -> TestResult<(u16, Value)> {
    let reply = s.send_as(Some(token), "GET", path, None, &[])?;
    let body = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    Ok((reply.status, body))
}

/// The default sets: a SMART patient token of `p1` reaches only `p1`'s record.
#[test]
fn a_patient_token_gets_only_its_own_record() -> TestResult {
    let s = Server::start("attacks-everything-smart")?;
    s.put_resource(&json!({ "resourceType": "Practitioner", "id": "doc", "name": [{ "family": "Doc" }] }))?;
    for p in ["p1", "p2"] {
        s.put_resource(&json!({ "resourceType": "Patient", "id": p, "generalPractitioner": [{ "reference": "Practitioner/doc" }] }),
        )?;
        s.put_resource(&observation(&format!("{p}-obs"), p))?;
    }
    let attacker = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;

    // Another patient's record answers exactly as a patient that does not exist.
    let (status, other) = get(&s, &attacker, "Patient/p2/$everything")?;
    let (missing_status, missing) = get(&s, &attacker, "Patient/none/$everything")?;
    assert_eq!((status, missing_status), (404, 404), "{other}");
    assert_eq!(
        other["issue"][0]["code"], missing["issue"][0]["code"],
        "a hidden record must look like a missing one: {other} / {missing}"
    );
    for path in [
        "Patient/p2/$everything?_count=1",
        "Patient/p2/$everything?_summary=count",
        "Patient/p2/$everything?_type=Observation",
    ] {
        assert_eq!(get(&s, &attacker, path)?.0, 404, "{path}");
    }

    // Its own record: its patient and observation; the Practitioner outside its compartment,
    // and everything of p2, stay out, and the total counts only what it sees.
    let (status, own) = get(&s, &attacker, "Patient/p1/$everything")?;
    assert_eq!(status, 200, "{own}");
    let expected: BTreeSet<String> = ["Patient/p1", "Observation/p1-obs"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(ids(&own), expected);
    assert!(total_is(&own, 2), "{own}");
    let (_, counted) = get(&s, &attacker, "Patient/p1/$everything?_summary=count")?;
    assert!(total_is(&counted, 2), "{counted}");

    // A page link of the attacker's record serves no other token, and another's serves not the attacker.
    let admin = s.token.clone().ok_or("no admin token")?;
    let (_, first) = get(&s, &admin, "Patient/p2/$everything?_count=1")?;
    let next = first["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .ok_or("no next link")?
        .to_owned();
    let path = next.strip_prefix(&s.base()).ok_or("foreign link")?.trim_start_matches('/').to_owned();
    // 410 (not its page); through a remote target, 404 (the hidden owner is decided first).
    let status = get(&s, &attacker, &path)?.0;
    assert!(status == 410 || status == 404, "another client's page: {status}");
    assert_eq!(get(&s, &admin, &path)?.0, 200);
    Ok(())
}

/// `microsoft-roles` with the example `restricted` forbid: a `globalReader` never sees, or
/// counts, what is labelled restricted, whether it is a match, an included resource or the owner.
#[test]
fn restricted_resources_never_appear_in_a_record() -> TestResult {
    let dir = temp_dir("attacks-everything-restricted")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples/restricted.cedar");
    std::fs::copy(shipped, policies.join("restricted.cedar"))?;
    let policies = policies.to_str().ok_or("policy path")?;
    let mut s =
        Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])?;
    s.token = Some(s.mint(&["--role", "globalAdmin", "--role", "restrictedReader"])?);
    s.put_resource(&json!({ "resourceType": "Practitioner", "id": "doc", "meta": restricted() }))?;
    s.put_resource(
        &json!({ "resourceType": "Patient", "id": "p1", "generalPractitioner": [{ "reference": "Practitioner/doc" }] }),
    )?;
    s.put_resource(&observation("open", "p1"))?;
    let mut hidden = observation("secret", "p1");
    hidden["meta"] = restricted();
    s.put_resource(&hidden)?;
    s.put_resource(&json!({ "resourceType": "Patient", "id": "vip", "meta": restricted() }))?;
    s.put_resource(&observation("vip-obs", "vip"))?;

    let reader = s.mint(&["--role", "globalReader"])?;
    let (status, record) = get(&s, &reader, "Patient/p1/$everything")?;
    assert_eq!(status, 200, "{record}");
    let expected: BTreeSet<String> = ["Patient/p1", "Observation/open"].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(ids(&record), expected, "no restricted match, no restricted include");
    assert!(total_is(&record, 2), "{record}");
    for query in ["_summary=count", "_type=Observation&_summary=count"] {
        let (_, counted) = get(&s, &reader, &format!("Patient/p1/$everything?{query}"))?;
        let expected = if query.contains("_type") { 1 } else { 2 };
        assert!(total_is(&counted, expected), "{query}: {counted}");
    }
    // Paged one by one, the restricted Observation is on no page.
    let mut path = "Patient/p1/$everything?_count=1".to_owned();
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let (status, page) = get(&s, &reader, &path)?;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        let Some(next) = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
        else {
            break;
        };
        path = next.strip_prefix(&s.base()).ok_or("foreign link")?.trim_start_matches('/').to_owned();
    }
    assert_eq!(seen, expected);
    // A restricted owner answers as a missing one; the record is there for a restricted reader.
    assert_eq!(get(&s, &reader, "Patient/vip/$everything")?.0, 404);
    let seer = s.mint(&["--role", "globalReader", "--role", "restrictedReader"])?;
    let (status, full) = get(&s, &seer, "Patient/p1/$everything")?;
    assert_eq!(status, 200);
    assert_eq!(ids(&full).len(), 4, "{full}");
    Ok(())
}
