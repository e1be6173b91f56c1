//! End-to-end: `Patient/[id]/$everything` and `Encounter/[id]/$everything` through the real
//! binary, on every store: the owner, its compartment and the resources they refer to; paging
//! by `_count` through the `next` links without repeats; `_type` and `_since`; 404 for an
//! owner that does not exist, 400 for a `_since` that is no instant; the CapabilityStatement.

use std::collections::BTreeSet;

use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

/// `Type/id` of the entries of a searchset with `search.mode` = `mode`.
fn entries(bundle: &Value, mode: &str) -> BTreeSet<String> {
    fhirgate_e2e::entry_keys(bundle, mode).into_iter().collect()
}

/// The `next` link as a path below the base.
fn next(s: &Server, bundle: &Value) -> Option<String> {
    let links = bundle["link"].as_array()?;
    let url = links.iter().find(|l| l["relation"] == "next")?["url"].as_str()?;
    url.strip_prefix(&s.base()).map(|p| p.trim_start_matches('/').to_owned())
}

fn get_ok(s: &Server, path: &str) -> TestResult<Value> {
    let reply = s.get(path)?;
    if reply.status != 200 {
        return Err(format!("GET {path}: {} {}", reply.status, reply.body).into());
    }
    reply.json()
}

/// Patient `p1` with a general practitioner and an organization, an Encounter, five
/// Observations and a MedicationRequest of a Medication; patient `p2` with one Observation.
fn seed(s: &Server) -> TestResult {
    s.put_resource(&json!({ "resourceType": "Practitioner", "id": "doc1", "name": [{ "family": "Doc" }] }))?;
    s.put_resource(&json!({ "resourceType": "Organization", "id": "org1", "name": "Clinic" }))?;
    s.put_resource(&json!({ "resourceType": "Medication", "id": "med1", "code": { "text": "aspirin" } }))?;
    s.put_resource(&json!({ "resourceType": "Practitioner", "id": "unreferenced", "name": [{ "family": "Nobody" }] }))?;
    for p in ["p1", "p2"] {
        s.put_resource(
            &json!({ "resourceType": "Patient", "id": p, "generalPractitioner": [{ "reference": "Practitioner/doc1" }],
            "managingOrganization": { "reference": "Organization/org1" } }),
        )?;
    }
    s.put_resource(&json!({ "resourceType": "Encounter", "id": "e1", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": "Patient/p1" }, "participant": [{ "individual": { "reference": "Practitioner/doc1" } }] }),
    )?;
    for n in 1..=5 {
        s.put_resource(
            &json!({ "resourceType": "Observation", "id": format!("o{n}"), "status": "final", "code": { "text": "x" },
            "subject": { "reference": "Patient/p1" }, "encounter": { "reference": "Encounter/e1" } }),
        )?;
    }
    s.put_resource(&json!({ "resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
        "medicationReference": { "reference": "Medication/med1" }, "subject": { "reference": "Patient/p1" } }))?;
    s.put_resource(&json!({ "resourceType": "Observation", "id": "other", "status": "final", "code": { "text": "x" },
        "subject": { "reference": "Patient/p2" } }))?;
    Ok(())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn everything_pages_filters_and_includes() -> TestResult {
    let s = Server::start("everything")?;
    seed(&s)?;
    let record = set(&[
        "Patient/p1",
        "Encounter/e1",
        "Observation/o1",
        "Observation/o2",
        "Observation/o3",
        "Observation/o4",
        "Observation/o5",
        "MedicationRequest/mr1",
    ]);

    // One page: the record as matches, what it refers to as includes, nothing of p2.
    let bundle = get_ok(&s, "Patient/p1/$everything")?;
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(entries(&bundle, "match"), record);
    assert_eq!(entries(&bundle, "include"), set(&["Practitioner/doc1", "Organization/org1", "Medication/med1"]));
    assert_eq!(bundle["total"], json!(record.len()));

    // Paged by two: every match once, the includes of each page with it.
    let mut seen = Vec::new();
    let mut included = BTreeSet::new();
    let mut page = get_ok(&s, "Patient/p1/$everything?_count=2")?;
    let mut pages = 1;
    loop {
        let matched = entries(&page, "match");
        assert!(matched.len() <= 2, "{matched:?}");
        seen.extend(matched);
        included.extend(entries(&page, "include"));
        let Some(path) = next(&s, &page) else { break };
        assert!(path.starts_with("Patient/p1/$everything?"), "{path}");
        page = get_ok(&s, &path)?;
        pages += 1;
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), record.len(), "no match twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), record);
    assert!(included.contains("Medication/med1") && included.contains("Practitioner/doc1"));

    // `_type`: only those types, includes only of those types.
    let bundle = get_ok(&s, "Patient/p1/$everything?_type=Observation")?;
    assert_eq!(entries(&bundle, "match").len(), 5);
    assert!(entries(&bundle, "include").is_empty());
    let bundle = get_ok(&s, "Patient/p1/$everything?_type=Patient,Practitioner")?;
    assert_eq!(entries(&bundle, "match"), set(&["Patient/p1"]));
    assert_eq!(entries(&bundle, "include"), set(&["Practitioner/doc1"]));

    // `_since`: what changed at or after the instant.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let since = time_now(&s)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    s.put_resource(&json!({ "resourceType": "Observation", "id": "o2", "status": "amended", "code": { "text": "x" },
        "subject": { "reference": "Patient/p1" } }))?;
    s.put_resource(&json!({ "resourceType": "Observation", "id": "o6", "status": "final", "code": { "text": "y" },
        "subject": { "reference": "Patient/p1" } }))?;
    let bundle = get_ok(&s, &format!("Patient/p1/$everything?_since={}", since.replace('+', "%2B")))?;
    assert_eq!(entries(&bundle, "match"), set(&["Observation/o2", "Observation/o6"]));

    // Encounter: the encounter and its compartment, the patient and practitioner it refers to.
    let bundle = get_ok(&s, "Encounter/e1/$everything")?;
    let mut encounter = set(&["Encounter/e1", "Observation/o1", "Observation/o3", "Observation/o4", "Observation/o5"]);
    assert_eq!(entries(&bundle, "match"), encounter);
    assert_eq!(entries(&bundle, "include"), set(&["Patient/p1", "Practitioner/doc1"]));
    encounter.clear();

    // Errors: an owner that does not exist, a deleted one, a `_since` that is no instant,
    // an unknown parameter under strict handling.
    assert_eq!(s.get("Patient/nobody/$everything")?.status, 404);
    assert_eq!(s.get("Encounter/nobody/$everything")?.status, 404);
    assert_eq!(s.get("Patient/p1/$everything?_since=2020-01-01")?.status, 400);
    assert_eq!(s.get_with("Patient/p1/$everything?start=2020", &[("Prefer", "handling=strict")])?.status, 400);
    let lenient = get_ok(&s, "Patient/p1/$everything?start=2020&_count=1")?;
    assert_eq!(entries(&lenient, "outcome").len(), 1, "the ignored parameter is reported");
    assert_eq!(s.delete("Patient/p2")?.status / 100, 2);
    assert_eq!(s.get("Patient/p2/$everything")?.status, 410);
    assert_eq!(s.get("Observation/o1/$everything")?.status, 400, "not supported: a 4xx, never a 5xx");

    // The CapabilityStatement declares it.
    let statement = get_ok(&s, "metadata")?;
    let resources = statement["rest"][0]["resource"].as_array().cloned().unwrap_or_default();
    for t in ["Patient", "Encounter"] {
        let r = resources.iter().find(|r| r["type"] == t).ok_or("no resource entry")?;
        let operations = r["operation"].as_array().cloned().unwrap_or_default();
        assert!(operations.iter().any(|o| o["name"] == "everything"), "{t}: {operations:?}");
    }
    Ok(())
}

/// The server's idea of now: `meta.lastUpdated` of a resource written for the purpose.
fn time_now(s: &Server) -> TestResult<String> {
    let reply = s.post("Basic", &json!({ "resourceType": "Basic", "code": { "text": "clock" } }))?;
    let v = reply.json()?;
    Ok(v["meta"]["lastUpdated"].as_str().ok_or("no lastUpdated")?.to_owned())
}
