//! End-to-end: the safe defaults of a server started as the README's: `/metrics` needs a token
//! the policies allow (unless `metrics.public`), links ignore an untrusted `Host`, a denied read
//! answers 404 like a missing resource, and audit events are written whatever the log level,
//! with the request's query, conditional criteria, client id and client address.

use std::time::Duration;

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

/// The audit records (the `record` object of each audit line) the server has logged so far.
fn audit_records(s: &Server) -> Vec<Value> {
    s.log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "audit" && line["record"].is_object())
        .map(|line| line["record"].clone())
        .collect()
}

#[test]
fn metrics_need_a_permitted_token_unless_public() -> TestResult {
    let s = Server::start("metrics-private")?;
    let r = s.send_as(None, "GET", "metrics", None, &[])?;
    assert_eq!(r.status, 401, "no token: {}", r.body);
    let reader = s.mint(&["--role", "globalReader"])?;
    let r = s.send_as(Some(&reader), "GET", "metrics", None, &[])?;
    assert_eq!(r.status, 403, "the policies do not allow it to a reader: {}", r.body);
    let r = s.get("metrics")?;
    assert_eq!(r.status, 200, "globalAdmin: {}", r.body);
    assert!(r.body.contains("fhirgate_cosmos_request_units_total"), "{}", r.body);
    assert_eq!(s.send_as(None, "GET", "health", None, &[])?.status, 200, "health stays open");

    let open = Server::start_with(&temp_dir("metrics-public")?, &[("FHIRGATE_METRICS_PUBLIC", "true")])?;
    let r = open.send_as(None, "GET", "metrics", None, &[])?;
    assert_eq!(r.status, 200, "metrics.public: {}", r.body);
    Ok(())
}

/// `Location` of a create sent with the given `Host` header.
fn location_for_host(s: &Server, host: &str) -> TestResult<String> {
    let body = json!({"resourceType": "Patient"}).to_string();
    let request = format!(
        "POST /Patient HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/fhir+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = s.raw(request.as_bytes(), false, Duration::from_secs(10))?;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .ok_or_else(|| format!("no Location: {answer}"))?;
    Ok(location.trim().to_string())
}

#[test]
fn links_are_built_from_trusted_hosts_only() -> TestResult {
    let dir = temp_dir("hosts")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_ALLOWED_HOSTS", "fhir.example.org")])?;
    let own = format!("http://127.0.0.1:{}/Patient/", s.port);
    assert!(location_for_host(&s, "evil.example")?.starts_with(&own), "an attacker's Host is ignored");
    assert!(location_for_host(&s, &format!("evil.example:{}", s.port))?.starts_with(&own));
    let local = format!("localhost:{}", s.port);
    assert!(location_for_host(&s, &local)?.starts_with(&format!("http://{local}/Patient/")), "a loopback form");
    assert!(location_for_host(&s, "fhir.example.org")?.starts_with("http://fhir.example.org/Patient/"), "allowed");
    // Searches page with the same base.
    let search = s.raw(
        b"GET /Patient?_count=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        false,
        Duration::from_secs(10),
    )?;
    assert!(!search.contains("evil.example"), "{search}");
    assert!(search.contains(&own[..own.len() - "Patient/".len()]), "{search}");
    Ok(())
}

#[test]
fn a_denied_read_looks_like_a_missing_resource_by_default() -> TestResult {
    let s = Server::start("hidden-read")?;
    let r = s.put("Patient/p2", &json!({"resourceType": "Patient", "id": "p2"}))?;
    assert_eq!(r.status, 201, "{}", r.body);
    let patient = s.mint(&["--scope", "patient/Patient.rs", "--patient", "p1"])?;
    let denied = s.send_as(Some(&patient), "GET", "Patient/p2", None, &[])?;
    let missing = s.send_as(Some(&patient), "GET", "Patient/nobody", None, &[])?;
    assert_eq!((denied.status, missing.status), (404, 404), "{} / {}", denied.body, missing.body);
    assert_eq!(denied.outcome_issues()?[0]["code"], missing.outcome_issues()?[0]["code"]);
    assert_eq!(s.send_as(Some(&patient), "GET", "Patient/p2/_history/1", None, &[])?.status, 404, "vread");
    let body = json!({"resourceType": "Patient", "id": "p2"}).to_string();
    let r = s.send_as(Some(&patient), "PUT", "Patient/p2", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "a denied write still says forbidden: {}", r.body);
    Ok(())
}

#[test]
fn audit_events_survive_a_warn_log_level_with_their_fields() -> TestResult {
    let dir = temp_dir("audit-warn")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_LOG_LEVEL", "warn")])?;
    let allowed = s.get("Patient?family=Audit&_count=3")?;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let reader = s.mint(&["--role", "globalReader", "--sub", "reader-1", "--client-id", "app-7"])?;
    let body = json!({"resourceType": "Patient"}).to_string();
    let denied = s.send_as(
        Some(&reader),
        "POST",
        "Patient?_pretty=true",
        Some(body.as_bytes()),
        &[("If-None-Exist", "identifier=x|1")],
    )?;
    assert_eq!(denied.status, 403, "{}", denied.body);
    // The audit events are written after the response: wait for them.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = audit_records(&s);
        let decisions = records.iter().filter(|r| r["event"] == "authorization").count();
        if decisions >= 2 && records.iter().filter(|r| r["status"].is_number()).count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let allow = records
        .iter()
        .find(|r| r["decision"] == "allow" && r["action"] == "search-type")
        .ok_or_else(|| format!("no allow event at level warn: {}", s.log_text()))?;
    assert_eq!(allow["query"], "family=Audit&_count=3");
    assert!(allow["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")), "{allow}");
    let deny = records
        .iter()
        .find(|r| r["decision"] == "deny")
        .ok_or_else(|| format!("no deny event at level warn: {}", s.log_text()))?;
    assert_eq!(deny["action"], "create");
    assert_eq!(deny["principal"], "Fhir::User::\"reader-1\"");
    assert_eq!(deny["if_none_exist"], "identifier=x|1");
    assert_eq!(deny["query"], "_pretty=true");
    assert_eq!(deny["client_id"], "app-7");
    // The level still applies to everything else: no info access-log line.
    assert!(!s.log_text().contains("request done"), "{}", s.log_text());
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_configmap_symlink_swap_reloads_the_policies() -> TestResult {
    use std::os::unix::fs::symlink;
    // A ConfigMap volume as the kubelet lays it out: `..<version>/`, `..data -> ..<version>`,
    // `custom.cedar -> ..data/custom.cedar`; an update writes a new version and swaps `..data`.
    let dir = temp_dir("configmap")?;
    let policies = dir.join("policies");
    let version = |name: &str, text: &str| -> TestResult {
        std::fs::create_dir_all(policies.join(name))?;
        std::fs::write(policies.join(name).join("custom.cedar"), text)?;
        Ok(())
    };
    let readers = "permit (principal in Fhir::Role::\"custom\", action in Fhir::Action::\"reads\", resource);\n";
    let writers = "permit (principal in Fhir::Role::\"custom\", action in Fhir::Action::\"writes\", resource);\n";
    version("..2026_12_06_01", readers)?;
    symlink("..2026_12_06_01", policies.join("..data"))?;
    symlink("..data/custom.cedar", policies.join("custom.cedar"))?;
    let env = [
        ("FHIRGATE_POLICY_SETS", ""),
        ("FHIRGATE_POLICY_DIR", policies.to_str().ok_or("path")?),
        ("FHIRGATE_POLICY_RELOAD_SECONDS", "1"),
    ];
    let s = Server::start_with(&dir, &env)?;
    let custom = s.mint(&["--role", "custom"])?;
    let body = json!({"resourceType": "Patient"}).to_string();
    let create =
        || -> TestResult<u16> { Ok(s.send_as(Some(&custom), "POST", "Patient", Some(body.as_bytes()), &[])?.status) };
    assert_eq!(create()?, 403, "readers only");
    version("..2026_12_06_02", writers)?;
    symlink("..2026_12_06_02", policies.join("..data_tmp"))?;
    std::fs::rename(policies.join("..data_tmp"), policies.join("..data"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while create()? != 201 {
        assert!(std::time::Instant::now() < deadline, "the swap was not seen: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
