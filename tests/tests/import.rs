//! End-to-end: `$import` through the real binary, on every store: an initial load and an
//! incremental load of NDJSON files from a directory the operator allowed, with bad lines (not
//! JSON, an unknown type, an invalid resource, a resource of another type) reported one
//! OperationOutcome per line while every other line is imported and searchable; inputs outside
//! the allowed places refused; a job only its client may poll; cancellation; a server killed
//! in the middle of an import that, restarted, finishes it without a duplicate; and two server
//! processes on one store (replicas): a job kicked off on one is polled and cancelled from the
//! other, and finished by the other when the first dies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

/// A server allowed to import from `<dir>/inputs`, and that directory.
fn server(name: &str) -> TestResult<(Server, PathBuf)> {
    let dir = temp_dir(name)?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let s = start(&dir, &inputs)?;
    Ok((s, inputs))
}

/// The base URL is fixed so that the development issuer (named by it) and so the owner of a job
/// stay the same across a restart on another port, as they do in a deployment; a job whose
/// worker stopped is taken over after a second.
fn start(dir: &Path, inputs: &Path) -> TestResult<Server> {
    Server::start_with(
        dir,
        &[
            ("FHIRGATE_IMPORT_INPUT_DIRS", inputs.to_str().ok_or("path")?),
            ("FHIRGATE_BASE_URL", "http://fhir.test"),
            ("FHIRGATE_EXPORT_LEASE_SECONDS", "1"),
        ],
    )
}

fn parameters(mode: &str, inputs: &[(&str, String)]) -> Value {
    let mut parameter = vec![
        json!({ "name": "inputFormat", "valueString": "application/fhir+ndjson" }),
        json!({ "name": "mode", "valueString": mode }),
    ];
    for (t, url) in inputs {
        parameter.push(json!({ "name": "input", "part": [
            { "name": "type", "valueString": t }, { "name": "url", "valueUri": url } ] }));
    }
    json!({ "resourceType": "Parameters", "parameter": parameter })
}

/// Kicks off an import as `token`; the status path, or the refusal's status and body.
fn kick_off(s: &Server, token: Option<&str>, body: &Value) -> TestResult<Result<String, (u16, String)>> {
    let reply = s.send_as(
        token.or(s.token.as_deref()),
        "POST",
        "$import",
        Some(body.to_string().as_bytes()),
        &[("Prefer", "respond-async")],
    )?;
    if reply.status != 202 {
        return Ok(Err((reply.status, reply.body)));
    }
    let location = reply.header("Content-Location").ok_or("no Content-Location")?;
    Ok(Ok(path_of(location)?))
}

/// The path of an absolute URL below its base (`http://host:port/`), whatever the host.
fn path_of(url: &str) -> TestResult<String> {
    let rest = url.split_once("://").ok_or("not an absolute URL")?.1;
    Ok(rest.split_once('/').map_or("", |(_, path)| path).to_owned())
}

/// Polls until the manifest.
fn manifest(s: &Server, status: &str) -> TestResult<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let reply = s.get(status)?;
        match reply.status {
            200 => return reply.json(),
            202 => assert!(reply.header("X-Progress").is_some(), "a running job tells its progress"),
            other => return Err(format!("polling {status}: {other} {}", reply.body).into()),
        }
        if Instant::now() > deadline {
            return Err("the import did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(s: &Server, query: &str) -> TestResult<u64> {
    let reply = s.get(&format!("{query}{}_summary=count", if query.contains('?') { "&" } else { "?" }))?;
    reply.json()?["total"].as_u64().ok_or_else(|| format!("no total: {}", reply.body).into())
}

fn write_lines(path: &Path, lines: &[String]) -> TestResult {
    std::fs::write(path, lines.join("\n") + "\n")?;
    Ok(())
}

fn patient(id: &str, family: &str) -> String {
    json!({ "resourceType": "Patient", "id": id, "name": [{ "family": family }] }).to_string()
}

#[test]
fn initial_and_incremental_loads_report_bad_lines_and_import_the_rest() -> TestResult {
    let (s, inputs) = server("import-modes")?;
    let patients = inputs.join("patients.ndjson");
    write_lines(
        &patients,
        &[
            patient("p1", "Importone"),
            "{ this is not json".into(),
            patient("p2", "Importtwo"),
            json!({ "resourceType": "Nonsense", "id": "x" }).to_string(),
            json!({ "resourceType": "Patient", "id": "bad", "gender": 42 }).to_string(),
            json!({ "resourceType": "Patient", "name": [{ "family": "Importnoid" }] }).to_string(),
            json!({ "resourceType": "Observation", "id": "misfiled", "status": "final", "code": { "text": "x" } })
                .to_string(),
            patient("p3", "Importthree"),
        ],
    )?;
    let observations = inputs.join("observations.ndjson");
    let lines: Vec<String> = (1..=5)
        .map(|n| {
            json!({ "resourceType": "Observation", "id": format!("o{n}"), "status": "final",
                "code": { "text": "imported" }, "subject": { "reference": "Patient/p1" } })
            .to_string()
        })
        .collect();
    write_lines(&observations, &lines)?;

    let body = parameters(
        "InitialLoad",
        &[("Patient", patients.display().to_string()), ("Observation", format!("file://{}", observations.display()))],
    );
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("kick-off refused: {e:?}"))?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["output"][0]["count"], 4, "{done}");
    assert_eq!(done["output"][1]["count"], 5, "{done}");
    assert_eq!(done["error"].as_array().map(Vec::len), Some(1), "{done}");
    assert_eq!(done["error"][0]["count"], 4);
    let errors_url = done["error"][0]["url"].as_str().ok_or("no error url")?;
    let errors = s.get(&path_of(errors_url)?)?;
    assert_eq!(errors.status, 200);
    let reported: Vec<Value> = errors.body.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(reported.len(), 4, "{}", errors.body);
    for (outcome, line) in reported.iter().zip([2, 4, 5, 7]) {
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        let said = outcome["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert!(said.contains(&format!("line {line}:")), "line {line}: {said}");
    }

    // Imported like any write: searchable, versioned, indexed.
    assert_eq!(count(&s, "Patient")?, 4);
    assert_eq!(count(&s, "Patient?family=Importnoid")?, 1);
    assert_eq!(count(&s, "Observation?subject=Patient/p1")?, 5);
    assert_eq!(s.get("Patient/p1")?.json()?["meta"]["versionId"], "1");
    assert_eq!(s.get("Observation/misfiled")?.status, 404);

    // An initial load into types that hold resources is refused.
    let again = parameters("InitialLoad", &[("Patient", patients.display().to_string())]);
    assert_eq!(kick_off(&s, None, &again)?.err().map(|e| e.0), Some(400));

    // Incremental: a changed resource gets a new version, an unchanged one keeps its own, a new
    // one is created.
    let changes = inputs.join("changes.ndjson");
    write_lines(&changes, &[patient("p1", "Importchanged"), patient("p2", "Importtwo"), patient("p9", "Importnine")])?;
    let body = parameters("IncrementalLoad", &[("Patient", changes.display().to_string())]);
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("incremental refused: {e:?}"))?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["output"][0]["count"], 3, "{done}");
    assert_eq!(done["error"], json!([]));
    let p1 = s.get("Patient/p1")?.json()?;
    assert_eq!(
        (p1["meta"]["versionId"].as_str(), p1["name"][0]["family"].as_str()),
        (Some("2"), Some("Importchanged"))
    );
    assert_eq!(s.get("Patient/p2")?.json()?["meta"]["versionId"], "1");
    assert_eq!(count(&s, "Patient?family=Importnine")?, 1);
    Ok(())
}

/// An imported line meets the checks of any write and has their effects: a Patient that fails
/// the profile it declares fails its line; an imported SearchParameter is searchable without a
/// restart, and one whose expression is refused fails its line.
#[test]
fn imported_lines_meet_the_checks_of_any_write() -> TestResult {
    let (s, inputs) = server("import-write-checks")?;
    const NEEDS_ID: &str = "http://example.org/fhir/StructureDefinition/needs-identifier";
    const EYE: &str = "http://example.org/fhir/StructureDefinition/eye-colour";
    let profile = json!({
        "resourceType": "StructureDefinition", "url": NEEDS_ID, "name": "NeedsIdentifier", "status": "active",
        "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [{"id": "Patient.identifier", "path": "Patient.identifier", "min": 1}]}
    });
    assert_eq!(s.post("StructureDefinition", &profile)?.status, 201);
    let parameter = |code: &str, expression: &str| {
        json!({ "resourceType": "SearchParameter", "id": code,
            "url": format!("http://example.org/fhir/SearchParameter/{code}"), "name": code, "status": "active",
            "description": "imported", "code": code, "base": ["Patient"], "type": "token", "expression": expression })
        .to_string()
    };
    let parameters_file = inputs.join("parameters.ndjson");
    write_lines(
        &parameters_file,
        &[parameter("eye", &format!("Patient.extension.where(url='{EYE}').value")), parameter("broken", "Patient.(((")],
    )?;
    let patients = inputs.join("profiled.ndjson");
    let profiled = |id: &str, identifier: bool| {
        let mut p = json!({ "resourceType": "Patient", "id": id, "meta": { "profile": [NEEDS_ID] },
            "extension": [{ "url": EYE, "valueCode": "blue" }] });
        if identifier {
            p["identifier"] = json!([{ "system": "urn:t", "value": id }]);
        }
        p.to_string()
    };
    write_lines(&patients, &[profiled("conforms", true), profiled("lacks", false)])?;
    let body = parameters(
        "InitialLoad",
        &[("SearchParameter", parameters_file.display().to_string()), ("Patient", patients.display().to_string())],
    );
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("kick-off refused: {e:?}"))?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["output"][0]["count"], 1, "{done}");
    assert_eq!(done["output"][1]["count"], 1, "{done}");
    for (n, (line, said)) in [(2, "`expression` is not valid FHIRPath"), (2, "identifier")].into_iter().enumerate() {
        let url = done["error"][n]["url"].as_str().ok_or("no error file")?;
        let errors = s.get(&path_of(url)?)?.body;
        assert!(errors.contains(&format!("line {line}:")) && errors.contains(said), "{errors}");
    }
    assert_eq!(s.get("Patient/lacks")?.status, 404);
    assert_eq!(s.get("SearchParameter/broken")?.status, 404);

    // The imported parameter is in force in this process.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = s.get_with("Patient?eye=blue", &[("Prefer", "handling=strict")])?;
        if reply.status == 200 {
            let bundle = reply.json()?;
            let found: Vec<&str> = bundle["entry"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str())
                .collect();
            assert_eq!(found, ["conforms"], "{bundle}");
            break;
        }
        assert!(Instant::now() < deadline, "the imported parameter never came in force: {}", reply.body);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn inputs_jobs_and_decisions_are_guarded() -> TestResult {
    let (s, inputs) = server("import-guards")?;
    let good = inputs.join("good.ndjson");
    write_lines(&good, &[patient("g1", "Guarded")])?;
    let outside = inputs.parent().ok_or("no parent")?.join("outside.ndjson");
    write_lines(&outside, &[patient("o1", "Outside")])?;

    // Inputs outside the allowed directory, or at URLs not allowed, are refused before anything runs.
    for url in [
        outside.display().to_string(),
        format!("{}/../outside.ndjson", inputs.display()),
        "/etc/passwd".into(),
        "https://data.example/x.ndjson".into(),
        "relative.ndjson".into(),
    ] {
        let refused = kick_off(&s, None, &parameters("IncrementalLoad", &[("Patient", url.clone())]))?;
        assert_eq!(refused.err().map(|e| e.0), Some(400), "{url}");
    }
    assert_eq!(s.get("Patient/o1")?.status, 404);
    // Without `Prefer: respond-async`, without inputs, with an unknown mode.
    let body = parameters("IncrementalLoad", &[("Patient", good.display().to_string())]);
    assert_eq!(s.post("$import", &body)?.status, 400);
    assert_eq!(kick_off(&s, None, &parameters("IncrementalLoad", &[]))?.err().map(|e| e.0), Some(400));
    let odd = parameters("Sideways", &[("Patient", good.display().to_string())]);
    assert_eq!(kick_off(&s, None, &odd)?.err().map(|e| e.0), Some(400));

    // Cedar decides the kick-off: a reader may not import.
    let reader = s.mint(&["--role", "globalReader"])?;
    assert_eq!(kick_off(&s, Some(&reader), &body)?.err().map(|e| e.0), Some(403));

    // A job is its client's: another token gets a 404 for its status and errors.
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("{e:?}"))?;
    let importer = s.mint(&["--role", "globalImporter", "--sub", "someone-else"])?;
    assert_eq!(s.send_as(Some(&importer), "GET", &status, None, &[])?.status, 404);
    assert_eq!(s.send_as(Some(&importer), "DELETE", &status, None, &[])?.status, 404);
    manifest(&s, &status)?;
    assert_eq!(s.get("$import-status?job=not-a-job")?.status, 404);

    // Cancelled: the status URL is gone.
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("{e:?}"))?;
    assert_eq!(s.delete(&status)?.status, 202);
    assert_eq!(s.get(&status)?.status, 404);
    Ok(())
}

#[test]
fn an_import_killed_midway_finishes_after_a_restart_without_duplicates() -> TestResult {
    let dir = temp_dir("import-crash")?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let total = 6_000;
    // No ids: each line is imported under an id derived from its place, so a line imported
    // twice (after the last saved progress, before the kill) is the same resource.
    let lines: Vec<String> = (0..total)
        .map(|n| json!({ "resourceType": "Patient", "name": [{ "family": format!("Crash{n}") }] }).to_string())
        .collect();
    let file = inputs.join("many.ndjson");
    write_lines(&file, &lines)?;
    let s = start(&dir, &inputs)?;
    let body = parameters("InitialLoad", &[("Patient", file.display().to_string())]);
    let status = kick_off(&s, None, &body)?.map_err(|e| format!("{e:?}"))?;
    // Kill it once some, not all, are in.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let imported = count(&s, "Patient")?;
        if imported > 0 && imported < total {
            break;
        }
        if imported >= total || Instant::now() > deadline {
            return Err(format!("could not catch the import midway ({imported})").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);

    if !fhirgate_e2e::store_outlives_the_server() {
        return Ok(());
    }
    let s = start(&dir, &inputs)?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["output"][0]["count"], total, "{done}");
    assert_eq!(done["error"], json!([]));
    assert_eq!(count(&s, "Patient")?, total, "every line once");
    assert_eq!(count(&s, "Patient?family:exact=Crash5999")?, 1);
    Ok(())
}

/// `n` Patients without ids, family names `<stem><n>`.
fn nameless(path: &Path, stem: &str, n: usize) -> TestResult {
    let lines: Vec<String> = (0..n)
        .map(|i| json!({ "resourceType": "Patient", "name": [{ "family": format!("{stem}{i}") }] }).to_string())
        .collect();
    write_lines(path, &lines)
}

/// Waits until some, not all, of `total` Patients named `<stem>…` are in.
fn midway(s: &Server, stem: &str, total: u64) -> TestResult<u64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let imported = count(s, &format!("Patient?family={stem}"))?;
        if imported > 0 && imported < total {
            return Ok(imported);
        }
        if imported >= total || Instant::now() > deadline {
            return Err(format!("could not catch the import midway ({imported})").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_job_is_polled_cancelled_and_resumed_from_another_process() -> TestResult {
    if !fhirgate_e2e::store_outlives_the_server() {
        return Ok(());
    }
    let dir = temp_dir("import-replicas")?;
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    let total = 6_000;
    nameless(&inputs.join("cancelled.ndjson"), "Cancelled", total)?;
    nameless(&inputs.join("resumed.ndjson"), "Resumed", total)?;
    let first = start(&dir, &inputs)?;
    let second = start(&dir, &inputs)?;

    // Kicked off on the first, its progress is seen from the second, which cancels it: the
    // first's worker stops at its next checkpoint, and nothing brings the job back.
    let file = inputs.join("cancelled.ndjson").display().to_string();
    let status = kick_off(&first, None, &parameters("InitialLoad", &[("Patient", file)]))?
        .map_err(|e| format!("kick-off refused: {e:?}"))?;
    midway(&first, "Cancelled", total as u64)?;
    // The second sees the checkpoints the first saves.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let polled = second.get(&status)?;
        assert_eq!(polled.status, 202, "{}", polled.body);
        if polled.header("X-Progress").is_some_and(|p| !p.contains(" 0 resources")) {
            break;
        }
        assert!(Instant::now() < deadline, "no progress seen from the second process");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(second.delete(&status)?.status, 202);
    assert_eq!(first.get(&status)?.status, 404);
    assert_eq!(second.get(&status)?.status, 404);
    // The run stops within a batch or two; then nothing more is written.
    std::thread::sleep(Duration::from_secs(3));
    let stopped = count(&first, "Patient?family=Cancelled")?;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&first, "Patient?family=Cancelled")?, stopped, "the cancelled job kept writing");
    assert!(stopped < total as u64, "the cancelled job ran to its end");
    assert_eq!(second.get(&status)?.status, 404, "a late checkpoint revived the cancelled job");

    // Kicked off on the first, which dies midway: the second takes the job over once its lease
    // runs out and finishes it, every line once.
    let file = inputs.join("resumed.ndjson").display().to_string();
    let status = kick_off(&first, None, &parameters("IncrementalLoad", &[("Patient", file)]))?
        .map_err(|e| format!("kick-off refused: {e:?}"))?;
    midway(&first, "Resumed", total as u64)?;
    first.signal("KILL")?;
    drop(first);
    let done = manifest(&second, &status)?;
    assert_eq!(done["output"][0]["count"], total, "{done}");
    assert_eq!(done["error"], json!([]));
    assert_eq!(count(&second, "Patient?family=Resumed")?, total as u64, "every line once");
    Ok(())
}

/// Serves `body` to every request for `path` (404 otherwise) on a loopback port; its base URL.
fn serve_ndjson(path: &'static str, body: String) -> TestResult<String> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let found = request_line.split_whitespace().nth(1) == Some(path);
            let (status, text) = if found { ("200 OK", body.as_str()) } else { ("404 Not Found", "") };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/fhir+ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = (&stream).write_all(reply.as_bytes());
        }
    });
    Ok(base)
}

#[test]
fn http_inputs_are_fetched_only_under_an_allowed_prefix() -> TestResult {
    let lines = [patient("h1", "Httpone"), "not json".into(), patient("h2", "Httptwo")];
    let base = serve_ndjson("/exports/patients.ndjson", lines.join("\n") + "\n")?;
    let dir = temp_dir("import-http")?;
    let allowed = format!("{base}/exports/");
    let s = Server::start_with(&dir, &[("FHIRGATE_IMPORT_INPUT_URLS", allowed.as_str())])?;
    let url = format!("{base}/exports/patients.ndjson");
    let status = kick_off(&s, None, &parameters("IncrementalLoad", &[("Patient", url)]))?
        .map_err(|e| format!("kick-off refused: {e:?}"))?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["output"][0]["count"], 2, "{done}");
    assert_eq!(done["error"][0]["count"], 1, "{done}");
    assert_eq!(count(&s, "Patient?family=Httptwo")?, 1);
    // Another path of the same server, or a missing file under the prefix.
    let outside = format!("{base}/private/patients.ndjson");
    assert_eq!(
        kick_off(&s, None, &parameters("IncrementalLoad", &[("Patient", outside)]))?.err().map(|e| e.0),
        Some(400)
    );
    let missing = format!("{base}/exports/missing.ndjson");
    let status = kick_off(&s, None, &parameters("IncrementalLoad", &[("Patient", missing)]))?
        .map_err(|e| format!("kick-off refused: {e:?}"))?;
    let done = manifest(&s, &status)?;
    assert_eq!(done["error"][0]["count"], 1, "an input that cannot be fetched is one error: {done}");
    Ok(())
}
