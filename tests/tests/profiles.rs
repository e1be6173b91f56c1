//! End-to-end: profiles through the real binary, on every store. A FHIR package (a `.tgz`
//! built here) loaded at start with `fhir.packages`; a required profile per type
//! (`fhir.required_profiles`, listed as `supportedProfile`); `$validate` with and without
//! `profile`, as a body or as Parameters, at type and instance level, `mode=delete`; the
//! profiles a resource declares in `meta.profile` enforced on create, update and transactions
//! (422 with the OperationOutcome, nothing stored), an unknown one accepted; a StructureDefinition
//! posted through the API used at once; a package that cannot be read stops the start;
//! `fhir.references_must_exist` makes `$validate` require reference targets to exist.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

const MRN: &str = "http://example.org/fhir/StructureDefinition/mrn-patient";
const NAMED: &str = "http://example.org/fhir/StructureDefinition/named-practitioner";
const NOTED: &str = "http://example.org/fhir/StructureDefinition/noted-observation";

/// A Patient profile: at least one identifier, exactly one of them with the MRN system.
fn mrn_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": MRN, "name": "MrnPatient", "status": "active",
        "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1,
             "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
            {"id": "Patient.identifier:mrn", "path": "Patient.identifier", "sliceName": "mrn", "min": 1, "max": "1"},
            {"id": "Patient.identifier:mrn.system", "path": "Patient.identifier.system", "min": 1,
             "fixedUri": "http://example.org/mrn"}
        ]}
    })
}

fn named_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": NAMED, "name": "NamedPractitioner", "status": "active",
        "kind": "resource", "abstract": false, "type": "Practitioner", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Practitioner",
        "differential": {"element": [{"id": "Practitioner.name", "path": "Practitioner.name", "min": 1}]}
    })
}

/// Posted through the API: an Observation with a note.
fn noted_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": NOTED, "name": "NotedObservation", "status": "active",
        "kind": "resource", "abstract": false, "type": "Observation", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "differential": {"element": [{"id": "Observation.note", "path": "Observation.note", "min": 1}]}
    })
}

/// Writes `files` as `package/<name>` into `<dir>/<package>.tgz` with the system's `tar`.
fn write_package(dir: &Path, package: &str, files: &[(&str, Vec<u8>)]) -> TestResult {
    let work = dir.join(format!("{package}-src"));
    std::fs::create_dir_all(work.join("package"))?;
    for (name, content) in files {
        std::fs::write(work.join("package").join(name), content)?;
    }
    std::fs::create_dir_all(dir.join("packages"))?;
    let out = dir.join("packages").join(format!("{package}.tgz"));
    let status = Command::new("tar").arg("czf").arg(&out).arg("-C").arg(&work).arg("package").status()?;
    if !status.success() {
        return Err("tar failed".into());
    }
    Ok(())
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn start(name: &str) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let manifest = json!({"name": "example.profiles", "version": "1.0.0", "fhirVersions": ["4.0.1"]});
    write_package(
        &dir,
        "example.profiles-1.0.0",
        &[
            ("package.json", json_bytes(&manifest)),
            ("StructureDefinition-mrn-patient.json", json_bytes(&mrn_profile())),
            ("StructureDefinition-named-practitioner.json", json_bytes(&named_profile())),
        ],
    )?;
    let config = dir.join("fhirgate.toml");
    let packages = dir.join("packages");
    std::fs::write(
        &config,
        format!(
            "[fhir]\npackages = {:?}\n\n[fhir.required_profiles]\nPractitioner = {NAMED:?}\n",
            packages.to_str().ok_or("path")?
        ),
    )?;
    Server::start_with(&dir, &[("FHIRGATE_CONFIG", config.to_str().ok_or("path")?)])
}

fn errors(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|i| i["severity"] == "error" || i["severity"] == "fatal")
        .map(|i| format!("{}: {}", i["expression"][0].as_str().unwrap_or(""), i["diagnostics"].as_str().unwrap_or("")))
        .collect()
}

fn patient(identifiers: Value, profile: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "identifier": identifiers});
    if let Some(profile) = profile {
        p["meta"] = json!({"profile": [profile]});
    }
    p
}

fn good_identifiers() -> Value {
    json!([{"system": "http://example.org/mrn", "value": "123"}])
}

fn total(s: &Server, path: &str) -> TestResult<u64> {
    let reply = s.get(path)?;
    reply.json()?["total"].as_u64().ok_or_else(|| format!("no total in {}", reply.body).into())
}

#[test]
fn validate_checks_the_base_and_the_asked_profile() -> TestResult {
    let s = start("profiles-validate")?;
    let no_mrn = patient(json!([{"system": "http://other", "value": "1"}]), None);

    // Without a profile: valid R4, one information issue.
    let reply = s.post("Patient/$validate", &no_mrn)?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let outcome = reply.json()?;
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(errors(&outcome).is_empty(), "{}", reply.body);

    // With `profile`: the missing slice is an error, still a 200.
    let reply = s.post(&format!("Patient/$validate?profile={MRN}"), &no_mrn)?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let found = errors(&reply.json()?);
    assert!(found.iter().any(|e| e.contains("identifier:mrn") && e.contains("at least 1")), "{found:?}");

    // The same as Parameters (resource + profile).
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": no_mrn}, {"name": "profile", "valueUri": MRN}]});
    let reply = s.post("Patient/$validate", &parameters)?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!errors(&reply.json()?).is_empty(), "{}", reply.body);

    // Base errors are reported too, and nothing is written by `$validate`.
    let reply = s.post("Patient/$validate", &json!({"resourceType": "Patient", "birthDate": "yesterday"}))?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("birthDate")), "{}", reply.body);
    assert_eq!(total(&s, "Patient?_summary=count")?, 0);

    // An unknown profile asked for is an error of the outcome.
    let reply = s.post("Patient/$validate?profile=http://example.org/none", &no_mrn)?;
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("unknown profile")), "{}", reply.body);

    // Instance level: the stored resource (GET), `mode=update` checks the id, `mode=delete`
    // needs an existing resource.
    s.put_resource(&json!({"resourceType": "Patient", "id": "p1", "identifier": good_identifiers()}))?;
    let reply = s.get(&format!("Patient/p1/$validate?profile={MRN}"))?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(errors(&reply.json()?).is_empty(), "{}", reply.body);
    let mut other = patient(good_identifiers(), None);
    other["id"] = json!("p2");
    let reply = s.post("Patient/p1/$validate?mode=update", &other)?;
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("`p2`")), "{}", reply.body);
    assert_eq!(s.post("Patient/p1/$validate?mode=delete", &json!({"resourceType": "Parameters"}))?.status, 200);
    assert_eq!(s.post("Patient/nope/$validate?mode=delete", &json!({"resourceType": "Parameters"}))?.status, 404);
    assert_eq!(s.post("Patient/$validate?mode=sideways", &no_mrn)?.status, 400);
    Ok(())
}

#[test]
fn declared_profiles_are_enforced_on_writes() -> TestResult {
    let s = start("profiles-enforce")?;
    // Create: 422 with the outcome, nothing stored.
    let reply = s.post("Patient", &patient(json!([{"system": "http://other", "value": "1"}]), Some(MRN)))?;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("identifier:mrn")), "{}", reply.body);
    assert_eq!(total(&s, "Patient?_summary=count")?, 0);

    // A conforming one is created; an update that breaks it is refused and changes nothing.
    let reply = s.post("Patient", &patient(good_identifiers(), Some(MRN)))?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let created = reply.json()?;
    let id = created["id"].as_str().ok_or("id")?;
    let mut broken = patient(json!([{"system": "http://other", "value": "1"}]), Some(MRN));
    broken["id"] = json!(id);
    let reply = s.put(&format!("Patient/{id}"), &broken)?;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let current = s.get(&format!("Patient/{id}"))?.json()?;
    assert_eq!(current["meta"]["versionId"], "1");
    assert_eq!(current["identifier"], good_identifiers());

    // In a transaction: the entry fails the whole transaction.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(good_identifiers(), None), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(json!([{"system": "http://other", "value": "2"}]), Some(MRN)),
         "request": {"method": "POST", "url": "Patient"}}]});
    let reply = s.post("", &bundle)?;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(total(&s, "Patient?_summary=count")?, 1);

    // A profile the server does not know is not enforced (a warning at most).
    let reply = s.post(
        "Patient",
        &patient(json!([{"system": "http://other", "value": "3"}]), Some("http://example.org/unknown")),
    )?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    Ok(())
}

#[test]
fn required_profiles_are_enforced_and_listed() -> TestResult {
    let s = start("profiles-required")?;
    let reply = s.post("Practitioner", &json!({"resourceType": "Practitioner", "active": true}))?;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("`name`")), "{}", reply.body);
    let reply = s.post("Practitioner", &json!({"resourceType": "Practitioner", "name": [{"family": "Doe"}]}))?;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let statement = s.get("metadata")?.json()?;
    let resources = statement["rest"][0]["resource"].as_array().ok_or("resources")?;
    let of = |t: &str| resources.iter().find(|r| r["type"] == t).cloned().unwrap_or(Value::Null);
    assert_eq!(of("Practitioner")["supportedProfile"], json!([NAMED]));
    assert!(of("Patient").get("supportedProfile").is_none());
    let operations = of("Patient")["operation"].as_array().cloned().unwrap_or_default();
    assert!(operations.iter().any(|o| o["name"] == "validate"), "{operations:?}");
    Ok(())
}

#[test]
fn a_structure_definition_posted_through_the_api_is_used() -> TestResult {
    let s = start("profiles-api")?;
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "meta": {"profile": [NOTED]}});
    // Not known yet: accepted.
    assert_eq!(s.post("Observation", &observation)?.status, 201);
    // Posted: enforced at once, on writes and by `$validate`.
    let reply = s.post("StructureDefinition", &noted_profile())?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let stored_id = reply.json()?["id"].as_str().ok_or("id")?.to_owned();
    let reply = s.post("Observation", &observation)?;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let mut noted = observation.clone();
    noted["note"] = json!([{"text": "seen"}]);
    assert_eq!(s.post("Observation", &noted)?.status, 201);
    let plain = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let reply = s.post(&format!("Observation/$validate?profile={NOTED}"), &plain)?;
    assert!(errors(&reply.json()?).iter().any(|e| e.contains("`note`")), "{}", reply.body);

    // Changed through the API: the next write sees the change (nothing kept from before).
    let mut relaxed = noted_profile();
    relaxed["id"] = json!(stored_id);
    relaxed["differential"]["element"][0]["min"] = json!(0);
    let reply = s.put(&format!("StructureDefinition/{stored_id}"), &relaxed)?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(s.post("Observation", &observation)?.status, 201);
    Ok(())
}

#[test]
fn a_package_that_cannot_be_read_stops_the_start() -> TestResult {
    if fhirgate_e2e::backend() == "remote" {
        return Ok(());
    }
    let dir = temp_dir("profiles-bad-package")?;
    write_package(&dir, "broken-1.0.0", &[("StructureDefinition-broken.json", b"{not json".to_vec())])?;
    let mut child = Command::new(fhirgate_e2e::binary()?)
        .arg("serve")
        .env("FHIRGATE_LISTEN", format!("127.0.0.1:{}", fhirgate_e2e::free_port()?))
        .env("FHIRGATE_DATA_DIR", &dir)
        .env("FHIRGATE_PACKAGES", dir.join("packages"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill()?;
            return Err("the server started with a broken package".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    assert!(!status.success());
    assert!(
        stderr.contains("fhir.packages")
            && stderr.contains("broken-1.0.0.tgz")
            && stderr.contains("StructureDefinition-broken.json"),
        "{stderr}"
    );
    Ok(())
}

/// With `fhir.references_must_exist`, `$validate` requires the target of a relative reference to
/// exist (stored, or in the Bundle validated); without it, a reference to nothing is no error.
#[test]
fn validate_requires_reference_targets_to_exist_when_configured() -> TestResult {
    let dir = temp_dir("profiles-references-exist")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_REFERENCES_MUST_EXIST", "true")])?;
    s.put_resource(&json!({"resourceType": "Patient", "id": "present"}))?;
    let observation = |subject: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": subject}})
    };
    let validate = |s: &Server, body: &Value| -> TestResult<Vec<String>> {
        let reply = s.post("Observation/$validate", body)?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        Ok(errors(&reply.json()?))
    };
    assert_eq!(validate(&s, &observation("Patient/present"))?, Vec::<String>::new());
    let missing = validate(&s, &observation("Patient/absent"))?;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].starts_with("Observation.subject:") && missing[0].contains("Patient/absent"), "{missing:?}");
    let mut in_bundle = observation("Patient/inside");
    in_bundle["id"] = json!("o");
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Observation/o", "resource": in_bundle},
        {"fullUrl": "http://example.org/fhir/Patient/inside", "resource": {"resourceType": "Patient", "id": "inside"}}]});
    let reply = s.post("Bundle/$validate", &bundle)?;
    assert_eq!((reply.status, errors(&reply.json()?)), (200, Vec::<String>::new()), "{}", reply.body);

    let default = start("profiles-references-default")?;
    assert_eq!(validate(&default, &observation("Patient/absent"))?, Vec::<String>::new(), "not asked for: no error");
    Ok(())
}
