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

    for path in ["r/Patient/pr1", "r/Patient", "Patient/pr1"] {
        let r = get(path)?;
        assert!(
            r.status == 403 || r.status == 404,
            "GET /{path} is denied on the remote target: {} {}",
            r.status,
            r.body
        );
        r.outcome_issues()?;
        assert!(!r.body.contains("\"pr1\""), "GET /{path} shows nothing of pr1: {}", r.body);
    }
    let r = get("Patient?_count=50")?;
    assert!(!r.body.contains("\"pr1\""), "a merged search shows nothing of the remote: {}", r.body);
    if r.status == 200 {
        assert!(references(&r.json()?).contains(&"Patient/pl1".to_string()), "the local match stays: {}", r.body);
    } else {
        assert_eq!(r.status, 403, "a merged search: {}", r.body);
    }
    expect("the read through both reaches the local one", &get("Patient/pl1")?, 200)?;
    Ok(())
}
