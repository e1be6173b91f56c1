//! A misbehaving upstream behind a route: garbage, an early close, a death mid-response and 5xx
//! answers are clean 502 OperationOutcomes (an upstream OperationOutcome passes through), an
//! answer later than the read timeout a 504; a target that is down is a 503 with `Retry-After`
//! on its route while the local route keeps serving, and serves again when it is back. Never
//! the upstream's address, nor its own page links, in an answer.

use std::time::{Duration, Instant};

use fhirgate_e2e::topology::{self, Credentials, local_target, remote_target, route};
use fhirgate_e2e::upstream::{Mode, Upstream};
use fhirgate_e2e::{Reply, Server, TestResult, free_port, temp_dir};
use serde_json::json;

use super::{expect, expect_outcome, expect_written, link, no_upstream_address, resources, runs_here};

/// Routes `bad` (the upstream alone), `mixed` (local + upstream, partial results), `strict`
/// (local + upstream, a failed target fails the search), `down` (a dead address) and the root
/// (local).
fn front(upstream: &Upstream, dead_port: u16) -> TestResult<Server> {
    let dir = temp_dir("gw-upstream")?;
    let quick = "read_timeout_ms = 700\ntotal_timeout_ms = 3000\nconnect_timeout_ms = 500\nretries = 0\nhealth_interval_seconds = 1";
    let toml = [
        local_target("local", &dir),
        remote_target("bad", &upstream.base(), &Credentials::None, quick),
        remote_target("gone", &format!("http://127.0.0.1:{dead_port}"), &Credentials::None, quick),
        remote_target("retried", &upstream.base(), &Credentials::None, &quick.replace("retries = 0", "retries = 1")),
        route("bad", "bad", &["bad"], ""),
        route("mixed", "mixed", &["local", "bad"], ""),
        route("strict", "strict", &["local", "bad"], "on_target_error = \"fail\""),
        route("down", "down", &["gone"], ""),
        route("retry", "retry", &["retried"], ""),
        route("root", "", &["local"], ""),
    ]
    .concat();
    topology::start(&dir, &toml, &[])
}

fn still_serving(s: &Server) -> TestResult {
    expect("the local route still serves", &s.get("Patient/here")?, 200)
}

#[test]
fn upstream_failures_are_clean_gateway_errors() -> TestResult {
    if !runs_here("upstream failures") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::Good)?;
    let s = front(&upstream, free_port()?)?;
    let ports = [upstream.port];
    expect_written("a local Patient", &s.put("Patient/here", &json!({"resourceType": "Patient", "id": "here"}))?)?;

    // Well: the answer on the route's base, the upstream's references and links rewritten.
    let r = s.get("bad/Patient/1")?;
    expect("GET /bad/Patient/1 from a good upstream", &r, 200)?;
    no_upstream_address("a good answer", &r, &ports)?;
    let r = s.get("bad/Patient?name=x")?;
    expect("a search on a good upstream", &r, 200)?;
    no_upstream_address("a good search", &r, &ports)?;
    assert!(!r.body.contains("upstream-secret"), "the upstream's own page link never reaches the client: {}", r.body);
    if let Some(next) = link(&r.json()?, "next") {
        assert!(next.contains("_getpages="), "fhirgate's own next link: {next}");
    }

    let cases: [(Mode, &[u16], &str); 6] = [
        (Mode::Garbage, &[502], "garbage"),
        (Mode::CloseEarly, &[502], "a close before the status line"),
        (Mode::Truncated, &[502], "a death mid-response"),
        (Mode::ServerErrorPlain, &[502], "a 500 without an OperationOutcome"),
        // An upstream OperationOutcome passes through (its status, or a 502 carrying it).
        (Mode::ServerErrorOutcome, &[500, 502], "a 500 with an OperationOutcome"),
        (Mode::Slow(Duration::from_secs(3)), &[504], "an answer later than the read timeout"),
    ];
    let mut failures = Vec::new();
    for (mode, statuses, what) in cases {
        upstream.set_mode(mode);
        let started = Instant::now();
        let r = s.get("bad/Patient/1")?;
        let checked = check_error(&r, statuses, &ports);
        if let Err(e) = checked {
            failures.push(format!("{what}: GET /bad/Patient/1 -> {e}"));
        }
        if matches!(mode, Mode::Slow(_)) && started.elapsed() > Duration::from_millis(2_900) {
            failures.push(format!("{what}: the gateway waited {:?}, beyond its read timeout", started.elapsed()));
        }
        if let Err(e) = still_serving(&s) {
            failures.push(format!("{what}: {e}"));
        }
    }
    upstream.set_mode(Mode::Good);
    assert!(failures.is_empty(), "upstream failures not answered as they should:\n{}", failures.join("\n"));
    Ok(())
}

fn check_error(r: &Reply, statuses: &[u16], ports: &[u16]) -> TestResult {
    if !statuses.contains(&r.status) {
        return Err(format!("expected {statuses:?}, got {} {}", r.status, r.body).into());
    }
    let issues = r.outcome_issues()?;
    if issues.is_empty() {
        return Err(format!("an OperationOutcome without issues: {}", r.body).into());
    }
    no_upstream_address("the error", r, ports)
}

#[test]
fn a_failing_target_is_an_outcome_entry_or_fails_the_search_per_route() -> TestResult {
    if !runs_here("partial results") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::Garbage)?;
    let s = front(&upstream, free_port()?)?;
    let ports = [upstream.port];
    expect_written("a local Patient", &s.put("Patient/here", &json!({"resourceType": "Patient", "id": "here"}))?)?;

    let r = s.get("mixed/Patient")?;
    expect("a search where one target fails (partial)", &r, 200)?;
    no_upstream_address("partial search", &r, &ports)?;
    let bundle = r.json()?;
    let ids: Vec<String> = resources(&bundle).iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
    assert_eq!(ids, vec!["here".to_string()], "the local target's matches are kept: {bundle}");
    let outcomes: Vec<&serde_json::Value> = bundle["entry"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["resource"]["resourceType"] == "OperationOutcome").collect())
        .unwrap_or_default();
    assert_eq!(outcomes.len(), 1, "one OperationOutcome entry for the failed target: {bundle}");
    assert_eq!(outcomes[0]["search"]["mode"], "outcome");
    assert!(bundle.get("total").is_none_or(|t| t.is_null()), "no total when a target gave none: {bundle}");

    let r = s.get("strict/Patient")?;
    check_error(&r, &[502], &ports).map_err(|e| format!("a failing target on a `fail` route: {e}"))?;
    Ok(())
}

#[test]
fn only_idempotent_requests_are_retried() -> TestResult {
    if !runs_here("retries") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::CloseEarly)?;
    let s = front(&upstream, free_port()?)?;
    let sent = |method: &str| upstream.data_requests().iter().filter(|r| r.method == method).count();

    let r = s.get("retry/Patient/1")?;
    check_error(&r, &[502], &[upstream.port]).map_err(|e| format!("GET on a closing upstream: {e}"))?;
    assert_eq!(sent("GET"), 2, "a GET that got no answer is retried once: {:?}", upstream.data_requests());

    let r = s.post("retry/Patient", &json!({"resourceType": "Patient"}))?;
    check_error(&r, &[502], &[upstream.port]).map_err(|e| format!("POST on a closing upstream: {e}"))?;
    assert_eq!(sent("POST"), 1, "a POST is never retried: {:?}", upstream.data_requests());
    Ok(())
}

/// A remote that answers before it has read the body (a 413 from its smaller body limit) and
/// closes: the client gets that answer, not a 502 about the broken write. The body is larger
/// than the loopback socket buffers, so the front's write does break.
#[test]
fn an_answer_before_the_body_is_read_reaches_the_client() -> TestResult {
    if !runs_here("an early answer") {
        return Ok(());
    }
    let remote =
        topology::RemoteFhirgate::start_in(&temp_dir("gw-early-remote")?, &[("FHIRGATE_MAX_BODY_BYTES", "1048576")])?;
    let dir = temp_dir("gw-early-front")?;
    let toml =
        [remote_target("small", &remote.base(), &remote.credentials(), ""), route("root", "", &["small"], "")].concat();
    let s = topology::start(&dir, &toml, &[("FHIRGATE_MAX_BODY_BYTES", "67108864")])?;

    expect_written("a small Patient", &s.put("Patient/small", &json!({"resourceType": "Patient", "id": "small"}))?)?;
    let big = json!({"resourceType": "Patient", "id": "big", "name": [{"text": "x".repeat(24 * 1024 * 1024)}]});
    let r = s.put("Patient/big", &big)?;
    expect_outcome("a body over the remote's limit", &r, 413)?;
    no_upstream_address("413", &r, &[remote.server.port])?;
    expect("the front still serves", &s.get("Patient/small")?, 200)?;
    Ok(())
}

/// Polls `path` until its status is `status` (or 10 s passed); returns the last answer.
fn until(s: &Server, path: &str, status: u16) -> TestResult<Reply> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(path)?;
        if r.status == status || Instant::now() > deadline {
            return Ok(r);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_target_that_is_down_is_503_while_the_others_serve() -> TestResult {
    if !runs_here("target down") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::Good)?;
    let dead = free_port()?;
    let s = front(&upstream, dead)?;
    expect_written("a local Patient", &s.put("Patient/here", &json!({"resourceType": "Patient", "id": "here"}))?)?;

    let r = until(&s, "down/Patient/1", 503)?;
    expect_outcome("a target with no live address", &r, 503)?;
    assert!(r.header("Retry-After").is_some(), "503 with Retry-After: {:?}", r.headers);
    no_upstream_address("503", &r, &[dead])?;
    still_serving(&s)?;

    // The upstream stops answering at all (health checks included), then comes back.
    expect("the upstream serves", &s.get("bad/Patient/1")?, 200)?;
    upstream.set_mode(Mode::Refuse);
    let r = until(&s, "bad/Patient/1", 503)?;
    expect_outcome("an upstream whose health checks fail", &r, 503)?;
    assert!(r.header("Retry-After").is_some(), "503 with Retry-After: {:?}", r.headers);
    still_serving(&s)?;
    upstream.set_mode(Mode::Good);
    let r = until(&s, "bad/Patient/1", 200)?;
    expect("back after its health checks pass again", &r, 200)?;
    Ok(())
}

/// The test upstream itself, straight (no gateway): each mode misbehaves as documented, so the
/// gateway tests above test the gateway.
#[test]
fn the_test_upstream_misbehaves_as_asked() -> TestResult {
    let upstream = Upstream::start(Mode::Good)?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let get = |path: &str| agent.get(&format!("{}{path}", upstream.base())).header("Authorization", "Bearer t").call();

    let mut r = get("/Patient/1")?;
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    assert_eq!(body["id"], "1");
    assert_eq!(upstream.data_requests().last().and_then(|r| r.authorization.clone()).as_deref(), Some("Bearer t"));

    upstream.set_mode(Mode::Garbage);
    assert!(get("/Patient/1").is_err(), "garbage is no HTTP answer");
    upstream.set_mode(Mode::CloseEarly);
    assert!(get("/Patient/1").is_err(), "no answer at all");
    upstream.set_mode(Mode::Truncated);
    assert!(get("/Patient/1").and_then(|mut r| r.body_mut().read_to_string()).is_err(), "a cut body");
    upstream.set_mode(Mode::ServerErrorPlain);
    assert_eq!(get("/Patient/1")?.status().as_u16(), 500);
    upstream.set_mode(Mode::ServerErrorOutcome);
    let mut r = get("/Patient/1")?;
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.body_mut().read_to_string()?.contains("OperationOutcome"));
    upstream.set_mode(Mode::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    assert_eq!(get("/Patient/1")?.status().as_u16(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(get("/metadata")?.status().as_u16(), 200, "the health path answers well while data misbehaves");
    upstream.set_mode(Mode::Refuse);
    assert!(get("/metadata").is_err(), "refused, health path included");
    Ok(())
}
