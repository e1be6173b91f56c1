//! End-to-end: liveness and readiness. `/health/live` answers while the process runs;
//! `/health/ready` only while the store answers and a policy set is in force: a policy
//! directory broken at start leaves the server running but unready (and denying everything)
//! until the directory is fixed. `/health` answers as before. The store going away is in
//! `readiness_postgres.rs` (PostgreSQL stopped under the server).

use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::json;

#[test]
fn a_healthy_server_is_live_and_ready_without_a_token() -> TestResult {
    let s = Server::start("probes-ready")?;
    for (path, status) in [("health/live", "live"), ("health/ready", "ready"), ("health", "ok")] {
        let r = s.send_as(None, "GET", path, None, &[])?;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()?["status"], status, "{path}");
    }
    let ready = s.send_as(None, "GET", "health/ready", None, &[])?.json()?;
    assert_eq!((ready["store"].as_str(), ready["policies"].as_str()), (Some("ok"), Some("loaded")));
    Ok(())
}

#[test]
fn a_policy_directory_broken_at_start_is_unready_until_fixed() -> TestResult {
    let dir = temp_dir("probes-broken-policies")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("broken.cedar"), "permit (principal, action, resource)\nwhen { resource.nope };\n")?;
    let s = Server::start_with(
        &dir,
        &[
            ("FHIRGATE_POLICY_SETS", "microsoft-roles"),
            ("FHIRGATE_POLICY_DIR", policies.to_str().ok_or("path")?),
            ("FHIRGATE_POLICY_RELOAD_SECONDS", "1"),
            ("FHIRGATE_POLICY_DENY_READS_AS_NOT_FOUND", "false"),
        ],
    )?;
    assert!(s.log_text().contains("the policies did not load"), "{}", s.log_text());
    assert_eq!(s.send_as(None, "GET", "health/live", None, &[])?.status, 200, "live");
    let ready = s.send_as(None, "GET", "health/ready", None, &[])?;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!((ready.json()?["policies"].as_str(), ready.json()?["store"].as_str()), (Some("not loaded"), Some("ok")));
    // No policies in force: even the administrator is denied, the shipped set alone never applies.
    let write = s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?;
    assert_eq!(write.status, 403, "{}", write.body);
    assert_eq!(s.get("Patient/p1")?.status, 403);

    std::fs::write(policies.join("broken.cedar"), "// fixed: nothing more than the roles\n")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.send_as(None, "GET", "health/ready", None, &[])?.status != 200 {
        assert!(Instant::now() < deadline, "not ready after the fix: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?.status, 201, "serving");
    Ok(())
}

#[test]
fn an_unknown_policy_set_still_stops_the_start() -> TestResult {
    let dir = temp_dir("probes-unknown-set")?;
    let started = Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "no-such-set")]);
    let error = started.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("exited early") && error.contains("no-such-set"), "{error}");
    Ok(())
}
