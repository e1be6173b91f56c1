//! End-to-end: bulk `$export` (Bulk Data Access IG 2.0) through the real binary, on each store:
//! kick-off, polling, manifest, download and cancellation at system, Patient and Group level;
//! the parameters; a patient token's export holds only its compartment; a server killed in the
//! middle of a job resumes it after a restart, without duplicates.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fhirgate_e2e::bulk::{below_base, download, export_all, keys, kickoff, manifest, runs_remote, status_path};
use fhirgate_e2e::{Server, TestResult, store_outlives_the_server, temp_dir};
use serde_json::{Value, json};

fn put(s: &Server, resource: Value) -> TestResult {
    let path = format!("{}/{}", resource["resourceType"].as_str().ok_or("type")?, resource["id"].as_str().ok_or("id")?);
    let r = s.put(&path, &resource)?;
    if r.status >= 300 {
        return Err(format!("PUT {path}: {} {}", r.status, r.body).into());
    }
    Ok(())
}

fn observation(id: &str, patient: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"coding": [{"system": "urn:t", "code": code}]},
           "subject": {"reference": format!("Patient/{patient}")}})
}

/// Two patients with Observations, a Group holding the first, an Organization.
fn seed(s: &Server) -> TestResult {
    put(s, json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}]}))?;
    put(s, json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Two"}]}))?;
    put(s, observation("o1", "p1", "a"))?;
    put(s, observation("o2", "p1", "b"))?;
    put(s, observation("o3", "p2", "a"))?;
    put(s, json!({"resourceType": "Organization", "id": "org1", "name": "Org"}))?;
    put(
        s,
        json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true,
                  "member": [{"entity": {"reference": "Patient/p1"}}]}),
    )
}

#[test]
fn kick_off_poll_download_at_all_three_levels() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = Server::start("export-levels")?;
    seed(&s)?;
    let admin = s.token.clone().ok_or("no token")?;

    let kicked = kickoff(&s, &admin, "$export")?;
    let status = status_path(&s, &kicked)?;
    let m = manifest(&s, &admin, &status)?;
    assert_eq!(m["requiresAccessToken"], true);
    assert!(m["transactionTime"].as_str().is_some_and(|t| t.contains('T')), "{m}");
    assert_eq!(m["request"], s.url("$export"));
    assert_eq!(m["error"], json!([]));
    let all = download(&s, &admin, &m)?;
    assert_eq!(
        keys(&all),
        [
            "Group/g1",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Organization/org1",
            "Patient/p1",
            "Patient/p2"
        ]
    );

    let patients = export_all(&s, &admin, "Patient/$export")?;
    assert_eq!(
        keys(&patients),
        ["Group/g1", "Observation/o1", "Observation/o2", "Observation/o3", "Patient/p1", "Patient/p2"],
        "Patient level: the Patient compartment's types (a Group is, through its members)"
    );
    let group = export_all(&s, &admin, "Group/g1/$export")?;
    assert_eq!(
        keys(&group),
        ["Group/g1", "Observation/o1", "Observation/o2", "Patient/p1"],
        "the members' compartments only"
    );

    let filtered = export_all(&s, &admin, "$export?_type=Observation,Organization&_typeFilter=Observation%3Fcode%3Da")?;
    assert_eq!(keys(&filtered), ["Observation/o1", "Observation/o3", "Organization/org1"]);
    let since = export_all(&s, &admin, "$export?_since=2999-01-01T00:00:00Z")?;
    assert!(since.is_empty(), "nothing changed since the future: {since:?}");

    // POST with a Parameters body naming patients.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"}]});
    let r = s.send("POST", "Patient/$export", Some(body.to_string().as_bytes()), &[("Prefer", "respond-async")])?;
    let m = manifest(&s, &admin, &status_path(&s, &r)?)?;
    assert_eq!(keys(&download(&s, &admin, &m)?), ["Observation/o3", "Patient/p2"]);

    // A missing Group is a 404, an unknown one's members are nobody's business.
    assert_eq!(kickoff(&s, &admin, "Group/nope/$export")?.status, 404);
    Ok(())
}

/// A file larger than the pieces the server sends it in (1 MB) arrives whole, with the length
/// it declares; HEAD declares the same length and sends nothing.
#[test]
fn a_file_larger_than_a_piece_downloads_whole() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = Server::start("export-large-file")?;
    let admin = s.token.clone().ok_or("no token")?;
    let data = |n: usize| format!("{n:04}").repeat(150_000);
    for n in 0..3 {
        put(
            &s,
            json!({"resourceType": "Binary", "id": format!("b{n}"), "contentType": "text/plain", "data": data(n)}),
        )?;
    }
    let m = manifest(&s, &admin, &status_path(&s, &kickoff(&s, &admin, "$export?_type=Binary")?)?)?;
    let url = m["output"][0]["url"].as_str().ok_or("no output")?;
    let got = s.send_as(Some(&admin), "GET", below_base(&s, url)?, None, &[])?;
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.len() > 1_800_000, "{} bytes", got.body.len());
    assert_eq!(got.header("Content-Length"), Some(got.body.len().to_string().as_str()));
    let mut lines: Vec<Value> = got.body.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    lines.sort_by_key(|l| l["id"].as_str().map(str::to_owned));
    assert_eq!(lines.len(), 3);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["id"], format!("b{n}"));
        assert_eq!(line["data"], data(n), "Binary/b{n} arrived altered");
    }
    let head = s.send_as(Some(&admin), "HEAD", below_base(&s, url)?, None, &[])?;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some(got.body.len().to_string().as_str()));
    assert!(head.body.is_empty());
    Ok(())
}

#[test]
fn cancelling_removes_the_job_and_its_files() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = Server::start("export-cancel")?;
    seed(&s)?;
    let admin = s.token.clone().ok_or("no token")?;
    for level in ["$export", "Patient/$export", "Group/g1/$export"] {
        let status = status_path(&s, &kickoff(&s, &admin, level)?)?;
        let m = manifest(&s, &admin, &status)?;
        let file = m["output"][0]["url"].as_str().ok_or("no file")?.to_owned();
        let file = fhirgate_e2e::bulk::below_base(&s, &file)?.to_owned();
        assert_eq!(s.get(&file)?.status, 200);
        let r = s.delete(&status)?;
        assert_eq!(r.status, 202, "{level}: {}", r.body);
        assert_eq!(s.get(&status)?.status, 404, "{level}: a cancelled job is gone");
        assert_eq!(s.get(&file)?.status, 404, "{level}: and its files");
        assert_eq!(s.delete(&status)?.status, 404);
        let job = status.rsplit('=').next().ok_or("job id")?;
        assert!(!s.data_dir.join("exports").join(job).exists(), "{level}: the files are removed from disk");
    }
    // Cancelling a running job: kicked off and cancelled at once.
    let status = status_path(&s, &kickoff(&s, &admin, "$export")?)?;
    assert_eq!(s.delete(&status)?.status, 202);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.get(&status)?.status, 404);
    Ok(())
}

#[test]
fn bad_kick_offs_are_refused_with_an_operation_outcome() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = Server::start("export-bad")?;
    let admin = s.token.clone().ok_or("no token")?;
    let r = s.get("$export")?;
    assert_eq!(r.status, 400, "no Prefer: respond-async: {}", r.body);
    assert!(r.body.contains("respond-async"), "{}", r.body);
    for bad in [
        "$export?_outputFormat=text/csv",
        "$export?_type=Nope",
        "$export?_since=yesterday",
        "$export?_elements=id",
        "$export?includeAssociatedData=LatestProvenanceResources",
        "$export?_typeFilter=Observation%3Fnope%3D1",
        "Patient/$export?_type=Organization",
        "Observation/$export",
    ] {
        let r = kickoff(&s, &admin, bad)?;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(!r.outcome_issues()?.is_empty(), "{bad}");
    }
    Ok(())
}

#[test]
fn a_patient_token_exports_only_its_compartment() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = Server::start("export-patient")?;
    seed(&s)?;
    let patient = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    for level in ["$export", "Patient/$export", "Group/g1/$export"] {
        let exported = export_all(&s, &patient, level)?;
        assert_eq!(keys(&exported), ["Group/g1", "Observation/o1", "Observation/o2", "Patient/p1"], "{level}");
    }
    let backend = s.mint(&["--scope", "system/Observation.rs", "--app"])?;
    let exported = export_all(&s, &backend, "$export")?;
    assert_eq!(keys(&exported), ["Observation/o1", "Observation/o2", "Observation/o3"], "system scopes: their types");
    let named = export_all(&s, &backend, "$export?_type=Observation,Patient");
    let status = status_path(&s, &kickoff(&s, &backend, "$export?_type=Observation,Patient")?)?;
    let m = manifest(&s, &backend, &status)?;
    assert_eq!(m["error"].as_array().map(Vec::len), Some(1), "a named type it may not export is an error: {m}");
    assert_eq!(keys(&named?), ["Observation/o1", "Observation/o2", "Observation/o3"]);
    Ok(())
}

/// A server killed in the middle of a job: after the restart the job resumes where its last
/// checkpoint left it and every resource is exported exactly once.
#[test]
fn a_job_resumes_after_a_restart_without_duplicates() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    if !store_outlives_the_server() {
        return Ok(());
    }
    let dir = temp_dir("export-restart")?;
    // One issuer across the restart (its URL is the base URL), so the client's token stays valid.
    let env = [("FHIRGATE_EXPORT_LEASE_SECONDS", "1"), ("FHIRGATE_SERVER_BASE_URL", "http://fhirgate.test")];
    let s = Server::start_with(&dir, &env)?;
    const N: usize = 4000;
    put(&s, json!({"resourceType": "Patient", "id": "p1"}))?;
    for batch in 0..N / 500 {
        let entries: Vec<Value> = (0..500)
            .map(|i| {
                let id = format!("o{}", batch * 500 + i);
                json!({"resource": observation(&id, "p1", "a"), "request": {"method": "PUT", "url": format!("Observation/{id}")}})
            })
            .collect();
        let r = s.post("", &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}))?;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // A patient token: every resource is decided on its data, so the job takes a while.
    let patient = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    let status = status_path(&s, &kickoff(&s, &patient, "Patient/$export?_type=Observation,Patient")?)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed_mid_way = false;
    loop {
        let r = s.send_as(Some(&patient), "GET", &status, None, &[])?;
        let progress = r.header("X-Progress").unwrap_or_default().to_owned();
        if r.status == 202 && !progress.contains(" 0 resources") {
            killed_mid_way = true;
            break;
        }
        if r.status != 202 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    s.signal("KILL")?;
    drop(s);
    let s = Server::start_with(&dir, &env)?;
    let m = manifest(&s, &patient, &status)?;
    let exported = download(&s, &patient, &m)?;
    let unique: BTreeSet<String> = keys(&exported).into_iter().collect();
    assert_eq!(exported.len(), N + 1, "every resource once (killed mid-way: {killed_mid_way})");
    assert_eq!(unique.len(), N + 1, "no duplicates");
    assert!(killed_mid_way, "the job finished before the server could be killed in its middle");
    Ok(())
}

/// Two replicas on one store and one export directory: a job kicked off on one that is killed
/// right after the kick-off is finished by the other (taken over once its lease ran out, when the
/// first had not finished it) and served by it, status and files, to the same client.
#[test]
fn a_job_kicked_off_on_one_replica_finishes_on_another() -> TestResult {
    if runs_remote()? || !store_outlives_the_server() {
        return Ok(());
    }
    let dir = temp_dir("export-replicas")?;
    // One issuer for both (its URL is the base URL, its key in the shared data directory).
    let env = [("FHIRGATE_EXPORT_LEASE_SECONDS", "1"), ("FHIRGATE_SERVER_BASE_URL", "http://fhirgate.test")];
    let first = Server::start_with(&dir, &env)?;
    let second = Server::start_with(&dir, &env)?;
    seed(&first)?;
    let client = first.mint(&["--role", "globalExporter", "--sub", "replicated"])?;
    let status = status_path(&first, &kickoff(&first, &client, "$export")?)?;
    first.signal("KILL")?;
    drop(first);
    let m = manifest(&second, &client, &status)?;
    let exported = download(&second, &client, &m)?;
    assert_eq!(
        keys(&exported),
        [
            "Group/g1",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Organization/org1",
            "Patient/p1",
            "Patient/p2"
        ]
    );
    Ok(())
}
