//! End-to-end: custom SearchParameters through the real binary, on every store. One posted
//! through the API indexes the resources already stored (reindex) and those written after it,
//! is searchable once that is done (strict handling refuses it until then, and after it is
//! deleted), is listed in the CapabilityStatement, and is still in force after a restart. One
//! from a package (`fhir.packages`) is searchable too. Bad definitions are refused with a 400
//! OperationOutcome and nothing is stored.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fhirgate_e2e::{Reply, Server, TestResult, store_outlives_the_server, temp_dir};
use serde_json::{Value, json};

const EYE: &str = "http://example.org/fhir/StructureDefinition/eye-colour";

fn search_parameter(code: &str, base: &str, kind: &str, expression: &str) -> Value {
    json!({
        "resourceType": "SearchParameter",
        "url": format!("http://example.org/fhir/SearchParameter/{code}"),
        "name": code, "status": "active", "description": format!("{code} (test)"),
        "code": code, "base": [base], "type": kind, "expression": expression,
    })
}

fn eye_parameter() -> Value {
    search_parameter("eye", "Patient", "token", &format!("Patient.extension.where(url='{EYE}').value"))
}

fn patient(id: &str, colour: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "extension": [{"url": EYE, "valueCode": colour}]})
}

fn strict(s: &Server, path: &str) -> TestResult<Reply> {
    s.get_with(path, &[("Prefer", "handling=strict")])
}

/// The ids a search finds, once the parameter is ready (strict handling answers 200).
fn ids_when_ready(s: &Server, path: &str) -> TestResult<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = strict(s, path)?;
        if reply.status == 200 {
            let bundle = reply.json()?;
            let mut ids: Vec<String> = bundle["entry"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect();
            ids.sort();
            return Ok(ids);
        }
        assert_eq!(reply.status, 400, "{}", reply.body);
        if Instant::now() > deadline {
            return Err(format!("`{path}` never became usable: {}", reply.body).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_posted_parameter_indexes_what_is_stored_and_what_comes() -> TestResult {
    let dir = temp_dir("search-params")?;
    let mut s = Server::start_with(&dir, &[])?;
    s.put_resource(&patient("old-blue", "blue"))?;
    s.put_resource(&patient("old-green", "green"))?;

    // Before it exists: an unknown parameter.
    assert_eq!(strict(&s, "Patient?eye=blue")?.status, 400);

    let reply = s.post("SearchParameter", &eye_parameter())?;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let sp_id = reply.json()?["id"].as_str().ok_or("id")?.to_owned();
    assert_eq!(ids_when_ready(&s, "Patient?eye=blue")?, ["old-blue"]);

    // New and updated resources are indexed as they are written.
    s.put_resource(&patient("new-blue", "blue"))?;
    s.put_resource(&patient("old-green", "blue"))?;
    assert_eq!(ids_when_ready(&s, "Patient?eye=blue")?, ["new-blue", "old-blue", "old-green"]);
    assert_eq!(ids_when_ready(&s, "Patient?eye:not=blue")?, Vec::<String>::new());
    let reply = s.get("Patient?eye=blue&_summary=count")?;
    assert_eq!(reply.json()?["total"], 3, "{}", reply.body);

    // Listed under the type's searchParam.
    let capabilities = s.get("metadata")?.json()?;
    let patient_rest = capabilities["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Patient").cloned())
        .ok_or("no Patient in the CapabilityStatement")?;
    let listed = patient_rest["searchParam"].as_array().ok_or("no searchParam")?;
    assert!(listed.iter().any(|p| p["name"] == "eye" && p["type"] == "token"), "{listed:?}");

    // Still in force after a restart (where the store outlives the process).
    if store_outlives_the_server() {
        s.terminate()?;
        s = Server::start_with(&dir, &[])?;
        assert_eq!(ids_when_ready(&s, "Patient?eye=blue")?, ["new-blue", "old-blue", "old-green"]);
    }

    // Deleted: no longer a parameter.
    assert_eq!(s.delete(&format!("SearchParameter/{sp_id}"))?.status, 204);
    let reply = strict(&s, "Patient?eye=blue")?;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let lenient = s.get("Patient?eye=blue")?;
    assert_eq!(lenient.status, 200, "{}", lenient.body);
    Ok(())
}

#[test]
fn bad_definitions_are_refused_and_not_stored() -> TestResult {
    let s = Server::start("search-params-bad")?;
    let cases = [
        (search_parameter("colour", "Nonsense", "token", "Patient.gender"), "Nonsense"),
        (search_parameter("name", "Patient", "string", "Patient.name"), "already has"),
        (search_parameter("colour", "Patient", "token", "Patient.name.where("), "FHIRPath"),
        (search_parameter("colour", "Patient", "token", "Patient.descendants()"), "costly"),
        (search_parameter("colour", "Patient", "special", "Patient.gender"), "special"),
        (search_parameter("colour", "Patient", "token", "Observation.code"), "no part"),
        (search_parameter("_colour", "Patient", "token", "Patient.gender"), "name"),
    ];
    for (resource, expected) in &cases {
        let reply = s.post("SearchParameter", resource)?;
        assert_eq!(reply.status, 400, "{resource}: {}", reply.body);
        let issues = reply.outcome_issues()?;
        assert!(
            issues.iter().any(|i| i["diagnostics"].as_str().is_some_and(|d| d.contains(expected))),
            "{expected}: {}",
            reply.body
        );
    }
    // A PUT is checked the same way.
    let mut bad = search_parameter("colour", "Patient", "token", "Patient.descendants()");
    bad["id"] = json!("bad");
    assert_eq!(s.put("SearchParameter/bad", &bad)?.status, 400);
    let reply = s.get("SearchParameter?_summary=count")?;
    assert_eq!(reply.json()?["total"], 0, "{}", reply.body);
    Ok(())
}

/// Writes `files` as `package/<name>` into `<dir>/packages/<package>.tgz` with the system's `tar`.
fn write_package(dir: &Path, package: &str, files: &[(&str, Value)]) -> TestResult {
    let work = dir.join(format!("{package}-src"));
    std::fs::create_dir_all(work.join("package"))?;
    for (name, content) in files {
        std::fs::write(work.join("package").join(name), serde_json::to_vec(content)?)?;
    }
    std::fs::create_dir_all(dir.join("packages"))?;
    let out = dir.join("packages").join(format!("{package}.tgz"));
    let status = Command::new("tar").arg("czf").arg(&out).arg("-C").arg(&work).arg("package").status()?;
    if !status.success() {
        return Err("tar failed".into());
    }
    Ok(())
}

#[test]
fn a_package_parameter_is_searchable() -> TestResult {
    let dir = temp_dir("search-params-package")?;
    let manifest = json!({"name": "example.search", "version": "1.0.0", "fhirVersions": ["4.0.1"]});
    let parameter = search_parameter("note-text", "Observation", "string", "Observation.note.text");
    write_package(
        &dir,
        "example.search-1.0.0",
        &[("package.json", manifest), ("SearchParameter-note-text.json", parameter)],
    )?;
    let config = dir.join("fhirgate.toml");
    let packages = dir.join("packages");
    std::fs::write(&config, format!("[fhir]\npackages = {:?}\n", packages.to_str().ok_or("path")?))?;
    let s = Server::start_with(&dir, &[("FHIRGATE_CONFIG", config.to_str().ok_or("path")?)])?;
    let observation = |id: &str, note: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
               "note": [{"text": note}]})
    };
    s.put_resource(&observation("o1", "Fasting since midnight"))?;
    s.put_resource(&observation("o2", "After breakfast"))?;
    assert_eq!(ids_when_ready(&s, "Observation?note-text=fasting")?, ["o1"]);
    assert_eq!(ids_when_ready(&s, "Observation?note-text:contains=break")?, ["o2"]);
    Ok(())
}
