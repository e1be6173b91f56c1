//! End-to-end: terminology through the real binary, on every store: `$expand`, `$lookup`,
//! `$validate-code` and `$subsumes` on the R4 package's own code systems and value sets, a
//! ValueSet and a CodeSystem written through the API then used, the token search modifiers
//! `:in`, `:not-in`, `:below` and `:above`, a required binding rejected on create, and a 4xx
//! OperationOutcome (never a 5xx) for what is not loaded or too large.

use fhirgate_e2e::{Reply, Server, TestResult, backend};
use serde_json::{Value, json};

const GENDER_VS: &str = "http://hl7.org/fhir/ValueSet/administrative-gender";
const GENDER: &str = "http://hl7.org/fhir/administrative-gender";
const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const OBS_STATUS_VS: &str = "http://hl7.org/fhir/ValueSet/observation-status";
const OBS_STATUS: &str = "http://hl7.org/fhir/observation-status";

fn ok(reply: Reply, what: &str) -> TestResult<Value> {
    if reply.status != 200 {
        return Err(format!("{what}: {} {}", reply.status, reply.body).into());
    }
    reply.json()
}

/// The `code`s of an expansion.
fn codes(value_set: &Value) -> Vec<String> {
    value_set["expansion"]["contains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

/// The value of output parameter `name` (`valueX`).
fn out<'a>(parameters: &'a Value, name: &str) -> Option<&'a Value> {
    let p = parameters["parameter"].as_array()?.iter().find(|p| p["name"] == name)?;
    p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| v)
}

/// The ids of a searchset's matches, sorted.
fn ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = fhirgate_e2e::entry_keys(bundle, "match");
    ids.sort();
    ids
}

fn assert_4xx(reply: &Reply, status: u16, code: &str, what: &str) -> TestResult {
    let issues = reply.outcome_issues().unwrap_or_default();
    let has = issues.iter().any(|i| i["code"] == code);
    if reply.status != status || !has {
        return Err(format!("{what}: wanted {status} `{code}`, got {} {}", reply.status, reply.body).into());
    }
    Ok(())
}

#[test]
fn operations_on_the_r4_package() -> TestResult {
    let s = Server::start("terminology-ops")?;

    let vs = ok(s.get(&format!("ValueSet/$expand?url={GENDER_VS}"))?, "expand gender")?;
    assert_eq!(codes(&vs), ["male", "female", "other", "unknown"]);
    assert_eq!(vs["expansion"]["total"], 4);
    let vs = ok(s.get(&format!("ValueSet/$expand?url={GENDER_VS}&filter=FEM"))?, "filter")?;
    assert_eq!(codes(&vs), ["female"]);
    let vs = ok(s.get(&format!("ValueSet/$expand?url={GENDER_VS}&count=2&offset=1"))?, "page")?;
    assert_eq!((codes(&vs), vs["expansion"]["total"].clone()), (vec!["female".into(), "other".into()], json!(4)));
    // A hierarchical value set (is-a filter over v3-ActCode), by POST.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"}]});
    let vs = ok(s.post("ValueSet/$expand", &body)?, "expand encounter codes")?;
    let got = codes(&vs);
    assert!(["AMB", "EMER", "IMP", "ACUTE"].iter().all(|c| got.iter().any(|g| g == c)), "{got:?}");

    let p = ok(s.get(&format!("CodeSystem/$lookup?system={GENDER}&code=male"))?, "lookup")?;
    assert_eq!(out(&p, "display"), Some(&json!("Male")));
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": ACT, "code": "IMP"}}, {"name": "property", "valueCode": "child"}]});
    let p = ok(s.post("CodeSystem/$lookup", &body)?, "lookup by coding")?;
    assert_eq!(out(&p, "display"), Some(&json!("inpatient encounter")));
    assert!(p.to_string().contains("ACUTE"), "children listed: {p}");

    let p = ok(s.get(&format!("ValueSet/$validate-code?url={OBS_STATUS_VS}&system={OBS_STATUS}&code=final"))?, "vc")?;
    assert_eq!((out(&p, "result"), out(&p, "display")), (Some(&json!(true)), Some(&json!("Final"))));
    let p = ok(s.get(&format!("ValueSet/$validate-code?url={OBS_STATUS_VS}&system={OBS_STATUS}&code=done"))?, "vc")?;
    assert_eq!(out(&p, "result"), Some(&json!(false)));
    assert!(out(&p, "message").is_some());
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": OBS_STATUS_VS},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "http://other", "code": "x"}, {"system": OBS_STATUS, "code": "amended"}]}}]});
    let p = ok(s.post("ValueSet/$validate-code", &body)?, "vc codeableConcept")?;
    assert_eq!(out(&p, "result"), Some(&json!(true)));
    let p = ok(s.get(&format!("CodeSystem/$validate-code?url={GENDER}&code=unknown"))?, "cs vc")?;
    assert_eq!(out(&p, "result"), Some(&json!(true)));
    let p = ok(s.get(&format!("CodeSystem/$validate-code?url={GENDER}&code=robot"))?, "cs vc")?;
    assert_eq!(out(&p, "result"), Some(&json!(false)));

    for (a, b, outcome) in [
        ("IMP", "ACUTE", "subsumes"),
        ("ACUTE", "IMP", "subsumed-by"),
        ("AMB", "AMB", "equivalent"),
        ("AMB", "IMP", "not-subsumed"),
    ] {
        let p = ok(s.get(&format!("CodeSystem/$subsumes?system={ACT}&codeA={a}&codeB={b}"))?, "subsumes")?;
        assert_eq!(out(&p, "outcome"), Some(&json!(outcome)), "{a} vs {b}");
    }

    // The CapabilityStatement lists them.
    let metadata = ok(s.get("metadata")?, "metadata")?.to_string();
    for op in ["ValueSet-expand", "CodeSystem-lookup", "ValueSet-validate-code", "CodeSystem-subsumes"] {
        assert!(metadata.contains(&format!("OperationDefinition/{op}")), "{op} declared");
    }
    Ok(())
}

#[test]
fn what_is_not_loaded_or_too_large_is_a_4xx() -> TestResult {
    let s = Server::start("terminology-4xx")?;
    assert_4xx(&s.get("CodeSystem/$lookup?system=http://loinc.org&code=1234-5")?, 404, "not-found", "loinc lookup")?;
    assert_4xx(&s.get("ValueSet/$expand?url=http://example.org/none")?, 404, "not-found", "unknown value set")?;
    assert_4xx(&s.get("ValueSet/$validate-code?url=http://example.org/none&code=x")?, 404, "not-found", "vc unknown")?;
    assert_4xx(
        &s.get(&format!("CodeSystem/$subsumes?system={ACT}&codeA=AMB&codeB=nope"))?,
        400,
        "invalid",
        "bad code",
    )?;
    assert_4xx(&s.get("ValueSet/$expand")?, 400, "invalid", "no value set named")?;
    // The R4 package's value set of MIME types draws on a system that is not loaded.
    let mime = "http://hl7.org/fhir/ValueSet/mimetypes";
    assert_4xx(&s.get(&format!("ValueSet/$expand?url={mime}"))?, 422, "not-supported", "mime types")?;
    // A value set of all of LOINC, given inline.
    let loinc = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "url": "http://x/loinc", "status": "active",
        "compose": {"include": [{"system": "http://loinc.org"}]}}}]});
    assert_4xx(&s.post("ValueSet/$expand", &loinc)?, 422, "not-supported", "all of loinc")?;
    // More codes than an expansion may have.
    let big: Vec<Value> = BIG_SYSTEMS.iter().map(|system| json!({"system": system})).collect();
    let big = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "url": "http://x/big", "status": "active", "compose": {"include": big}}}]});
    assert_4xx(&s.post("ValueSet/$expand", &big)?, 422, "too-costly", "a huge expansion")?;
    // A value set that imports itself.
    for (id, other) in [("cycle-a", "cycle-b"), ("cycle-b", "cycle-a")] {
        s.put_resource(
            &json!({"resourceType": "ValueSet", "id": id, "url": format!("http://x/{id}"), "status": "active",
            "compose": {"include": [{"valueSet": [format!("http://x/{other}")]}]}}),
        )?;
    }
    assert_4xx(&s.get("ValueSet/cycle-a/$expand")?, 422, "invalid", "a cycle")?;
    // Searches.
    assert_4xx(&s.get("Observation?code:below=http://loinc.org|1234-5")?, 400, "not-supported", "below loinc")?;
    assert_4xx(&s.get("Observation?code:in=http://example.org/none")?, 400, "not-supported", "in unknown")?;
    s.put_resource(
        &json!({"resourceType": "ValueSet", "id": "all-dicom", "url": "http://x/all-dicom", "status": "active",
        "compose": {"include": [{"system": "http://dicom.nema.org/resources/ontology/DCM"}]}}),
    )?;
    assert_4xx(&s.get("Observation?code:in=http://x/all-dicom")?, 400, "too-costly", "in a value set too large")?;
    assert!(s.get("health")?.status == 200);
    Ok(())
}

/// Complete R4 code systems with more than 10,000 codes together.
const BIG_SYSTEMS: [&str; 21] = [
    "http://dicom.nema.org/resources/ontology/DCM",
    "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "http://terminology.hl7.org/CodeSystem/v3-Race",
    "http://terminology.hl7.org/CodeSystem/v3-TribalEntityUS",
    "http://terminology.hl7.org/CodeSystem/v2-0550",
    "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
    "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    "http://terminology.hl7.org/CodeSystem/v2-0003",
    "http://hl7.org/fhir/spdx-license",
    "http://terminology.hl7.org/CodeSystem/v2-0487",
    "http://terminology.hl7.org/CodeSystem/v2-0354",
    "http://terminology.hl7.org/CodeSystem/v3-ObservationMethod",
    "http://terminology.hl7.org/CodeSystem/v3-Dentition",
    "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "http://terminology.hl7.org/CodeSystem/v3-AmericanIndianAlaskaNativeLanguages",
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "http://terminology.hl7.org/CodeSystem/v2-0396",
    "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
    "http://terminology.hl7.org/CodeSystem/v2-0076",
    "http://hl7.org/fhir/resource-types",
    "http://terminology.hl7.org/CodeSystem/v3-EntityCode",
];

#[test]
fn stored_value_sets_and_code_systems_are_used() -> TestResult {
    let s = Server::start("terminology-stored")?;
    s.put_resource(&json!({"resourceType": "CodeSystem", "id": "colors", "url": "http://x/cs/colors",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a", "concept": [
            {"code": "warm", "display": "Warm", "concept": [{"code": "red", "display": "Red"}, {"code": "orange"}]},
            {"code": "cold", "display": "Cold", "concept": [{"code": "blue", "display": "Blue"}]}]}))?;
    s.put_resource(&json!({"resourceType": "ValueSet", "id": "warm-or-female", "url": "http://x/vs/warm-or-female",
        "status": "active", "compose": {"include": [
            {"system": "http://x/cs/colors", "filter": [{"property": "concept", "op": "is-a", "value": "warm"}]},
            {"valueSet": [GENDER_VS]}],
            "exclude": [{"system": GENDER, "concept": [{"code": "male"}, {"code": "other"}, {"code": "unknown"}]}]}}))?;
    let expected = ["warm", "red", "orange", "female"];
    let vs = ok(s.get("ValueSet/$expand?url=http://x/vs/warm-or-female")?, "by url")?;
    assert_eq!(codes(&vs), expected);
    let vs = ok(s.get("ValueSet/warm-or-female/$expand")?, "by id")?;
    assert_eq!(codes(&vs), expected);
    let p = ok(s.get("CodeSystem/colors/$lookup?code=red")?, "lookup stored")?;
    assert_eq!(out(&p, "display"), Some(&json!("Red")));
    let p = ok(s.get("CodeSystem/$subsumes?system=http://x/cs/colors&codeA=cold&codeB=blue")?, "subsumes stored")?;
    assert_eq!(out(&p, "outcome"), Some(&json!("subsumes")));
    let p = ok(s.get("ValueSet/warm-or-female/$validate-code?system=http://x/cs/colors&code=blue")?, "vc stored")?;
    assert_eq!(out(&p, "result"), Some(&json!(false)));

    // An update is seen by the next request (nothing stored is cached across requests).
    s.put_resource(&json!({"resourceType": "ValueSet", "id": "warm-or-female", "url": "http://x/vs/warm-or-female",
        "status": "active", "compose": {"include": [{"system": "http://x/cs/colors", "concept": [{"code": "blue"}]}]}}))?;
    let vs = ok(s.get("ValueSet/$expand?url=http://x/vs/warm-or-female")?, "after update")?;
    assert_eq!(codes(&vs), ["blue"]);
    Ok(())
}

#[test]
fn token_modifiers_search_by_terminology() -> TestResult {
    let s = Server::start("terminology-search")?;
    for (id, status) in [("o-final", "final"), ("o-prelim", "preliminary"), ("o-amended", "amended")] {
        s.put_resource(&json!({"resourceType": "Observation", "id": id, "status": status, "code": {"text": "x"}}))?;
    }
    for (id, class) in [("e-amb", "AMB"), ("e-acute", "ACUTE"), ("e-imp", "IMP")] {
        s.put_resource(&json!({"resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": ACT, "code": class}}))?;
    }
    s.put_resource(&json!({"resourceType": "ValueSet", "id": "done", "url": "http://x/vs/done", "status": "active",
        "compose": {"include": [{"system": OBS_STATUS, "concept": [{"code": "final"}, {"code": "amended"}]}]}}))?;
    let search = |q: &str| -> TestResult<Vec<String>> { Ok(ids(&ok(s.get(q)?, q)?)) };
    let all = ["Observation/o-amended", "Observation/o-final", "Observation/o-prelim"];
    assert_eq!(search(&format!("Observation?status:in={OBS_STATUS_VS}"))?, all);
    assert_eq!(search("Observation?status:in=http://x/vs/done")?, ["Observation/o-amended", "Observation/o-final"]);
    assert_eq!(search("Observation?status:not-in=http://x/vs/done")?, ["Observation/o-prelim"]);
    assert_eq!(search(&format!("Encounter?class:below={ACT}|IMP"))?, ["Encounter/e-acute", "Encounter/e-imp"]);
    assert_eq!(search(&format!("Encounter?class:above={ACT}|ACUTE"))?, ["Encounter/e-acute", "Encounter/e-imp"]);
    assert_eq!(search(&format!("Encounter?class:below={ACT}|_ActEncounterCode&_sort=_id"))?.len(), 3);
    // The self link keeps the modifier as written.
    let bundle = ok(s.get("Observation?status:in=http://x/vs/done")?, "self")?;
    assert!(bundle["link"].to_string().contains("status:in=http://x/vs/done"), "{}", bundle["link"]);
    Ok(())
}

#[test]
fn required_bindings_are_enforced_on_writes() -> TestResult {
    let s = Server::start("terminology-bindings")?;
    // `gender` is a valid `code` by format: only the binding to administrative-gender rejects it.
    let reply = s.post("Patient", &json!({"resourceType": "Patient", "gender": "robot"}))?;
    let body = reply.body.clone();
    assert!(matches!(reply.status, 400 | 422), "{} {body}", reply.status);
    assert!(body.contains("robot") && body.contains(GENDER_VS), "{body}");
    let reply = s.post("Patient", &json!({"resourceType": "Patient", "gender": "female"}))?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // A Coding bound by a required binding (Encounter.class is extensible: not enforced).
    let reply = s.post(
        "Encounter",
        &json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://example.org/classes", "code": "home"}}),
    )?;
    assert_eq!(reply.status, 201, "an extensible binding is not enforced: {}", reply.body);
    let reply = s.post(
        "AllergyIntolerance",
        &json!({"resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/x"}, "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "sleeping"}]}}),
    )?;
    assert!(matches!(reply.status, 400 | 422), "{} {}", reply.status, reply.body);
    // A value set the server cannot expand (MIME types) is not enforced.
    let reply = s.post(
        "DocumentReference",
        &json!({"resourceType": "DocumentReference", "status": "current",
        "content": [{"attachment": {"contentType": "application/x-made-up"}}]}),
    )?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    if backend() != "remote" {
        assert!(s.get("health")?.status == 200);
    }
    Ok(())
}
