//! End-to-end attacks on bulk `$export`, through the real binary, on each store: a restricted
//! principal's export holds none of the resources its searches cannot see (other tenants',
//! restricted ones, through a Group naming hidden patients); a job's status, files and
//! cancellation serve only the client that kicked it off (not another user, not the same user
//! with other grants); forged and unknown job ids and file names are 404s; a principal the
//! policies do not let export is refused.

use fhirgate_e2e::bulk::{below_base, export_all, keys, kickoff, manifest, runs_remote, status_path};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

fn tenant(code: &str) -> Value {
    json!({"tag": [{"system": "urn:fhirgate:tenant", "code": code}]})
}

fn restricted() -> Value {
    json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]})
}

/// `microsoft-roles` with the example tenant isolation and restricted-label forbids.
fn server() -> TestResult<Server> {
    let dir = temp_dir("attacks-export")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    for file in ["tenant-isolation.cedar", "restricted.cedar"] {
        std::fs::copy(shipped.join(file), policies.join(file))?;
    }
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

fn put(s: &Server, token: &str, resource: &Value) -> TestResult {
    let path = format!("{}/{}", resource["resourceType"].as_str().ok_or("type")?, resource["id"].as_str().ok_or("id")?);
    let r = s.send_as(Some(token), "PUT", &path, Some(resource.to_string().as_bytes()), &[])?;
    if r.status >= 300 {
        return Err(format!("PUT {path}: {} {}", r.status, r.body).into());
    }
    Ok(())
}

/// Tenant `tA`'s patient and Observation, tenant `tB`'s, a restricted Observation of `tA`'s
/// patient, a Group of `tA` naming both patients, a Group of `tB`.
fn seed(s: &Server) -> TestResult {
    let seer = s.mint(&["--role", "globalAdmin", "--role", "restrictedReader", "--tenant", "tA"])?;
    let other = s.mint(&["--role", "globalAdmin", "--tenant", "tB"])?;
    let obs = |id: &str, patient: &str, meta: Value| {
        json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
               "subject": {"reference": format!("Patient/{patient}")}, "meta": meta})
    };
    put(s, &seer, &json!({"resourceType": "Patient", "id": "pa", "meta": tenant("tA")}))?;
    put(s, &other, &json!({"resourceType": "Patient", "id": "pb", "meta": tenant("tB")}))?;
    put(s, &seer, &obs("oa", "pa", tenant("tA")))?;
    put(s, &other, &obs("ob", "pb", tenant("tB")))?;
    put(s, &seer, &obs("or", "pa", restricted()))?;
    put(
        s,
        &seer,
        &json!({"resourceType": "Group", "id": "ga", "type": "person", "actual": true, "meta": tenant("tA"),
                "member": [{"entity": {"reference": "Patient/pa"}}, {"entity": {"reference": "Patient/pb"}}]}),
    )?;
    put(
        s,
        &other,
        &json!({"resourceType": "Group", "id": "gb", "type": "person", "actual": true, "meta": tenant("tB"),
                "member": [{"entity": {"reference": "Patient/pb"}}]}),
    )
}

#[test]
fn a_restricted_exporter_exports_nothing_its_searches_cannot_see() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = server()?;
    seed(&s)?;
    let attacker = s.mint(&["--role", "globalExporter", "--tenant", "tA"])?;
    let visible = ["Group/ga", "Observation/oa", "Patient/pa"];
    for level in ["$export", "Patient/$export", "Group/ga/$export", "$export?_type=Observation,Patient,Group"] {
        let exported = export_all(&s, &attacker, level)?;
        assert_eq!(keys(&exported), visible, "{level}: only what a search by the same principal shows");
    }
    // What a search shows, for comparison: the same.
    let searched = s.send_as(Some(&attacker), "GET", "Observation", None, &[])?.json()?;
    assert_eq!(searched["entry"].as_array().map(Vec::len), Some(1), "{searched}");
    // A Group the attacker cannot read does not exist for it.
    assert_eq!(kickoff(&s, &attacker, "Group/gb/$export")?.status, 404);
    // Criteria through hidden resources are refused as in a search (no per-guess leak).
    let status = status_path(
        &s,
        &kickoff(&s, &attacker, "$export?_type=Observation&_typeFilter=Observation%3Fsubject.name%3Dx")?,
    )?;
    let m = manifest(&s, &attacker, &status)?;
    assert_eq!(m["output"], json!([]), "{m}");
    assert_eq!(m["error"].as_array().map(Vec::len), Some(1), "the refusal is reported: {m}");
    Ok(())
}

#[test]
fn another_client_cannot_poll_download_or_cancel_a_job() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = server()?;
    seed(&s)?;
    let owner = s.mint(&["--role", "globalExporter", "--sub", "alice", "--tenant", "tA"])?;
    let status = status_path(&s, &kickoff(&s, &owner, "$export")?)?;
    let m = manifest(&s, &owner, &status)?;
    let file = below_base(&s, m["output"][0]["url"].as_str().ok_or("no file")?)?.to_owned();
    let others = [
        ("another user", s.mint(&["--role", "globalExporter", "--sub", "bob", "--tenant", "tA"])?),
        ("the same user with other grants", s.mint(&["--role", "globalAdmin", "--sub", "alice", "--tenant", "tA"])?),
        ("the same user in another tenant", s.mint(&["--role", "globalExporter", "--sub", "alice", "--tenant", "tB"])?),
    ];
    for (who, token) in &others {
        for (method, path) in [("GET", &status), ("GET", &file), ("DELETE", &status)] {
            let r = s.send_as(Some(token), method, path, None, &[])?;
            assert_eq!(r.status, 404, "{who}: {method} {path}: {}", r.body);
            assert!(!r.body.contains("ndjson"), "{who}: nothing of the job shows: {}", r.body);
        }
    }
    let r = s.send_as(None, "GET", &status, None, &[])?;
    assert_eq!(r.status, 401, "no token: {}", r.body);
    assert_eq!(s.send_as(Some(&owner), "GET", &status, None, &[])?.status, 200, "the job is still the owner's");
    assert_eq!(s.send_as(Some(&owner), "GET", &file, None, &[])?.status, 200);
    assert_eq!(s.send_as(Some(&owner), "DELETE", &status, None, &[])?.status, 202);
    Ok(())
}

#[test]
fn forged_and_unknown_jobs_and_files_are_not_found() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = server()?;
    seed(&s)?;
    let owner = s.mint(&["--role", "globalExporter", "--tenant", "tA"])?;
    let status = status_path(&s, &kickoff(&s, &owner, "$export?_type=Patient")?)?;
    manifest(&s, &owner, &status)?;
    let job = status.rsplit('=').next().ok_or("job id")?.to_owned();
    let forged = [
        "$export-status?_job=0123456789abcdef0123456789abcdef".to_owned(),
        "$export-status".to_owned(),
        "$export-status?_job=..%2F..%2Fetc".to_owned(),
        format!("$export-status?_job={}", job.to_uppercase()),
        "$export-file?_job=0123456789abcdef0123456789abcdef&_file=Patient-1.ndjson".to_owned(),
        format!("$export-file?_job={job}&_file=..%2F..%2Ffhirgate.db"),
        format!("$export-file?_job={job}&_file=%2Fetc%2Fpasswd"),
        format!("$export-file?_job={job}&_file=Observation-1.ndjson"),
        format!("$export-file?_job={job}"),
    ];
    for path in &forged {
        let r = s.send_as(Some(&owner), "GET", path, None, &[])?;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    assert_eq!(s.send_as(Some(&owner), "DELETE", &forged[0], None, &[])?.status, 404);
    Ok(())
}

#[test]
fn principals_the_policies_do_not_let_export_are_refused() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let s = server()?;
    let reader = s.mint(&["--role", "globalReader"])?;
    for level in ["$export", "Patient/$export", "Group/ga/$export"] {
        let r = kickoff(&s, &reader, level)?;
        assert_eq!(r.status, 403, "{level}: {}", r.body);
    }
    let r = s.send_as(None, "GET", "$export", None, &[("Prefer", "respond-async")])?;
    assert_eq!(r.status, 401, "{}", r.body);
    Ok(())
}
