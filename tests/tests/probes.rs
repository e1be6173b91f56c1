//! End-to-end: liveness and readiness. `/health/live` answers while the process runs;
//! `/health/ready` only while the store answers and a policy set is in force: a policy
//! directory broken at start leaves the server running but unready (and denying everything)
//! until the directory is fixed; the reloads are counted in the metrics. `/health` answers as
//! before. The store going away is in `readiness_postgres.rs` (PostgreSQL stopped under it).

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
            ("FHIRGATE_METRICS_PUBLIC", "true"),
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
    let exposition = s.send_as(None, "GET", "metrics", None, &[])?.body;
    assert_eq!(sample(&exposition, "fhirgate_policies_loaded")?, 0.0, "{exposition}");

    std::fs::write(policies.join("broken.cedar"), "// fixed: nothing more than the roles\n")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.send_as(None, "GET", "health/ready", None, &[])?.status != 200 {
        assert!(Instant::now() < deadline, "not ready after the fix: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?.status, 201, "serving");
    let metric = |name: &str| -> TestResult<f64> { sample(&s.send_as(None, "GET", "metrics", None, &[])?.body, name) };
    assert_eq!(metric(r#"fhirgate_policy_reloads_total{outcome="success"}"#)?, 1.0);
    assert!(metric("fhirgate_policies_loaded")? > 0.0);

    // A broken update later: refused, counted, the fixed set keeps serving and the server ready.
    std::fs::write(policies.join("broken.cedar"), "permit (principal, action, resource)\nwhen { resource.nope };\n")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(r#"fhirgate_policy_reloads_total{outcome="failure"}"#).unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the broken update was not seen: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.send_as(None, "GET", "health/ready", None, &[])?.status, 200, "still ready");
    assert_eq!(s.get("Patient/p1")?.status, 200, "the previous set serves");
    Ok(())
}

/// The value of the series `name` (with its labels as written) in an exposition.
fn sample(exposition: &str, name: &str) -> TestResult<f64> {
    let value = exposition.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
    Ok(value.ok_or_else(|| format!("no `{name}` in {exposition}"))?.parse()?)
}

#[test]
fn an_unknown_policy_set_still_stops_the_start() -> TestResult {
    let dir = temp_dir("probes-unknown-set")?;
    let started = Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "no-such-set")]);
    let error = started.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("exited early") && error.contains("no-such-set"), "{error}");
    Ok(())
}
