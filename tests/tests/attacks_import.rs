//! End-to-end attacks on `$import`: every imported resource is decided as the importing client's
//! write would be. Under `microsoft-roles` with the example forbids `tenant-isolation` and
//! `restricted`, an importer of tenant `tA` may not overwrite a resource of tenant `tB` (it stays
//! as it was), import resources tagged for `tB` or labelled restricted, or ask for an initial
//! load (whose refusal of a non-empty type would count what it may not see); its own lines go in.

use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

fn put(s: &Server, resource: &Value) -> TestResult {
    let path = format!("{}/{}", resource["resourceType"].as_str().unwrap_or(""), resource["id"].as_str().unwrap_or(""));
    let reply = s.put(&path, resource)?;
    if reply.status != 201 && reply.status != 200 {
        return Err(format!("PUT {path}: {} {}", reply.status, reply.body).into());
    }
    Ok(())
}

fn kick_off(s: &Server, token: &str, mode: &str, url: &str) -> TestResult<(u16, Option<String>)> {
    let reply = fhirgate_e2e::bulk::import_patients(s, token, mode, url)?;
    let status = reply.header("Content-Location").map(|l| {
        let rest = l.split_once("://").map_or(l, |(_, r)| r);
        rest.split_once('/').map_or("", |(_, p)| p).to_owned()
    });
    Ok((reply.status, status))
}

#[test]
fn an_importer_writes_only_what_its_policies_let_it_write() -> TestResult {
    if fhirgate_e2e::bulk::runs_remote()? {
        return Ok(());
    }
    let dir = temp_dir("attacks-import")?;
    let policies = dir.join("policies");
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&policies)?;
    std::fs::create_dir_all(&inputs)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    for file in ["tenant-isolation.cedar", "restricted.cedar"] {
        std::fs::copy(shipped.join(file), policies.join(file))?;
    }
    let mut s = Server::start_with(
        &dir,
        &[
            ("FHIRGATE_POLICY_SETS", "microsoft-roles"),
            ("FHIRGATE_POLICY_DIR", policies.to_str().ok_or("path")?),
            ("FHIRGATE_IMPORT_INPUT_DIRS", inputs.to_str().ok_or("path")?),
        ],
    )?;
    s.token = Some(s.mint(&["--role", "globalAdmin", "--role", "restrictedReader", "--tenant", "tB"])?);
    let tb = json!({ "tag": [{ "system": "urn:fhirgate:tenant", "code": "tB" }] });
    let hidden = json!({ "resourceType": "Patient", "id": "hidden", "meta": tb, "name": [{ "family": "Untouched" }] });
    put(&s, &hidden)?;
    let before = s.get("Patient/hidden")?.json()?;

    let attacker = s.mint(&["--role", "globalImporter", "--tenant", "tA"])?;
    let file = inputs.join("attack.ndjson");
    let lines = [
        json!({ "resourceType": "Patient", "id": "hidden", "name": [{ "family": "Overwritten" }] }),
        json!({ "resourceType": "Patient", "id": "planted", "meta": tb, "name": [{ "family": "Planted" }] }),
        json!({ "resourceType": "Patient", "id": "secret", "name": [{ "family": "Secret" }],
            "meta": { "security": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" }] } }),
        json!({ "resourceType": "Patient", "id": "own", "name": [{ "family": "Own" }] }),
    ];
    std::fs::write(&file, lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n"))?;
    let url = file.display().to_string();

    let (code, _) = kick_off(&s, &attacker, "InitialLoad", &url)?;
    assert_eq!(code, 403, "an initial load needs a grant on every resource");
    let (code, status) = kick_off(&s, &attacker, "IncrementalLoad", &url)?;
    assert_eq!(code, 202);
    let status = status.ok_or("no status URL")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        let reply = s.send_as(Some(&attacker), "GET", &status, None, &[])?;
        if reply.status == 200 {
            break reply.json()?;
        }
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert!(Instant::now() < deadline, "the import did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(manifest["output"][0]["count"], 1, "{manifest}");
    assert_eq!(manifest["error"][0]["count"], 3, "{manifest}");

    assert_eq!(s.get("Patient/hidden")?.json()?, before, "the other tenant's patient is untouched");
    assert_eq!(s.get("Patient/planted")?.status, 404);
    assert_eq!(s.get("Patient/secret")?.status, 404);
    assert_eq!(s.get("Patient/own")?.status, 200);
    Ok(())
}

/// Two server processes on one store (replicas): another client's job is a 404 on the replica
/// that did not start it too (status, error report, cancellation), and stays as it was.
#[test]
fn another_clients_job_is_not_found_on_another_replica() -> TestResult {
    if fhirgate_e2e::bulk::runs_remote()? || !fhirgate_e2e::store_outlives_the_server() {
        return Ok(());
    }
    let dir = temp_dir("attacks-import-replicas")?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let lines = [json!({"resourceType": "Patient", "id": "r1"}).to_string(), "not json".to_owned()];
    std::fs::write(inputs.join("p.ndjson"), lines.join("\n") + "\n")?;
    let env = [
        ("FHIRGATE_IMPORT_INPUT_DIRS", inputs.to_str().ok_or("path")?),
        ("FHIRGATE_BASE_URL", "http://fhir.test"),
        ("FHIRGATE_EXPORT_LEASE_SECONDS", "1"),
    ];
    let first = Server::start_with(&dir, &env)?;
    let second = Server::start_with(&dir, &env)?;
    let owner = first.mint(&["--role", "globalImporter", "--sub", "owner"])?;
    let other = second.mint(&["--role", "globalImporter", "--sub", "other"])?;
    let url = inputs.join("p.ndjson").display().to_string();
    let (code, status) = kick_off(&first, &owner, "IncrementalLoad", &url)?;
    assert_eq!(code, 202);
    let status = status.ok_or("no Content-Location")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while second.send_as(Some(&owner), "GET", &status, None, &[])?.status == 202 {
        assert!(Instant::now() < deadline, "the import did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    for (method, path) in [("GET", status.clone()), ("GET", format!("{status}&errors=0")), ("DELETE", status.clone())] {
        let reply = second.send_as(Some(&other), method, &path, None, &[])?;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    let manifest = second.send_as(Some(&owner), "GET", &status, None, &[])?;
    assert_eq!(manifest.status, 200, "the other client's cancel must not touch it: {}", manifest.body);
    let errors = second.send_as(Some(&owner), "GET", &format!("{status}&errors=0"), None, &[])?;
    assert_eq!((errors.status, errors.body.lines().count()), (200, 1), "{}", errors.body);
    Ok(())
}

/// An initial load writes only new resources, many per store statement: a resource another
/// client creates while the load runs (after the kick-off found the type empty) is neither
/// overwritten nor versioned by the load; its line is reported as a conflict, and the other
/// lines of the same store batch still go in.
#[test]
fn an_initial_load_never_overwrites_a_resource_created_while_it_runs() -> TestResult {
    if fhirgate_e2e::bulk::runs_remote()? {
        return Ok(());
    }
    let dir = temp_dir("attacks-import-race")?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    // Patients first, long enough for the other client's create to land before the
    // Observations are reached.
    const PATIENTS: usize = 4000;
    let patients: Vec<String> =
        (0..PATIENTS).map(|n| json!({"resourceType": "Patient", "id": format!("p{n}")}).to_string()).collect();
    std::fs::write(inputs.join("p.ndjson"), patients.join("\n"))?;
    let observation = |id: &str, text: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": text},
               "subject": {"reference": "Patient/p1"}})
    };
    let observations: Vec<String> =
        ["o1", "raced", "o2"].iter().map(|id| observation(id, "imported").to_string()).collect();
    std::fs::write(inputs.join("o.ndjson"), observations.join("\n"))?;
    let s = Server::start_with(&dir, &[("FHIRGATE_IMPORT_INPUT_DIRS", inputs.to_str().ok_or("path")?)])?;
    let importer = s.mint(&["--role", "globalAdmin", "--sub", "importer"])?;
    let other = s.mint(&["--role", "globalAdmin", "--sub", "other"])?;
    let input = |t: &str, file: &str| {
        json!({"name": "input", "part": [{"name": "type", "valueString": t},
               {"name": "url", "valueUri": inputs.join(file).display().to_string()}]})
    };
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "mode", "valueString": "InitialLoad"}, input("Patient", "p.ndjson"), input("Observation", "o.ndjson")]});
    let kicked = s.send_as(
        Some(&importer),
        "POST",
        "$import",
        Some(body.to_string().as_bytes()),
        &[("Prefer", "respond-async")],
    )?;
    let status = fhirgate_e2e::bulk::status_path(&s, &kicked)?;
    let raced = observation("raced", "the other client's");
    let created = s.send_as(Some(&other), "PUT", "Observation/raced", Some(raced.to_string().as_bytes()), &[])?;
    assert_eq!(created.status, 201, "the other client's create lands while the Patients load: {}", created.body);
    let manifest = fhirgate_e2e::bulk::manifest(&s, &importer, &status)?;
    let outputs = manifest["output"].as_array().ok_or("no output")?;
    let counts: Vec<(&str, u64)> =
        outputs.iter().map(|o| (o["type"].as_str().unwrap_or(""), o["count"].as_u64().unwrap_or(0))).collect();
    assert_eq!(counts, [("Patient", PATIENTS as u64), ("Observation", 2)], "{manifest}");
    let errors = manifest["error"].as_array().ok_or("no error list")?;
    let reported: u64 = errors.iter().map(|e| e["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(reported, 1, "{manifest}");
    let stored = s.send_as(Some(&other), "GET", "Observation/raced", None, &[])?.json()?;
    assert_eq!(stored["code"]["text"], "the other client's", "{stored}");
    assert_eq!(stored["meta"]["versionId"], "1", "not versioned by the load: {stored}");
    for id in ["o1", "o2"] {
        assert_eq!(s.send_as(Some(&other), "GET", &format!("Observation/{id}"), None, &[])?.status, 200);
    }
    Ok(())
}

/// An initial load writes many rows per store statement or prepared statement (SQLite: one
/// single-row statement per table shape, values bound): values made to look like SQL, quotes,
/// placeholders and a 20 KB string are stored and searched as the data they are, and leave the store
/// whole: every line goes in, each found by its own value only, and the store keeps working. (Not
/// larger: Cosmos DB's one-partition layout writes a resource's version, current document and index
/// entries in one 2 MB transactional batch, which a resource with two 100 KB values already passes;
/// such a line fails alone with `not-supported`, the others go on.)
#[test]
fn an_initial_loads_values_stay_data() -> TestResult {
    if fhirgate_e2e::bulk::runs_remote()? {
        return Ok(());
    }
    let dir = temp_dir("attacks-import-values")?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let long = "x".repeat(20_000);
    let families = [
        "O'Brien'); DROP TABLE resource_version; --",
        "\"; DELETE FROM search_current WHERE 1=1; --",
        "Robert' OR '1'='1",
        "?1 ?2 $1 :name @p",
        long.as_str(),
    ];
    let lines: Vec<String> = families
        .iter()
        .enumerate()
        .map(|(n, family)| {
            json!({"resourceType": "Patient", "id": format!("v{n}"), "name": [{"family": family}],
                   "identifier": [{"system": "urn:x'", "value": family}]})
            .to_string()
        })
        .collect();
    std::fs::write(inputs.join("p.ndjson"), lines.join("\n"))?;
    let mut s = Server::start_with(&dir, &[("FHIRGATE_IMPORT_INPUT_DIRS", inputs.to_str().ok_or("path")?)])?;
    let importer = s.mint(&["--role", "globalAdmin"])?;
    s.token = Some(importer.clone());
    let url = inputs.join("p.ndjson").display().to_string();
    let kicked = fhirgate_e2e::bulk::import_patients(&s, &importer, "InitialLoad", &url)?;
    assert_eq!(kicked.status, 202, "{}", kicked.body);
    let status = fhirgate_e2e::bulk::status_path(&s, &kicked)?;
    let manifest = fhirgate_e2e::bulk::manifest(&s, &importer, &status)?;
    assert_eq!(manifest["output"][0]["count"], families.len(), "{manifest}");
    for (n, family) in families.iter().enumerate() {
        let stored = s.get(&format!("Patient/v{n}"))?.json()?;
        assert_eq!(stored["name"][0]["family"], *family, "stored as sent");
        if family.len() < 1_000 {
            let query = format!("Patient?family:exact={}&_elements=id", urlencode(family));
            let found = s.get(&query)?.json()?;
            let ids: Vec<&str> = found["entry"]
                .as_array()
                .map_or(vec![], |e| e.iter().filter_map(|e| e["resource"]["id"].as_str()).collect());
            assert_eq!(ids, [format!("v{n}")], "{query}: {found}");
        }
    }
    let all = s.get("Patient?_summary=count")?.json()?;
    assert_eq!(all["total"], families.len(), "nothing deleted or added: {all}");
    assert_eq!(s.put("Patient/after", &json!({"resourceType": "Patient", "id": "after"}))?.status, 201);
    Ok(())
}

/// `value` percent-encoded for a query string.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
