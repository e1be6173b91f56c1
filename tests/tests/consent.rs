//! End-to-end: patient consent (the shipped `consent` set on top of `microsoft-roles`) through
//! the real binary, on each store. A patient's Consent denying one practitioner hides that
//! patient's data from them on read (404), vread, search (totals and `_summary=count` honest),
//! `_include` / `_revinclude`, compartment search, history, and batch entries, and from no one
//! else; a deny written now applies to the next request and is gone with its Consent;
//! break-glass by a `breakGlass` principal reads through it, audited as a consent override, and
//! by no one else. The same through a remote target (Consents read from the remote with the
//! gateway's credentials), where counts are refused as for any data-dependent decision.

use std::time::Duration;

use fhirgate_e2e::idp::{Idp, Key};
use fhirgate_e2e::topology::{self, Credentials, idp_token, remote_target, route};
use fhirgate_e2e::{Reply, Server, TestResult, backend, temp_dir};
use serde_json::{Value, json};

pub fn consent(id: &str, patient: &str, provision: Value) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": provision})
}

/// A root permit with one nested deny for `actor` (`Practitioner/x`).
pub fn deny_for(actor: &str) -> Value {
    json!({"type": "permit", "provision": [{"type": "deny", "actor": [{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
        "reference": {"reference": actor}}]}]})
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": format!("Patient/{patient}")}})
}

fn ok(r: &Reply, what: &str) -> TestResult {
    if r.status == 200 || r.status == 201 { Ok(()) } else { Err(format!("{what}: {} {}", r.status, r.body).into()) }
}

fn ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some(format!("{}/{}", e["resource"]["resourceType"].as_str()?, e["resource"]["id"].as_str()?)))
        .collect();
    ids.sort();
    ids
}

pub fn consent_server(name: &str) -> TestResult<Server> {
    Server::start_with(&temp_dir(name)?, &[("FHIRGATE_POLICY_SETS", "microsoft-roles,consent")])
}

#[test]
fn a_consent_deny_hides_the_patients_data_from_that_actor_only() -> TestResult {
    let s = consent_server("consent-e2e")?;
    for (path, body) in [
        ("Patient/p1", json!({"resourceType": "Patient", "id": "p1"})),
        ("Patient/p2", json!({"resourceType": "Patient", "id": "p2"})),
        ("Observation/o1", observation("o1", "p1")),
        ("Observation/o2", observation("o2", "p2")),
    ] {
        ok(&s.put(path, &body)?, path)?;
    }
    let manager = s.mint(&["--role", "globalAdmin", "--role", "consentManager", "--sub", "manager"])?;
    let put_consent = |id: &str, body: &Value| -> TestResult {
        let r = s.send_as(Some(&manager), "PUT", &format!("Consent/{id}"), Some(body.to_string().as_bytes()), &[])?;
        ok(&r, id)
    };
    let r = s.put("Consent/c1", &consent("c1", "p1", deny_for("Practitioner/dr-x")))?;
    assert_eq!(r.status, 403, "only consent managers write Consents: {}", r.body);
    put_consent("c1", &consent("c1", "p1", deny_for("Practitioner/dr-x")))?;
    let dr_x = s.mint(&["--role", "globalReader", "--sub", "dr-x", "--fhir-user", "Practitioner/dr-x"])?;
    let dr_y = s.mint(&["--role", "globalReader", "--sub", "dr-y", "--fhir-user", "Practitioner/dr-y"])?;
    let get = |token: &str, path: &str| s.send_as(Some(token), "GET", path, None, &[]);
    let remote = backend() == "remote";
    for path in ["Observation/o1", "Patient/p1", "Observation/o2"] {
        assert_eq!(get(&dr_y, path)?.status, 200, "dr-y {path}");
    }

    // Read, vread, history of the instance: as if missing.
    for path in ["Observation/o1", "Patient/p1", "Observation/o1/_history/1", "Observation/o1/_history"] {
        let r = get(&dr_x, path)?;
        assert_eq!(r.status, 404, "dr-x {path}: {}", r.body);
    }
    assert_eq!(get(&dr_x, "Observation/o2")?.status, 200);
    assert_eq!(get(&dr_x, "Consent/c1")?.status, 404, "nor the Consent that denies it");
    assert_eq!(get(&dr_y, "Consent/c1")?.status, 200);

    // Searches, totals and counts. Through a remote target a client whose decisions depend on
    // the data gets no total and no `_summary=count` (the remote's count would include the rest).
    let r = get(&dr_x, "Observation?_total=accurate")?;
    ok(&r, "search")?;
    let bundle = r.json()?;
    assert_eq!(ids(&bundle), ["Observation/o2"], "{}", r.body);
    let all = get(&dr_x, "?_type=Patient,Observation&_total=accurate")?.json()?;
    assert_eq!(ids(&all), ["Observation/o2", "Patient/p2"], "{all}");
    assert_eq!(ids(&get(&dr_x, "Observation?subject=Patient/p1")?.json()?), Vec::<String>::new());
    if remote {
        assert_eq!(get(&dr_x, "Observation?_summary=count")?.status, 403);
    } else {
        assert_eq!(bundle["total"], 1, "{}", r.body);
        assert_eq!(all["total"], 2);
        let count = get(&dr_x, "Observation?_summary=count")?.json()?;
        assert_eq!(count["total"], 1, "{count}");
        assert_eq!(get(&dr_x, "Observation?subject=Patient/p1&_summary=count")?.json()?["total"], 0);
        assert_eq!(get(&dr_y, "Observation?_summary=count")?.json()?["total"], 2);
    }

    // Includes and reverse includes.
    let included = get(&dr_x, "Observation?_include=Observation:subject")?.json()?;
    assert_eq!(ids(&included), ["Observation/o2", "Patient/p2"], "{included}");
    let reverse = get(&dr_x, "Patient?_revinclude=Observation:subject")?.json()?;
    assert_eq!(ids(&reverse), ["Observation/o2", "Patient/p2"], "{reverse}");
    let seen = get(&dr_y, "Patient?_revinclude=Observation:subject")?.json()?;
    assert_eq!(seen["entry"].as_array().map(Vec::len), Some(4), "{seen}");

    // Compartment search and type history.
    let compartment = get(&dr_x, "Patient/p1/Observation")?.json()?;
    assert_eq!(ids(&compartment), Vec::<String>::new(), "{compartment}");
    let history = get(&dr_x, "Observation/_history")?.json()?;
    assert_eq!(ids(&history), ["Observation/o2"], "{history}");

    // Batch entries are decided like requests (a batch needs a writer's role).
    let writer = s.mint(&["--role", "globalWriter", "--sub", "dr-x", "--fhir-user", "Practitioner/dr-x"])?;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/o1"}},
        {"request": {"method": "GET", "url": "Observation/o2"}},
        {"request": {"method": "GET", "url": "Observation?subject=Patient/p1&_total=accurate"}}]});
    let r = s.send_as(Some(&writer), "POST", "", Some(batch.to_string().as_bytes()), &[])?;
    ok(&r, "batch")?;
    let answer = r.json()?;
    assert!(answer["entry"][0]["response"]["status"].as_str().is_some_and(|s| s.starts_with("404")), "{answer}");
    assert!(answer["entry"][1]["response"]["status"].as_str().is_some_and(|s| s.starts_with("200")), "{answer}");
    assert_eq!(ids(&answer["entry"][2]["resource"]), Vec::<String>::new(), "{answer}");

    // A writer named in a deny cannot write the patient's data either.
    let body = observation("o1", "p1").to_string();
    let r = s.send_as(Some(&writer), "PUT", "Observation/o1", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "{}", r.body);
    let new = observation("o9", "p1").to_string();
    assert_eq!(s.send_as(Some(&writer), "POST", "Observation", Some(new.as_bytes()), &[])?.status, 403);

    // A deny written now applies to the next request; deleting it lifts it.
    put_consent("c2", &consent("c2", "p2", deny_for("Practitioner/dr-y")))?;
    assert_eq!(get(&dr_y, "Observation/o2")?.status, 404);
    assert_eq!(ids(&get(&dr_y, "Observation")?.json()?), ["Observation/o1"]);
    assert_eq!(s.send_as(Some(&manager), "DELETE", "Consent/c2", None, &[])?.status, 204);
    assert_eq!(get(&dr_y, "Observation/o2")?.status, 200);
    // So does a Consent made inactive.
    let mut inactive = consent("c1", "p1", deny_for("Practitioner/dr-x"));
    inactive["status"] = json!("inactive");
    put_consent("c1", &inactive)?;
    assert_eq!(get(&dr_x, "Observation/o1")?.status, 200);
    put_consent("c1", &consent("c1", "p1", deny_for("Practitioner/dr-x")))?;
    assert_eq!(get(&dr_x, "Observation/o1")?.status, 404);
    break_glass(&s)
}

/// Break-glass: through for a `breakGlass` principal with a reason, audited; not without the
/// role, not without the header, never for writes.
fn break_glass(s: &Server) -> TestResult {
    let er_doc = |role: &str| {
        s.mint(&["--role", role, "--role", "breakGlass", "--sub", "er-doc", "--fhir-user", "Practitioner/dr-x"])
    };
    let glass = er_doc("globalReader")?;
    let plain = s.mint(&["--role", "globalReader", "--sub", "dr-x", "--fhir-user", "Practitioner/dr-x"])?;
    let reason = [("X-Break-Glass", "unconscious in the ER"), ("X-Request-Id", "consent-glass-1")];
    assert_eq!(s.send_as(Some(&glass), "GET", "Observation/o1", None, &[])?.status, 404, "no header, no override");
    assert_eq!(s.send_as(Some(&plain), "GET", "Observation/o1", None, &reason)?.status, 404, "no role, no override");
    let r = s.send_as(Some(&glass), "GET", "Observation/o1", None, &reason)?;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.send_as(Some(&glass), "GET", "Observation?_total=accurate", None, &reason)?;
    assert_eq!(ids(&r.json()?), ["Observation/o1", "Observation/o2"], "{}", r.body);
    let body = observation("o1", "p1").to_string();
    let writer = er_doc("globalWriter")?;
    let r = s.send_as(Some(&writer), "PUT", "Observation/o1", Some(body.as_bytes()), &reason)?;
    assert_eq!(r.status, 403, "break-glass reads only: {}", r.body);
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log_text();
    let event = log
        .lines()
        .find(|l| l.contains("consent-override") && l.contains("consent-glass-1") && l.contains("Observation"))
        .ok_or("no consent-override audit event")?;
    assert!(event.contains("WARN") && event.contains("unconscious in the ER") && event.contains("er-doc"), "{event}");
    assert!(event.contains("\\\"c1\\\"") || event.contains("\"c1\""), "names the Consent overridden: {event}");
    Ok(())
}

#[test]
fn the_consent_testscript_passes() -> TestResult {
    use fhirgate_conformance::run::result::Status;
    use fhirgate_conformance::run::{Options, Runner};
    let s = consent_server("consent-testscript")?;
    if backend() == "remote" {
        return Ok(());
    }
    let script = fhirgate_e2e::manifest_dir().join("../conformance/testscripts/should/consent.json");
    let mut options = Options::new(&s.base());
    options.bearer = Some(s.mint(&["--role", "globalAdmin", "--role", "consentManager"])?);
    let reader = |fhir_user: &str, glass: bool| {
        let mut args = vec!["--role", "globalReader", "--fhir-user", fhir_user];
        if glass {
            args.extend(["--role", "breakGlass"]);
        }
        s.mint(&args)
    };
    options.variables.insert("deniedToken".into(), reader("Practitioner/testscript-denied", false)?);
    options.variables.insert("otherToken".into(), reader("Practitioner/testscript-other", false)?);
    options.variables.insert("breakGlassToken".into(), reader("Practitioner/testscript-denied", true)?);
    let results = Runner::new(options).run_paths(&[script])?;
    assert_eq!(results.len(), 1);
    for result in &results {
        let line = fhirgate_conformance::report::summary::line(result);
        println!("{line}");
        assert!(matches!(result.status(), Status::Pass), "{line}: {result:?}");
    }
    Ok(())
}

/// A remote target reached with the caller's own token (`passthrough`) could leave out the very
/// Consent that denies the caller: no Consent is read there, and every decision on a patient's
/// data counts as denied by consent, even an administrator's; data of no patient is unaffected.
#[test]
fn through_passthrough_credentials_patient_data_fails_closed() -> TestResult {
    if backend() != "sqlite" {
        return Ok(()); // the topology is the same on every store
    }
    let key = Key::rsa("k1")?;
    let idp = Idp::start(&[&key])?;
    let remote = topology::start_trusting(&temp_dir("consent-pass-remote")?, &idp, "", &[])?;
    let toml =
        [remote_target("remote", &remote.base(), &Credentials::Passthrough, ""), route("all", "", &["remote"], "")]
            .concat();
    let sets = [("FHIRGATE_POLICY_SETS", "microsoft-roles,consent")];
    let s = topology::start_trusting(&temp_dir("consent-pass")?, &idp, &toml, &sets)?;
    let admin = idp_token(&idp, &key, &["globalAdmin", "consentManager"], json!({}))?;
    let patient = json!({"resourceType": "Patient", "id": "pp1"}).to_string();
    let r = remote.send_as(Some(&admin), "PUT", "Patient/pp1", Some(patient.as_bytes()), &[])?;
    ok(&r, "written on the remote directly")?;
    assert_eq!(s.send_as(Some(&admin), "GET", "Patient/pp1", None, &[])?.status, 404, "fails closed");
    let r = s.send_as(Some(&admin), "PUT", "Patient/pp1", Some(patient.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "{}", r.body);
    let org = json!({"resourceType": "Organization", "id": "org1", "name": "x"}).to_string();
    ok(&s.send_as(Some(&admin), "PUT", "Organization/org1", Some(org.as_bytes()), &[])?, "Organization/org1")?;
    assert_eq!(s.send_as(Some(&admin), "GET", "Organization/org1", None, &[])?.status, 200);
    Ok(())
}

#[test]
fn policy_explain_decides_with_the_consents_given() -> TestResult {
    if backend() != "sqlite" {
        return Ok(()); // no store involved
    }
    let s = consent_server("consent-explain")?;
    let resource = s.data_dir.join("o1.json");
    std::fs::write(&resource, observation("o1", "p1").to_string())?;
    let stored = s.data_dir.join("c1.json");
    std::fs::write(&stored, consent("c1", "p1", deny_for("Practitioner/dr-x")).to_string())?;
    let (resource, stored) = (resource.to_str().ok_or("path")?, stored.to_str().ok_or("path")?);
    let explain = |fhir_user: &str, consents: &[&str]| -> TestResult<String> {
        let claims = json!({"sub": "u", "roles": ["globalReader"], "fhirUser": fhir_user}).to_string();
        let mut args = vec!["policy", "explain", "GET", "Observation/o1", "--claims", &claims, "--resource", resource];
        for c in consents {
            args.extend(["--consent", c]);
        }
        args.extend(["--set", "microsoft-roles", "--set", "consent"]);
        let out = s.cli(&args)?;
        Ok(String::from_utf8(out.stdout)? + &String::from_utf8(out.stderr)?)
    };
    let denied = explain("Practitioner/dr-x", &[stored])?;
    assert!(denied.contains("decision:  deny") && denied.contains("consent:consent-deny"), "{denied}");
    assert!(denied.contains("consent:   deny [\"c1\"]"), "{denied}");
    let other = explain("Practitioner/dr-y", &[stored])?;
    assert!(other.contains("decision:  allow") && other.contains("consent:   permit"), "{other}");
    let without = explain("Practitioner/dr-x", &[])?;
    assert!(without.contains("decision:  allow") && without.contains("consent:   none"), "{without}");
    Ok(())
}
