//! End-to-end: `GET /metrics` after real traffic (reads, searches, a write, a denied request, a
//! bad token), parsed with a Prometheus text-format parser (`prometheus-parse`) and linted with
//! Prometheus' own `promtool check metrics` (Debian's `prometheus`; `scripts/test.sh` installs
//! it, and the lint is skipped, saying so, where it is missing): the counts moved as the requests
//! went; and scraped by a real Prometheus server (the same package), with the token Prometheus
//! is configured to send. And `metrics.listen`: the metrics on an address of their own, and only
//! there.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, free_port, temp_dir};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

/// The scrape, parsed.
fn scrape(text: &str) -> TestResult<Scrape> {
    Ok(Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))?)
}

/// The sum of the samples of `metric` whose labels have these values (counters, gauges and the
/// untyped `_count`/`_sum` of histograms).
fn total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s: &Sample| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => 0.0,
        })
        .sum()
}

/// `promtool check metrics` on the exposition: `None` when promtool is not installed.
fn promtool_lint(text: &str) -> TestResult<Option<String>> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    child.stdin.take().ok_or("promtool's stdin")?.write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("promtool check metrics failed ({}): {said}", out.status).into());
    }
    Ok(Some(said))
}

#[test]
fn metrics_count_the_traffic_and_parse_as_prometheus_text() -> TestResult {
    let s = Server::start("metrics-traffic")?;
    let patient = json!({"resourceType": "Patient", "id": "m1", "active": true});
    assert_eq!(s.put("Patient/m1", &patient)?.status, 201, "a write");
    assert_eq!(s.get("Patient/m1")?.status, 200, "a read");
    assert_eq!(s.get("Patient?active=true")?.status, 200, "a search");
    assert_eq!(s.get("Patient?active=false")?.status, 200, "another search");
    let reader = s.mint(&["--role", "globalReader"])?;
    let denied = s.send_as(Some(&reader), "DELETE", "Patient/m1", None, &[])?;
    assert_eq!(denied.status, 403, "a reader may not delete: {}", denied.body);
    let bad = s.send_as(Some("not.a.token"), "GET", "Patient/m1", None, &[])?;
    assert_eq!(bad.status, 401, "a bad token");

    let r = s.get("metrics")?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")), "{:?}", r.headers);
    match promtool_lint(&r.body)? {
        Some(said) => println!("promtool check metrics: clean {said}"),
        None => println!("SKIPPED promtool's lint: `promtool` is not installed (Debian: apt-get install prometheus)"),
    }
    let m = scrape(&r.body)?;
    let requests = |labels: &[(&str, &str)]| total(&m, "fhirgate_http_requests_total", labels);
    let patient_type = ("resource_type", "Patient");
    assert_eq!(requests(&[("interaction", "update"), patient_type, ("status", "201")]), 1.0, "{}", r.body);
    assert_eq!(requests(&[("interaction", "read"), patient_type, ("status", "200")]), 1.0, "{}", r.body);
    assert_eq!(requests(&[("interaction", "search-type"), patient_type, ("status", "200")]), 2.0);
    assert_eq!(requests(&[("interaction", "delete"), patient_type, ("status", "403")]), 1.0);
    assert_eq!(requests(&[("status", "401")]), 1.0, "the bad token, before any route");
    assert!(
        m.samples.iter().filter(|s| s.metric == "fhirgate_http_requests_total").all(|s| {
            s.labels.get("route").is_some_and(|r| !r.contains('/')) && s.labels.get("resource_type") != Some("m1")
        }),
        "no ids or paths as labels: {}",
        r.body
    );
    let reads = total(&m, "fhirgate_http_request_duration_seconds_count", &[("interaction", "read")]);
    assert_eq!(reads, 1.0, "the read's latency observed");

    // The reader's delete: a type-level deny no policy permits.
    let decisions = |labels: &[(&str, &str)]| total(&m, "fhirgate_authz_decisions_total", labels);
    assert!(decisions(&[("outcome", "deny"), ("level", "type")]) >= 1.0, "{}", r.body);
    assert!(decisions(&[("outcome", "allow"), ("policy_set", "microsoft-roles")]) >= 5.0, "{}", r.body);

    assert_eq!(total(&m, "fhirgate_token_verifications_total", &[("outcome", "invalid")]), 1.0);
    assert!(total(&m, "fhirgate_token_verifications_total", &[("outcome", "valid")]) >= 6.0);
    assert!(total(&m, "fhirgate_token_cache_hits_total", &[]) >= 4.0, "the admin token, verified once");
    assert!(total(&m, "fhirgate_token_cache_misses_total", &[]) >= 2.0, "admin, reader (and the bad token)");

    if fhirgate_e2e::backend() != "remote" {
        let store_calls = |op: &str| total(&m, "fhirgate_store_operation_duration_seconds_count", &[("operation", op)]);
        assert!(store_calls("read") >= 1.0 && store_calls("search") >= 2.0, "{}", r.body);
        assert!(store_calls("transact") >= 1.0, "{}", r.body);
    }
    if matches!(fhirgate_e2e::backend().as_str(), "sqlite" | "postgres") {
        assert!(total(&m, "fhirgate_store_pool_max_connections", &[]) >= 1.0, "{}", r.body);
    }
    assert!(total(&m, "fhirgate_policies_loaded", &[]) >= 1.0);
    assert!(total(&m, "process_resident_memory_bytes", &[]) > 1e6, "{}", r.body);
    assert!(total(&m, "process_open_fds", &[]) >= 3.0);
    assert!(r.body.contains("fhirgate_cosmos_request_units_total"), "kept from before");
    Ok(())
}

#[test]
fn metrics_listen_serves_them_on_their_own_address_only() -> TestResult {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start_with(
        &temp_dir("metrics-listen")?,
        &[("FHIRGATE_METRICS_LISTEN", listen.as_str()), ("FHIRGATE_METRICS_PUBLIC", "true")],
    )?;
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut there = agent.get(format!("http://{listen}/metrics")).call()?;
    assert_eq!(there.status().as_u16(), 200);
    let text = there.body_mut().read_to_string()?;
    assert!(total(&scrape(&text)?, "fhirgate_policies_loaded", &[]) >= 1.0, "{text}");
    let other = agent.get(format!("http://{listen}/Patient")).call()?;
    assert_eq!(other.status().as_u16(), 404, "the metrics listener answers nothing else");
    let main = s.get("metrics")?;
    assert_eq!(main.status, 404, "not on the main listener any more: {}", main.body);
    assert_eq!(s.get("Patient")?.status, 200, "which serves FHIR as before");
    Ok(())
}

/// A Prometheus server started by a test, stopped when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of an instant query's first result, if it has one.
fn query(agent: &ureq::Agent, api: &str, promql: &str) -> TestResult<Option<f64>> {
    let mut reply = agent.get(format!("{api}/api/v1/query")).query("query", promql).call()?;
    let answer: serde_json::Value = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
    Ok(answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()))
}

#[test]
fn a_real_prometheus_scrapes_them_with_its_token() -> TestResult {
    if Command::new("prometheus").arg("--version").output().is_err() {
        println!("SKIPPED the real scrape: `prometheus` is not installed (Debian: apt-get install prometheus)");
        return Ok(());
    }
    let s = Server::start("metrics-prometheus")?;
    assert_eq!(s.put("Patient/scraped", &json!({"resourceType": "Patient", "id": "scraped"}))?.status, 201);
    assert_eq!(s.get("Patient/scraped")?.status, 200);
    let dir = temp_dir("metrics-prometheus-server")?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, s.token.as_deref().ok_or("the harness token")?)?;
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fhirgate\n    \
             authorization:\n      type: Bearer\n      credentials_file: {}\n    static_configs:\n      - targets: \
             ['127.0.0.1:{}']\n",
            token_file.display(),
            s.port
        ),
    )?;
    let web = format!("127.0.0.1:{}", free_port()?);
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log"))?)
            .spawn()?,
    );
    let api = format!("http://{web}");
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reads =
        r#"sum(fhirgate_http_requests_total{job="fhirgate",interaction="read",resource_type="Patient",status="200"})"#;
    loop {
        let up = query(&agent, &api, r#"up{job="fhirgate"}"#).unwrap_or(None);
        if up == Some(1.0) && query(&agent, &api, reads)?.is_some() {
            break;
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "no successful scrape (up = {up:?}): {log}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(query(&agent, &api, reads)? >= Some(1.0), "Prometheus has the read");
    let samples = query(&agent, &api, r#"scrape_samples_scraped{job="fhirgate"}"#)?;
    assert!(samples > Some(20.0), "the whole exposition was ingested: {samples:?}");
    let decisions = query(&agent, &api, r#"sum(fhirgate_authz_decisions_total{outcome="allow"})"#)?;
    assert!(decisions >= Some(2.0), "{decisions:?}");
    Ok(())
}
