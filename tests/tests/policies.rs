//! End-to-end: Cedar policies through the real binary: SMART patient scopes confined to the
//! token patient's compartment on every read, write and history entry; the example policies
//! (restricted resources, audited break-glass); hot reload on file change and SIGHUP, where a
//! broken set is rejected and the old one keeps serving; the `fhirgate policy` tools.

use std::time::Duration;

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

fn put(s: &Server, path: &str, body: &Value) -> TestResult {
    let r = s.put(path, body)?;
    assert!(r.status == 200 || r.status == 201, "{path}: {} {}", r.status, r.body);
    Ok(())
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": format!("Patient/{patient}")}})
}

fn seed(s: &Server) -> TestResult {
    put(s, "Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?;
    put(s, "Patient/p2", &json!({"resourceType": "Patient", "id": "p2"}))?;
    put(s, "Observation/o1", &observation("o1", "p1"))?;
    put(s, "Observation/o2", &observation("o2", "p2"))
}

#[test]
fn smart_patient_scopes_stay_in_the_patients_compartment() -> TestResult {
    // Denied reads say 403 here (`deny_reads_as_not_found = false`), to tell them from missing ones.
    let s = Server::start_with(&temp_dir("smart-patient")?, &[("FHIRGATE_POLICY_DENY_READS_AS_NOT_FOUND", "false")])?;
    seed(&s)?;
    let reader = s.mint(&["--scope", "patient/Observation.rs patient/Patient.rs", "--patient", "p1"])?;
    let get = |path: &str| s.send_as(Some(&reader), "GET", path, None, &[]);
    assert_eq!(get("Observation/o1")?.status, 200);
    assert_eq!(get("Patient/p1")?.status, 200);
    let r = get("Observation/o2")?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.outcome_issues()?[0]["code"], "forbidden");
    assert_eq!(get("Patient/p2")?.status, 403);
    assert_eq!(get("Observation/o2?_summary=true")?.status, 403, "decided on the whole resource");
    assert_eq!(get("Observation/o2?_elements=status")?.status, 403);
    assert_eq!(s.send_as(Some(&reader), "HEAD", "Observation/o2", None, &[])?.status, 403);
    assert_eq!(get("Observation/o2/_history/1")?.status, 403, "vread");
    let r = s.send_as(Some(&reader), "GET", "Observation/o2", None, &[("If-None-Match", "W/\"1\"")])?;
    assert_eq!(r.status, 403, "not even `not modified`");
    let r = s.send_as(Some(&reader), "GET", "Observation/o1", None, &[("If-None-Match", "W/\"1\"")])?;
    assert_eq!(r.status, 304);
    assert_eq!(get("Condition/c1")?.status, 403, "no scope for the type");
    let body = observation("o3", "p1").to_string();
    assert_eq!(
        s.send_as(Some(&reader), "PUT", "Observation/o3", Some(body.as_bytes()), &[])?.status,
        403,
        "rs: no writes"
    );
    // History: only the patient's own entries.
    let history = get("Observation/_history")?;
    assert_eq!(history.status, 200, "{}", history.body);
    let entries = history.json()?["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{}", history.body);
    assert_eq!(entries[0]["resource"]["id"], "o1");

    let writer = s.mint(&["--scope", "patient/Observation.cruds", "--patient", "p1"])?;
    let send = |method: &str, path: &str, body: &Value| {
        s.send_as(Some(&writer), method, path, Some(body.to_string().as_bytes()), &[])
    };
    assert_eq!(send("POST", "Observation", &observation("new", "p1"))?.status, 201);
    assert_eq!(send("POST", "Observation", &observation("new", "p2"))?.status, 403, "create for another patient");
    assert_eq!(send("PUT", "Observation/o2", &observation("o2", "p1"))?.status, 403, "the stored one is p2's");
    assert_eq!(send("PUT", "Observation/o1", &observation("o1", "p2"))?.status, 403, "moving it to p2");
    assert_eq!(send("PUT", "Observation/o1", &observation("o1", "p1"))?.status, 200);
    assert_eq!(s.send_as(Some(&writer), "DELETE", "Observation/o2", None, &[])?.status, 403);
    assert_eq!(s.get("Observation/o2")?.status, 200, "still there");
    assert_eq!(s.send_as(Some(&writer), "DELETE", "Observation/o1", None, &[])?.status, 204);
    Ok(())
}

#[test]
fn denied_reads_answer_404_by_default() -> TestResult {
    let s = Server::start("hide-reads")?;
    seed(&s)?;
    let reader = s.mint(&["--scope", "patient/Observation.rs", "--patient", "p1"])?;
    let r = s.send_as(Some(&reader), "GET", "Observation/o2", None, &[])?;
    assert_eq!(r.status, 404, "{}", r.body);
    let body = observation("o9", "p2").to_string();
    let r = s.send_as(Some(&reader), "PUT", "Observation/o9", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "writes still say forbidden");
    Ok(())
}

#[test]
fn searches_count_and_page_only_what_may_be_seen() -> TestResult {
    let s = Server::start("smart-search")?;
    seed(&s)?;
    for n in 0..5 {
        put(&s, &format!("Observation/p2-{n}"), &observation(&format!("p2-{n}"), "p2"))?;
    }
    let reader = s.mint(&["--scope", "patient/Observation.rs patient/Patient.rs", "--patient", "p1"])?;
    let get = |path: &str| -> TestResult<Value> {
        let r = s.send_as(Some(&reader), "GET", path, None, &[])?;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    let bundle = get("Observation?_count=1")?;
    assert_eq!(bundle["total"], 1, "the total counts only the patient's own observation");
    assert_eq!(bundle["entry"][0]["resource"]["id"], "o1");
    assert!(bundle["link"].as_array().is_some_and(|l| !l.iter().any(|x| x["relation"] == "next")), "one page");
    assert_eq!(get("Observation?_summary=count")?["total"], 1, "counting reveals nothing more");
    assert_eq!(get("Observation?_total=accurate&_count=10")?["total"], 1);
    // Included resources outside the compartment are left out too.
    let included = get("Observation?_id=o1&_include=Observation:subject")?;
    let ids: Vec<&str> =
        included["entry"].as_array().ok_or("entries")?.iter().filter_map(|e| e["resource"]["id"].as_str()).collect();
    assert_eq!(ids, ["o1", "p1"]);
    let admin_total = s.get("Observation?_summary=count")?.json()?["total"].clone();
    assert_eq!(admin_total, 7, "an admin sees them all");
    Ok(())
}

/// The audit events of one request.
fn audit_events(s: &Server, request_id: &str) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(200));
    s.log_text().lines().filter(|l| l.contains("authorization") && l.contains(request_id)).map(str::to_string).collect()
}

#[test]
fn an_allow_that_no_policy_could_revise_on_the_data_is_decided_once() -> TestResult {
    let s = Server::start("covers-data")?;
    seed(&s)?;
    // globalAdmin (the harness's token) is allowed by a permit that reads no data, and the
    // default sets have no forbid: one decision for the whole search.
    let r = s.send("GET", "Observation?_include=Observation:subject", None, &[("X-Request-Id", "admin-search")])?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()?["entry"].as_array().map(Vec::len), Some(4), "{}", r.body);
    let events = audit_events(&s, "admin-search");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains(r#""phase":"type""#) && events[0].contains(r#""covers_data":true"#), "{events:#?}");
    // A transaction: the bundle and each entry, each once at type level.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("t1", "p1"), "request": {"method": "PUT", "url": "Observation/t1"}},
        {"resource": observation("t2", "p2"), "request": {"method": "POST", "url": "Observation"}}]});
    let r = s.send("POST", "", Some(bundle.to_string().as_bytes()), &[("X-Request-Id", "admin-tx")])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = audit_events(&s, "admin-tx");
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(events.iter().all(|e| e.contains(r#""phase":"type""#)), "{events:#?}");
    // A SMART user scope reads `context.smartNeeded`, which follows the data: every match is decided.
    let reader = s.mint(&["--scope", "user/Observation.rs user/Patient.rs"])?;
    let r = s.send_as(Some(&reader), "GET", "Observation", None, &[("X-Request-Id", "user-search")])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = audit_events(&s, "user-search");
    assert_eq!(events.iter().filter(|e| e.contains(r#""phase":"outgoing""#)).count(), 4, "{events:#?}");
    assert!(events.iter().all(|e| e.contains(r#""covers_data":false"#)), "{events:#?}");
    Ok(())
}

#[test]
fn a_patch_is_decided_on_what_it_would_write() -> TestResult {
    let s = Server::start("smart-patch")?;
    seed(&s)?;
    let writer = s.mint(&["--scope", "patient/Observation.cruds", "--patient", "p1"])?;
    let patch = |ops: Value| {
        let headers = [("Content-Type", "application/json-patch+json")];
        s.send_as(Some(&writer), "PATCH", "Observation/o1", Some(ops.to_string().as_bytes()), &headers)
    };
    let inside = json!([{ "op": "add", "path": "/status", "value": "amended" }]);
    assert_eq!(patch(inside)?.status, 200, "a change inside the patient's compartment");
    let away = json!([{ "op": "replace", "path": "/subject/reference", "value": "Patient/p2" }]);
    let r = patch(away)?;
    assert_eq!(r.status, 403, "moving the observation to another patient: {}", r.body);
    assert_eq!(s.get("Observation/o1")?.json()?["subject"]["reference"], "Patient/p1", "nothing was written");
    Ok(())
}

/// A server with the Microsoft roles and the shipped example policy on restricted resources
/// (copied to a policy directory): not the whole examples set, whose read-only hours would make
/// a write's outcome depend on the time the test runs.
fn restricted_server(name: &str) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/sets/examples/restricted.cedar");
    std::fs::copy(shipped, policies.join("restricted.cedar"))?;
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

#[test]
fn restricted_resources_and_audited_break_glass() -> TestResult {
    let s = restricted_server("restricted")?;
    let restricted = json!({"resourceType": "Patient", "id": "vip",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}});
    let r = s.put("Patient/vip", &restricted)?;
    assert_eq!(r.status, 403, "even an admin needs restrictedReader to write it: {}", r.body);
    let admin = s.mint(&["--role", "globalAdmin", "--role", "restrictedReader"])?;
    let r = s.send_as(Some(&admin), "PUT", "Patient/vip", Some(restricted.to_string().as_bytes()), &[])?;
    assert_eq!(r.status, 201, "{}", r.body);
    let reader = s.mint(&["--role", "globalReader", "--sub", "dr-who"])?;
    assert_eq!(s.send_as(Some(&reader), "GET", "Patient/vip", None, &[])?.status, 404, "denied: as if missing");
    let glass = [("X-Break-Glass", "patient unconscious"), ("X-Request-Id", "glass-1")];
    let r = s.send_as(Some(&reader), "GET", "Patient/vip", None, &glass)?;
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log_text();
    let event = log
        .lines()
        .find(|l| l.contains("break-glass") && l.contains("glass-1") && l.contains("outgoing"))
        .ok_or("no break-glass audit event")?;
    assert!(event.contains("WARN") && event.contains("patient unconscious") && event.contains("dr-who"), "{event}");
    Ok(())
}

const READERS: &str = "permit (principal in Fhir::Role::\"custom\", action in Fhir::Action::\"reads\", resource);\n";

fn policy_server(name: &str, reload_seconds: &str) -> TestResult<(Server, std::path::PathBuf)> {
    let dir = temp_dir(name)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("custom.cedar"), READERS)?;
    let s = Server::start_with(
        &dir,
        &[
            ("FHIRGATE_POLICY_SETS", ""),
            ("FHIRGATE_POLICY_DIR", policies.to_str().ok_or("path")?),
            ("FHIRGATE_POLICY_RELOAD_SECONDS", reload_seconds),
            // A denied read says 403, so the tests tell the policies in force apart.
            ("FHIRGATE_POLICY_DENY_READS_AS_NOT_FOUND", "false"),
        ],
    )?;
    Ok((s, policies))
}

fn wait_for(mut check: impl FnMut() -> TestResult<bool>) -> TestResult<bool> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if check()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(false)
}

#[test]
fn policies_reload_on_change_and_a_broken_set_keeps_the_old_one() -> TestResult {
    let (s, policies) = policy_server("reload", "1")?;
    let custom = s.mint(&["--role", "custom"])?;
    let status = || -> TestResult<u16> { Ok(s.send_as(Some(&custom), "GET", "Patient/x", None, &[])?.status) };
    assert_eq!(status()?, 404, "allowed; nothing there");
    assert_eq!(s.send_as(Some(&custom), "DELETE", "Patient/x", None, &[])?.status, 403);

    std::fs::write(policies.join("broken.cedar"), "forbid (principal, action, resource)\nwhen { resource.nope };\n")?;
    assert!(wait_for(|| Ok(s.log_text().contains("policy reload rejected")))?, "{}", s.log_text());
    assert!(s.log_text().contains("broken.cedar:2:"), "file:line in the log: {}", s.log_text());
    assert_eq!(status()?, 404, "the old policies still serve");

    std::fs::write(policies.join("broken.cedar"), "forbid (principal, action, resource);\n")?;
    assert!(wait_for(|| Ok(status()? == 403))?, "the fixed set is in force");
    Ok(())
}

#[test]
fn sighup_reloads_the_policies() -> TestResult {
    let (s, policies) = policy_server("sighup", "3600")?;
    let custom = s.mint(&["--role", "custom"])?;
    let status = || -> TestResult<u16> { Ok(s.send_as(Some(&custom), "GET", "Patient/x", None, &[])?.status) };
    assert_eq!(status()?, 404);
    std::fs::write(policies.join("custom.cedar"), "// nobody\n")?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status()?, 404, "no reload without the signal");
    s.signal("HUP")?;
    assert!(wait_for(|| Ok(status()? == 403))?, "reloaded on SIGHUP: {}", s.log_text());
    assert_eq!(s.get("health")?.status, 200, "SIGHUP does not stop the server");
    Ok(())
}

#[test]
fn policy_tools_validate_test_and_explain() -> TestResult {
    let s = Server::start("policy-tools")?;
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    // Every shipped set's test cases pass through `fhirgate policy test`.
    let mut sets: Vec<String> = std::fs::read_dir(fhirgate_e2e::manifest_dir().join("../policies/sets"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    sets.sort();
    assert!(sets.len() >= 3, "{sets:?}");
    for set in sets {
        let out = s.cli(&["policy", "test", &format!("policies/sets/{set}")])?;
        assert!(out.status.success(), "{set}: {}", text(&out));
        assert!(text(&out).contains(" 0 failed"), "{}", text(&out));
    }
    let out = s.cli(&["policy", "validate"])?;
    assert!(out.status.success(), "{}", text(&out));
    let broken = temp_dir("broken-set")?;
    std::fs::write(
        broken.join("a.cedar"),
        "permit (principal, action, resource)\n  when { principal.nmae == \"x\" };\n",
    )?;
    let out = s.cli(&["policy", "validate", broken.to_str().ok_or("path")?])?;
    assert!(!out.status.success());
    assert!(text(&out).contains("a.cedar:2:"), "file:line:column: {}", text(&out));
    let out =
        s.cli(&["policy", "explain", "GET", "Patient/1", "--claims", r#"{"sub":"u","roles":["globalReader"]}"#])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("allow") && text(&out).contains("microsoft-roles:globalReader"), "{}", text(&out));
    // From a token and a resource: the data-level decision of a patient-scoped token.
    let token = s.mint(&["--scope", "patient/Observation.rs", "--patient", "p1"])?;
    let resource = temp_dir("explain")?.join("obs.json");
    std::fs::write(&resource, observation("o2", "p2").to_string())?;
    let path = resource.to_str().ok_or("path")?;
    let out = s.cli(&["policy", "explain", "GET", "Observation/o2", "--token", &token, "--resource", path])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("decision:  deny") && text(&out).contains("data level"), "{}", text(&out));
    // The generated schema: one entity type per resource type, search parameters as attributes;
    // a policy reading one without narrowing the type fails validation at its place.
    let out = s.cli(&["policy", "schema"])?;
    assert!(out.status.success(), "{}", text(&out));
    let schema = String::from_utf8_lossy(&out.stdout);
    assert!(schema.contains("entity Observation = {") && schema.contains("\"value-quantity\"?: QuantityRange"));
    let untyped = temp_dir("untyped-set")?;
    std::fs::write(
        untyped.join("codes.cedar"),
        "forbid (principal, action, resource)\n  when { resource.code.contains(\"7917-8\") };\n",
    )?;
    let out = s.cli(&["policy", "validate", untyped.to_str().ok_or("path")?])?;
    assert!(!out.status.success() && text(&out).contains("codes.cedar:2:"), "{}", text(&out));
    std::fs::write(
        untyped.join("codes.cedar"),
        "forbid (principal, action, resource is Fhir::Observation)\n  when { resource.code.contains(\"7917-8\") };\n",
    )?;
    let out = s.cli(&["policy", "validate", untyped.to_str().ok_or("path")?])?;
    assert!(out.status.success(), "{}", text(&out));
    // Explained on a resource's data: the code decides.
    let hiv = temp_dir("explain-hiv")?.join("obs.json");
    let coded = json!({"resourceType": "Observation", "id": "h", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "7917-8"}]}});
    std::fs::write(&hiv, coded.to_string())?;
    let claims = r#"{"sub":"u","roles":["globalReader"]}"#;
    let hiv = hiv.to_str().ok_or("path")?;
    let args = ["policy", "explain", "GET", "Observation/h", "--claims", claims, "--resource", hiv];
    let out = s.cli(&[&args[..], &["--set", "microsoft-roles", "--set", "examples"]].concat())?;
    assert!(text(&out).contains("decision:  deny") && text(&out).contains("examples:hiv-results"), "{}", text(&out));
    Ok(())
}

#[test]
fn batches_and_transactions_are_their_own_actions() -> TestResult {
    let s = Server::start("batch-action")?;
    let batch = json!({"resourceType": "Bundle", "type": "batch"}).to_string();
    let reader = s.mint(&["--role", "globalReader"])?;
    let headers = [("X-Request-Id", "batch-1")];
    assert_eq!(s.send_as(Some(&reader), "POST", "", Some(batch.as_bytes()), &headers)?.status, 403);
    let r = s.send("POST", "", Some(batch.as_bytes()), &[])?;
    assert_eq!(r.status, 200, "allowed for an admin: {}", r.body);
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log_text();
    assert!(log.lines().any(|l| l.contains("batch-1") && l.contains("\"action\":\"batch\"")), "{log}");
    Ok(())
}

#[test]
fn every_bundle_entry_is_decided_on_its_own() -> TestResult {
    let s = restricted_server("bundle-entries")?;
    let restricted = |id: &str| {
        json!({"resourceType": "Patient", "id": id,
               "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}})
    };
    let admin = s.mint(&["--role", "globalAdmin", "--role", "restrictedReader"])?;
    let vip = restricted("vip").to_string();
    assert_eq!(s.send_as(Some(&admin), "PUT", "Patient/vip", Some(vip.as_bytes()), &[])?.status, 201);
    put(&s, "Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?;
    let writer = s.mint(&["--role", "globalWriter"])?;

    // A batch: the restricted read answers 404 in its place (as a missing one would), the
    // restricted write 403; the rest runs.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/vip"}},
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"resource": {"resourceType": "Patient", "id": "new"}, "request": {"method": "PUT", "url": "Patient/new"}},
        {"resource": restricted("vip2"), "request": {"method": "PUT", "url": "Patient/vip2"}},
        {"request": {"method": "GET", "url": "Patient?_id=vip,p1"}},
    ]});
    let r = s.send_as(Some(&writer), "POST", "", Some(batch.to_string().as_bytes()), &[])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json()?;
    let statuses: Vec<&str> = answer["entry"]
        .as_array()
        .ok_or("no entries")?
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["404 Not Found", "200 OK", "201 Created", "403 Forbidden", "200 OK"]);
    let found = &answer["entry"][4]["resource"];
    let ids: Vec<&str> = found["entry"]
        .as_array()
        .ok_or("no search entries")?
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert_eq!(ids, ["p1"], "the search inside the batch loses what may not be seen");
    assert_eq!(found["total"], 1, "and its total counts only what may be seen");
    assert_eq!(s.send_as(Some(&admin), "GET", "Patient/vip2", None, &[])?.status, 404, "the denied write did not run");

    // A transaction with one denied entry does not run at all.
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "t1"}, "request": {"method": "PUT", "url": "Patient/t1"}},
        {"request": {"method": "DELETE", "url": "Patient/vip"}},
    ]});
    let r = s.send_as(Some(&writer), "POST", "", Some(transaction.to_string().as_bytes()), &[])?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.outcome_issues()?[0]["diagnostics"].as_str().unwrap_or("").contains("Bundle.entry[1]"));
    assert_eq!(s.send_as(Some(&admin), "GET", "Patient/t1", None, &[])?.status, 404, "nothing of it ran");
    assert_eq!(s.send_as(Some(&admin), "GET", "Patient/vip", None, &[])?.status, 200);
    Ok(())
}
