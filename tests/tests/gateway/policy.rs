//! One policy set in front of every target: a Cedar policy that lets a role read and search on
//! the local target only (`context.target == "local"`) holds on each target's own route and on
//! a route over both (the remote's resources stay hidden, in reads and in merged searches).

use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{TestResult, temp_dir};
use serde_json::json;

use super::{expect, expect_written, references, runs_here};

const POLICY: &str = r#"
// Readers of the local store: read and search there, nowhere else.
@id("local-readers")
permit (
  principal in Fhir::Role::"localReader",
  action in [Fhir::Action::"reads", Fhir::Action::"searches"],
  resource
)
when { context.target == "local" };
"#;

#[test]
fn a_policy_allows_on_one_target_and_denies_on_another() -> TestResult {
    if !runs_here("policy per target") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-policy-remote")?;
    let dir = temp_dir("gw-policy")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("targets.cedar"), POLICY)?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("l", "l", &["local"], ""),
        route("r", "r", &["remote"], ""),
        route("both", "", &["local", "remote"], ""),
    ]
    .concat();
    let policy_dir = policies.to_str().ok_or("path")?;
    let s = topology::start(
        &dir,
        &toml,
        &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policy_dir)],
    )?;
    expect_written("local seed", &s.put("l/Patient/pl1", &json!({"resourceType": "Patient", "id": "pl1"}))?)?;
    expect_written("remote seed", &s.put("r/Patient/pr1", &json!({"resourceType": "Patient", "id": "pr1"}))?)?;
    expect("the remote has pr1", &remote.server.get("Patient/pr1")?, 200)?;

    let reader = s.mint(&["--role", "localReader"])?;
    let get = |path: &str| s.send_as(Some(&reader), "GET", path, None, &[]);
    expect("read on the local target", &get("l/Patient/pl1")?, 200)?;
    let r = get("l/Patient")?;
    expect("search on the local target", &r, 200)?;
    assert_eq!(references(&r.json()?), vec!["Patient/pl1".to_string()]);

    // Every check runs; the test lists each that failed.
    let mut failures = Vec::new();
    for path in ["r/Patient/pr1", "r/Patient", "r/Patient?_id=pr1", "Patient/pr1"] {
        let r = get(path)?;
        if r.status != 403 && r.status != 404 {
            failures.push(format!(
                "GET /{path}: expected 403/404 (denied on target `remote`), got {} {}",
                r.status, r.body
            ));
        } else if let Err(e) = r.outcome_issues() {
            failures.push(format!("GET /{path}: {e}"));
        }
        if r.body.contains("\"pr1\"") {
            failures.push(format!("GET /{path} shows pr1: {}", r.body));
        }
    }
    let r = get("Patient?_count=50")?;
    if r.body.contains("\"pr1\"") {
        failures.push(format!("a merged search shows pr1: {}", r.body));
    }
    let merged_ok = match r.status {
        200 => references(&r.json()?).contains(&"Patient/pl1".to_string()),
        status => status == 403,
    };
    if !merged_ok {
        failures.push(format!("a search over both: expected 200 with pl1 (or 403), got {} {}", r.status, r.body));
    }
    let r = get("Patient/pl1")?;
    if r.status != 200 {
        failures.push(format!("GET /Patient/pl1 over both: expected 200, got {} {}", r.status, r.body));
    }
    assert!(failures.is_empty(), "the per-target policy did not hold:\n{}", failures.join("\n"));
    Ok(())
}
