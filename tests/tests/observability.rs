//! End-to-end: what fhirgate tells its operators (issue 20). OpenTelemetry traces exported over
//! OTLP/HTTP to a receiver in the test that decodes the real protobuf ([`otlp::Receiver`]): one
//! trace per request, with spans for authentication, each Cedar decision, the engine, each store
//! call and the remote exchange, whose `traceparent` makes the remote fhirgate's spans children
//! of the front's; an incoming `traceparent` is joined; a collector that is down or hangs slows
//! no request. Logs: JSON lines carrying each request's id, principal, interaction, resource
//! type, status and duration, with the audit events still their own lines.

use std::time::{Duration, Instant};

use fhirgate_e2e::otlp::{ReceivedSpan, Receiver};
use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{Server, TestResult, free_port, temp_dir};
use serde_json::{Value, json};

/// How long exported spans may take to arrive (the exporters send every 100 ms).
const ARRIVAL: Duration = Duration::from_secs(20);

/// The variables turning traces on toward `endpoint`, as `service`.
fn traced(endpoint: &str, service: &str) -> Vec<(String, String)> {
    [
        ("FHIRGATE_TRACING_ENABLED", "true"),
        ("FHIRGATE_TRACING_ENDPOINT", endpoint),
        ("FHIRGATE_TRACING_SERVICE_NAME", service),
        ("FHIRGATE_TRACING_EXPORT_INTERVAL_MS", "100"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The server span of the request `request_id` sent to `service`.
fn server_span<'a>(spans: &'a [ReceivedSpan], service: &str, request_id: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.service == service && s.kind == 2 && s.attr("fhirgate.request_id") == Some(request_id))
}

/// The spans of `service` in `trace_id` named `name`.
fn named<'a>(spans: &'a [ReceivedSpan], trace_id: &str, service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.trace_id == trace_id && s.service == service && s.name == name).collect()
}

/// The one span of `service` in `trace_id` named `name`, whose parent is `parent`.
fn child<'a>(
    spans: &'a [ReceivedSpan],
    parent: &ReceivedSpan,
    service: &str,
    name: &str,
) -> TestResult<&'a ReceivedSpan> {
    let found = named(spans, &parent.trace_id, service, name);
    let under: Vec<_> = found.iter().filter(|s| s.parent_span_id == parent.span_id).collect();
    match under.as_slice() {
        [one] => Ok(one),
        _ => Err(format!(
            "{service}: expected one `{name}` under `{}` ({}), found {} of {} in the trace: {found:#?}",
            parent.name,
            parent.span_id,
            under.len(),
            found.len()
        )
        .into()),
    }
}

fn expect(what: &str, status: u16, want: u16, body: &str) -> TestResult {
    if status == want { Ok(()) } else { Err(format!("{what}: {status} (want {want}): {body}").into()) }
}

#[test]
fn a_request_is_one_trace_through_auth_cedar_the_engine_the_store_and_the_remote_target() -> TestResult {
    let receiver = Receiver::start()?;
    let endpoint = receiver.endpoint();
    let remote = RemoteFhirgate::start_in(&temp_dir("otel-remote")?, &pairs(&traced(&endpoint, "remote")))?;
    let dir = temp_dir("otel-front")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("p", "", &["local", "remote"], "id_prefixes = { local = \"L-\", remote = \"R-\" }"),
    ]
    .concat();
    let front = topology::start(&dir, &toml, &pairs(&traced(&endpoint, "front")))?;

    let r = front.post("Patient", &json!({"resourceType": "Patient", "name": [{"family": "Local"}]}))?;
    expect("create on the local target", r.status, 201, &r.body)?;
    let local_id = r.json()?["id"].as_str().ok_or("an id")?.to_owned();
    let r = remote.server.post("Patient", &json!({"resourceType": "Patient", "name": [{"family": "Far"}]}))?;
    expect("create on the remote", r.status, 201, &r.body)?;
    let remote_id = format!("R-{}", r.json()?["id"].as_str().ok_or("an id")?);

    // A read on the local store: authentication, the decisions, the engine and the store read,
    // all in one trace under the server span.
    let r = front.get_with(&format!("Patient/{local_id}"), &[("X-Request-Id", "otel-local-read")])?;
    expect("local read", r.status, 200, &r.body)?;
    let spans = receiver.wait_for("the local read's trace", ARRIVAL, |s| {
        server_span(s, "front", "otel-local-read")
            .is_some_and(|root| !named(s, &root.trace_id, "front", "store.read").is_empty())
    })?;
    let root = server_span(&spans, "front", "otel-local-read").ok_or("no server span")?;
    assert_eq!(root.name, "GET /Patient/{id}");
    assert_eq!(root.parent_span_id, "", "a request without traceparent starts its trace");
    assert_eq!(root.attr("http.request.method"), Some("GET"));
    assert_eq!(root.attr("http.response.status_code"), Some("200"));
    assert_eq!(root.attr("http.route"), Some("/Patient/{id}"));
    assert_eq!(root.attr("fhir.interaction"), Some("read"));
    let auth = child(&spans, root, "front", "authenticate")?;
    assert_eq!(auth.attr("fhirgate.outcome"), Some("ok"));
    let engine = child(&spans, root, "front", "engine")?;
    assert_eq!(engine.attr("fhirgate.target"), Some("local"));
    let read = child(&spans, engine, "front", "store.read")?;
    assert_eq!(read.kind, 3, "a store call is a client span");
    assert_eq!(read.attr("db.system.name"), Some("sqlite"));
    let decisions = named(&spans, &root.trace_id, "front", "cedar.decide");
    // globalAdmin's type-level allow covers the data: no data-level decision follows.
    assert!(!decisions.is_empty(), "the type-level decision: {spans:#?}");
    for d in &decisions {
        assert_eq!(d.parent_span_id, engine.span_id, "decisions are the engine's: {d:#?}");
        assert_eq!(d.attr("cedar.decision"), Some("allow"));
        assert_eq!(d.attr("cedar.policy_set"), Some("microsoft-roles"), "{d:#?}");
        assert!(d.attr("cedar.policies").is_some_and(|p| p.starts_with("microsoft-roles:")), "{d:#?}");
        assert!(!d.attributes.values().any(|v| v.contains("Local")), "no resource data in a decision: {d:#?}");
    }
    let others: Vec<_> = spans.iter().filter(|s| s.trace_id == root.trace_id && s.service != "front").collect();
    assert!(others.is_empty(), "a local read reaches no other service: {others:#?}");

    // A read on the remote target: the front's upstream span carries the trace to the remote,
    // whose server span is its child, in the same trace.
    let r = front.get_with(&format!("Patient/{remote_id}"), &[("X-Request-Id", "otel-remote-read")])?;
    expect("remote read", r.status, 200, &r.body)?;
    let spans = receiver.wait_for("the remote read's trace on both sides", ARRIVAL, |s| {
        server_span(s, "front", "otel-remote-read").is_some_and(|root| {
            s.iter().any(|x| x.trace_id == root.trace_id && x.service == "remote" && x.kind == 2)
                && !named(s, &root.trace_id, "remote", "store.read").is_empty()
        })
    })?;
    let root = server_span(&spans, "front", "otel-remote-read").ok_or("no server span")?;
    let engine = child(&spans, root, "front", "engine")?;
    assert_eq!(engine.attr("fhirgate.target"), Some("remote"));
    assert_eq!(engine.attr("fhirgate.target_kind"), Some("remote"));
    let upstream = child(&spans, engine, "front", "upstream")?;
    assert_eq!(upstream.kind, 3, "the remote exchange is a client span");
    assert_eq!(upstream.attr("http.response.status_code"), Some("200"));
    let far: Vec<_> =
        spans.iter().filter(|s| s.trace_id == root.trace_id && s.service == "remote" && s.kind == 2).collect();
    let [far_root] = far.as_slice() else { return Err(format!("one remote server span: {far:#?}").into()) };
    assert_eq!(far_root.parent_span_id, upstream.span_id, "the remote's server span is the upstream span's child");
    assert_eq!(far_root.name, "GET /Patient/{id}");
    let far_engine = child(&spans, far_root, "remote", "engine")?;
    child(&spans, far_engine, "remote", "store.read")?;
    child(&spans, far_root, "remote", "authenticate")?;

    // Each request is its own trace.
    let local_trace = server_span(&spans, "front", "otel-local-read").map(|s| s.trace_id.clone());
    assert_ne!(local_trace.as_deref(), Some(root.trace_id.as_str()), "two requests, two traces");
    Ok(())
}

#[test]
fn an_incoming_traceparent_is_joined() -> TestResult {
    let receiver = Receiver::start()?;
    let s = Server::start_with(&temp_dir("otel-parent")?, &pairs(&traced(&receiver.endpoint(), "joined")))?;
    let r = s.post("Patient", &json!({"resourceType": "Patient", "name": [{"family": "Zyxwvut"}]}))?;
    expect("create", r.status, 201, &r.body)?;
    let id = r.json()?["id"].as_str().ok_or("an id")?.to_owned();
    // A SMART patient token: its type-level decision needs the data, so a data-level one follows.
    let token = s.mint(&["--scope", "patient/Patient.rs", "--patient", &id])?;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{parent}-01");
    let headers = [("traceparent", traceparent.as_str()), ("X-Request-Id", "otel-joined")];
    let r = s.send_as(Some(&token), "GET", &format!("Patient/{id}"), None, &headers)?;
    expect("read", r.status, 200, &r.body)?;
    let spans =
        receiver.wait_for("the joined trace", ARRIVAL, |s| server_span(s, "joined", "otel-joined").is_some())?;
    let root = server_span(&spans, "joined", "otel-joined").ok_or("no server span")?;
    assert_eq!(root.trace_id, trace_id, "the caller's trace");
    assert_eq!(root.parent_span_id, parent, "the caller's span is the parent");
    let engine = child(&spans, root, "joined", "engine")?;
    let decisions = named(&spans, trace_id, "joined", "cedar.decide");
    let phases: Vec<_> = decisions.iter().filter_map(|d| d.attr("cedar.phase")).collect();
    assert!(phases.len() >= 2 && phases.contains(&"type"), "type- and data-level decisions: {decisions:#?}");
    for d in &decisions {
        assert_eq!(d.attr("cedar.decision"), Some("allow"), "{d:#?}");
        assert_eq!(d.attr("cedar.policy_set"), Some("smart"), "{d:#?}");
        let leaked = d.attributes.values().any(|v| v.contains("Zyxwvut") || v.contains(&id));
        assert!(!leaked, "no resource data, no id in a decision span: {d:#?}");
    }
    // The store the sweep runs on, by its name (in the remote sweep: the exchange with the remote).
    let (name, system) = match fhirgate_e2e::backend().as_str() {
        "remote" => ("upstream", None),
        other => ("store.read", Some(other.to_owned())),
    };
    let call = child(&spans, engine, "joined", name)?;
    assert_eq!(call.attr("db.system.name").map(str::to_owned), system, "{call:#?}");

    // Hostile or malformed trace headers: the request is answered as usual and starts a trace
    // of its own (the all-zero ids are invalid by the W3C rules, version ff is forbidden).
    let big_state = format!("k={}", "v".repeat(8000));
    let hostile: [(&str, &[(&str, &str)]); 5] = [
        ("otel-bad-1", &[("traceparent", "00-zz-yy-01")]),
        ("otel-bad-2", &[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]),
        ("otel-bad-3", &[("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]),
        ("otel-bad-4", &[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")]),
        ("otel-bad-5", &[("traceparent", "00-x"), ("tracestate", big_state.as_str())]),
    ];
    for (request_id, trace_headers) in hostile {
        let mut headers = trace_headers.to_vec();
        headers.push(("X-Request-Id", request_id));
        let r = s.get_with(&format!("Patient/{id}"), &headers)?;
        expect(&format!("read with {trace_headers:?}"), r.status, 200, &r.body)?;
        assert!(r.header("traceparent").is_none(), "no trace header goes back to the client");
    }
    let spans = receiver.wait_for("the fresh traces", ARRIVAL, |s| {
        hostile.iter().all(|(request_id, _)| server_span(s, "joined", request_id).is_some())
    })?;
    for (request_id, trace_headers) in hostile {
        let root = server_span(&spans, "joined", request_id).ok_or("no server span")?;
        assert_eq!(root.parent_span_id, "", "{trace_headers:?} is not joined");
        assert!(root.trace_id.len() == 32 && root.trace_id != trace_id, "{trace_headers:?}: a fresh trace");
    }
    Ok(())
}

#[test]
fn requests_succeed_while_the_collector_is_down_or_hangs() -> TestResult {
    // Nothing listens on the first; the second accepts connections and never answers.
    let down = format!("http://127.0.0.1:{}", free_port()?);
    let hanging = std::net::TcpListener::bind("127.0.0.1:0")?;
    let hangs = format!("http://127.0.0.1:{}", hanging.local_addr()?.port());
    for (what, endpoint) in [("down", down), ("hanging", hangs)] {
        let mut env = traced(&endpoint, "unheard");
        env.push(("FHIRGATE_TRACING_TIMEOUT_SECONDS".into(), "30".into()));
        env.push(("FHIRGATE_TRACING_QUEUE_SIZE".into(), "16".into()));
        let mut s = Server::start_with(&temp_dir("otel-down")?, &pairs(&env))?;
        let r = s.post("Patient", &json!({"resourceType": "Patient"}))?;
        expect("create", r.status, 201, &r.body)?;
        let id = r.json()?["id"].as_str().ok_or("an id")?.to_owned();
        // More spans than the queue holds: the extra ones are dropped, nothing waits.
        for i in 0..40 {
            let started = Instant::now();
            let r = s.get(&format!("Patient/{id}"))?;
            expect(&format!("read {i} with the collector {what}"), r.status, 200, &r.body)?;
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "read {i} with the collector {what} took {took:?}");
        }
        let took = s.terminate()?;
        assert!(took < Duration::from_secs(15), "stopping with the collector {what} took {took:?}");
    }
    drop(hanging);
    Ok(())
}

/// The JSON lines the server logged so far (every line must be one).
fn json_lines(s: &Server) -> TestResult<Vec<Value>> {
    s.log_text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not a JSON line ({e}): {l}").into()))
        .collect()
}

#[test]
fn json_logs_carry_each_requests_id_principal_interaction_type_status_and_duration() -> TestResult {
    let s = Server::start_with(&temp_dir("json-logs")?, &[("FHIRGATE_LOG_FORMAT", "json")])?;
    let r = s.post("Patient", &json!({"resourceType": "Patient"}))?;
    expect("create", r.status, 201, &r.body)?;
    let id = r.json()?["id"].as_str().ok_or("an id")?.to_owned();
    let r = s.get_with(&format!("Patient/{id}"), &[("X-Request-Id", "json-log-read")])?;
    expect("read", r.status, 200, &r.body)?;
    let r = s.get_with("Observation?code=x", &[("X-Request-Id", "json-log-search")])?;
    expect("search", r.status, 200, &r.body)?;

    let deadline = Instant::now() + Duration::from_secs(10);
    let done = |lines: &[Value], request_id: &str| {
        lines.iter().find(|l| l["message"] == "request done" && l["span"]["request_id"] == request_id).cloned()
    };
    let (read, search, lines) = loop {
        let lines = json_lines(&s)?;
        if let (Some(read), Some(search)) = (done(&lines, "json-log-read"), done(&lines, "json-log-search")) {
            break (read, search, lines);
        }
        if Instant::now() > deadline {
            return Err(format!("no `request done` lines for both requests in:\n{}", s.log_text()).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (line, interaction, resource_type) in [(&read, "read", "Patient"), (&search, "search-type", "Observation")] {
        let span = &line["span"];
        assert_eq!(span["interaction"], interaction, "{line}");
        assert_eq!(span["resource_type"], resource_type, "{line}");
        assert!(span["principal"].as_str().is_some_and(|p| !p.is_empty()), "the token's subject: {line}");
        assert_eq!(span["method"], "GET", "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["elapsed_ms"].as_f64().is_some_and(|ms| ms > 0.0), "the duration: {line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    // The audit events are still their own lines, on their own target, with the same id.
    let audited = lines.iter().any(|l| l["target"] == "audit" && l["record"]["request_id"] == "json-log-read");
    assert!(audited, "an audit line for the read:\n{}", s.log_text());
    let mixed = lines.iter().any(|l| l["target"] == "audit" && l["message"] == "request done");
    assert!(!mixed, "access lines stay out of the audit target");
    Ok(())
}

#[test]
fn a_streamed_route_carries_the_trace_to_the_remote() -> TestResult {
    let receiver = Receiver::start()?;
    let endpoint = receiver.endpoint();
    let remote = RemoteFhirgate::start_in(&temp_dir("otel-stream-remote")?, &pairs(&traced(&endpoint, "remote")))?;
    let dir = temp_dir("otel-stream")?;
    // Streaming needs policies that never read resource data: roles only.
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(
        policies.join("roles.cedar"),
        "permit (principal in Fhir::Role::\"globalAdmin\", action, resource);",
    )?;
    let toml = [
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("s", "", &["remote"], "type_level_only = true"),
        format!("\n[policy]\nsets = []\ndir = {}\n", topology::quoted(&policies.display().to_string())),
    ]
    .concat();
    let front = topology::start(&dir, &toml, &pairs(&traced(&endpoint, "front")))?;
    let r = remote.server.post("Patient", &json!({"resourceType": "Patient"}))?;
    expect("create on the remote", r.status, 201, &r.body)?;
    let id = r.json()?["id"].as_str().ok_or("an id")?.to_owned();
    let r = front.get_with(&format!("Patient/{id}"), &[("X-Request-Id", "otel-streamed")])?;
    expect("streamed read", r.status, 200, &r.body)?;
    let spans = receiver.wait_for("the streamed read on both sides", ARRIVAL, |s| {
        server_span(s, "front", "otel-streamed")
            .is_some_and(|root| s.iter().any(|x| x.trace_id == root.trace_id && x.service == "remote" && x.kind == 2))
    })?;
    let root = server_span(&spans, "front", "otel-streamed").ok_or("no server span")?;
    assert_eq!(root.attr("http.response.status_code"), Some("200"));
    let far = spans.iter().find(|x| x.trace_id == root.trace_id && x.service == "remote" && x.kind == 2);
    let far = far.ok_or("the remote's server span")?;
    assert_eq!(far.parent_span_id, root.span_id, "proxied by pingora: the front's server span is the parent");
    Ok(())
}
