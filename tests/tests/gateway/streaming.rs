//! Type-level-only routes (`type_level_only = true`): allowed requests are proxied by pingora's
//! own phases and the remote's answer comes back unread (`Location` moved to the route's base);
//! a decision that depends on data, a denied interaction or a batch is refused before anything
//! reaches the remote; the start is refused when the loaded policies read resource data.

use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{TestResult, temp_dir};
use serde_json::json;

use super::{expect, runs_here};

/// Policies that never read a resource's data: roles only.
const DATA_BLIND: &str = r#"
permit (principal in Fhir::Role::"globalAdmin", action, resource);
permit (principal in Fhir::Role::"globalReader", action in [Fhir::Action::"reads", Fhir::Action::"searches"], resource);
"#;

fn policy_dir(dir: &std::path::Path, text: &str) -> TestResult<String> {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("roles.cedar"), text)?;
    Ok(format!("\n[policy]\nsets = []\ndir = \"{}\"\n", policies.display()))
}

fn patients_on(remote: &RemoteFhirgate) -> TestResult<u64> {
    let r = remote.server.get("Patient?_summary=count")?;
    Ok(r.json()?["total"].as_u64().unwrap_or_default())
}

#[test]
fn a_type_level_only_route_streams_what_the_type_level_decision_allows() -> TestResult {
    if !runs_here("streaming") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-stream-remote")?;
    let dir = temp_dir("gw-stream")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("s", "s", &["remote"], "type_level_only = true"),
        route("root", "", &["local"], ""),
        policy_dir(&dir, DATA_BLIND)?,
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;

    // Allowed: created on the remote, `Location` on the route's base, the read is the remote's
    // own answer byte for byte.
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Streamed"}]});
    let r = s.post("s/Patient", &patient)?;
    expect("POST /s/Patient", &r, 201)?;
    let location = r.header("Location").ok_or("a Location")?.to_string();
    assert!(location.starts_with(&format!("{}/s/Patient/", s.base())), "on the route's base: {location}");
    assert!(!location.contains(&remote.server.port.to_string()), "no remote address: {location}");
    let id = r.json()?["id"].as_str().ok_or("an id")?.to_string();
    let through = s.get(&format!("s/Patient/{id}"))?;
    expect("GET /s/Patient/id", &through, 200)?;
    let direct = remote.server.get(&format!("Patient/{id}"))?;
    assert_eq!(through.body, direct.body, "the body streams unchanged");
    assert_eq!(through.header("ETag"), direct.header("ETag"));
    assert_eq!(patients_on(&remote)?, 1);
    // The trade-off, as documented: bodies are the remote's own, links and all (a route that
    // decides per resource would have put them on the route's base).
    let page = s.get("s/Patient?_count=1")?.json()?;
    let self_link = page["link"][0]["url"].as_str().unwrap_or_default();
    assert!(self_link.starts_with(&remote.base()), "the remote's own link, unread: {self_link}");

    // A reader may read and search, not write; the refused write never reaches the remote.
    let reader = s.mint(&["--role", "globalReader", "--sub", "reader"])?;
    let r = s.send_as(Some(&reader), "GET", &format!("s/Patient/{id}"), None, &[])?;
    expect("a reader's read", &r, 200)?;
    let body = serde_json::to_vec(&patient)?;
    let r = s.send_as(Some(&reader), "POST", "s/Patient", Some(&body), &[])?;
    expect("a reader's create", &r, 403)?;
    assert_eq!(r.json()?["resourceType"], "OperationOutcome");
    assert_eq!(patients_on(&remote)?, 1, "nothing reached the remote");
    // Denied reads answer as a missing resource; batches are refused whole.
    let nobody = s.mint(&["--role", "nobody", "--sub", "nobody"])?;
    let r = s.send_as(Some(&nobody), "GET", &format!("s/Patient/{id}"), None, &[])?;
    expect("a read nobody may do", &r, 404)?;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": []});
    let r = s.post("s", &batch)?;
    expect("a batch on a streamed route", &r, 400)?;
    // Policies reloaded with one that reads data: the streamed route refuses what it can no
    // longer decide at type level (it would have to read every answer).
    let policies = dir.join("policies");
    let seeing = "forbid (principal, action, resource) when { resource.hasData && resource.tenant == \"t\" };\n";
    std::fs::write(policies.join("tenants.cedar"), seeing)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        let r = s.get(&format!("s/Patient/{id}"))?;
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    expect("a read decided on data, on a streamed route", &refused, 403)?;
    std::fs::remove_file(policies.join("tenants.cedar"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.get(&format!("s/Patient/{id}"))?.status != 200 {
        if std::time::Instant::now() > deadline {
            return Err("the streamed route did not come back after the policy was removed".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Without a token: 401 as everywhere.
    let r = s.send_as(None, "GET", &format!("s/Patient/{id}"), None, &[])?;
    expect("no token", &r, 401)?;
    // The remote going away: a clean 503 OperationOutcome.
    drop(remote);
    let r = s.get(&format!("s/Patient/{id}"))?;
    assert!(matches!(r.status, 502 | 503), "{} {}", r.status, r.body);
    assert_eq!(r.json()?["resourceType"], "OperationOutcome");
    Ok(())
}

#[test]
fn a_type_level_only_route_is_refused_beside_policies_that_read_data() -> TestResult {
    if !runs_here("streaming refused") {
        return Ok(());
    }
    let dir = temp_dir("gw-stream-refused")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", "http://127.0.0.1:9", &topology::Credentials::None, ""),
        route("s", "s", &["remote"], "type_level_only = true"),
        route("root", "", &["local"], ""),
    ]
    .concat();
    // The default sets (Microsoft roles and SMART scopes) decide on resources' data.
    let error = match topology::start(&dir, &toml, &[]) {
        Ok(_) => return Err("a streamed route beside data-reading policies must stop the start".into()),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("type_level_only"), "the message names the setting: {error}");
    // And one that would stream a local store is refused too.
    let dir = temp_dir("gw-stream-local")?;
    let toml = [local_target("local", &dir), route("s", "s", &["local"], "type_level_only = true")].concat();
    let error = match topology::start(&dir, &toml, &[]) {
        Ok(_) => return Err("a streamed route on a local store must stop the start".into()),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("local store"), "{error}");
    Ok(())
}
