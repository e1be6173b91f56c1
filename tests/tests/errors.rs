//! End-to-end: bad input of every kind gets an OperationOutcome with the right status, never a
//! crash, a 500 or a partial write.

use std::time::Duration;

use fhirgate_e2e::{Server, TestResult};
use serde_json::json;

#[test]
fn broken_json_and_wrong_shapes_are_400() -> TestResult {
    let s = Server::start("badjson")?;
    for body in [&b"{\"resourceType\": \"Patient\", "[..], b"[]", b"42", b"", b"{}", b"null"] {
        let r = s.send("POST", "Patient", Some(body), &[])?;
        assert_eq!(r.status, 400, "body {:?}: {}", String::from_utf8_lossy(body), r.body);
        assert!(!r.outcome_issues()?.is_empty());
    }
    let r =
        s.send("POST", "Patient", Some(b"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\"}]}"), &[])?;
    assert_eq!(r.status, 400, "invalid UTF-8: {}", r.body);
    Ok(())
}

#[test]
fn validation_reports_every_problem_with_its_path() -> TestResult {
    let s = Server::start("invalid")?;
    let r = s.post(
        "Patient",
        &json!({"resourceType": "Patient", "nmae": [{"family": "x"}],
        "birthDate": "1990-13-45", "active": "yes", "gender": ["male"]}),
    )?;
    assert_eq!(r.status, 400, "{}", r.body);
    let issues = r.outcome_issues()?;
    let text = serde_json::to_string(&issues)?;
    assert!(issues.len() >= 4, "all problems reported, not just the first: {text}");
    for needle in ["nmae", "birthDate", "active", "gender"] {
        assert!(text.contains(needle), "no issue about {needle}: {text}");
    }
    let r = s.post("Patient", &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))?;
    assert_eq!(r.status, 400, "type mismatch with the URL");
    let r = s.post("Observation", &json!({"resourceType": "Observation", "code": {"text": "x"}}))?;
    assert_eq!(r.status, 400, "missing required status: {}", r.body);
    assert!(r.body.contains("status"), "{}", r.body);
    assert_eq!(s.get("_history")?.json()?["total"], 0, "nothing was stored");
    Ok(())
}

#[test]
fn content_negotiation() -> TestResult {
    let s = Server::start("negotiate")?;
    let r = s.get_with("metadata", &[("Accept", "application/fhir+turtle")])?;
    assert_eq!(r.status, 406);
    assert_eq!(r.outcome_issues()?[0]["code"], "not-supported");
    assert_eq!(s.get("metadata?_format=ttl")?.status, 406);
    let r = s.get_with("metadata", &[("Accept", "application/fhir+xml")])?;
    assert!(r.header("Content-Type").is_some_and(|c| c.starts_with("application/fhir+xml")), "XML: tests/xml.rs");
    let r = s.get_with("metadata", &[("Accept", "application/json")])?;
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").is_some_and(|c| c.starts_with("application/json")));
    let r = s.get("metadata?_format=json&_pretty=true")?;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\n  \""), "pretty printed");
    assert!(!s.get("metadata")?.body.contains('\n'), "compact by default");
    let r = s.send(
        "POST",
        "Patient",
        Some(b"@prefix fhir: <http://hl7.org/fhir/> ."),
        &[("Content-Type", "application/fhir+turtle")],
    )?;
    assert_eq!(r.status, 415);
    assert!(!r.outcome_issues()?.is_empty());
    let r = s.send("POST", "Patient", Some(b"{}"), &[("Content-Type", "text/plain")])?;
    assert_eq!(r.status, 415);
    Ok(())
}

#[test]
fn unsupported_methods() -> TestResult {
    let s = Server::start("methods")?;
    let r = s.send("DELETE", "metadata", None, &[])?;
    assert_eq!(r.status, 405);
    assert!(!r.outcome_issues()?.is_empty());
    assert_eq!(s.send("POST", "Patient/1", Some(b"{}"), &[])?.status, 405);
    assert_eq!(s.send("PUT", "Patient", Some(b"{}"), &[])?.status, 405);
    assert_eq!(
        s.send("PATCH", "Patient", Some(b"[]"), &[("Content-Type", "application/json-patch+json")])?.status,
        405
    );
    // An operation the server does not offer: a 4xx `not-supported` (a 5xx reads as a server
    // fault to clients and test suites), never ignored.
    let r = s.send("POST", "Patient/$no-such-operation", Some(b"{}"), &[])?;
    assert_eq!(r.status, 400, "{}", r.body);
    let issues = r.outcome_issues()?;
    assert_eq!(issues[0]["code"], "not-supported", "{}", r.body);
    assert!(r.body.contains("`$no-such-operation`"), "{}", r.body);
    assert_eq!(s.get("_history")?.json()?["total"], 0);
    Ok(())
}

#[test]
fn oversized_bodies_are_413() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("oversize")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_MAX_BODY_BYTES", "1000")])?;
    let big = json!({"resourceType": "Patient", "id": "big", "name": [{"family": "x".repeat(2000)}]}).to_string();
    let r = s.send("PUT", "Patient/big", Some(big.as_bytes()), &[])?;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.outcome_issues()?[0]["code"], "too-costly");
    // Chunked, so the size is only known while reading.
    let head = "PUT /Patient/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut raw = head.as_bytes().to_vec();
    for chunk in big.as_bytes().chunks(300) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = s.raw(&raw, false, Duration::from_secs(10))?;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(s.get("Patient/big")?.status, 404, "nothing stored");
    assert_eq!(s.get("health")?.status, 200);
    Ok(())
}

#[test]
fn default_limit_rejects_a_50_mb_string_field() -> TestResult {
    let s = Server::start("fifty")?;
    let huge = format!(
        "{{\"resourceType\":\"Patient\",\"id\":\"h\",\"name\":[{{\"family\":\"{}\"}}]}}",
        "y".repeat(50 * 1024 * 1024)
    );
    let r = s.send("PUT", "Patient/h", Some(huge.as_bytes()), &[]);
    // The server may answer 413 before the client finished sending; a reset connection is fine too.
    if let Ok(r) = r {
        assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    }
    assert_eq!(s.get("Patient/h")?.status, 404);
    assert_eq!(s.get("health")?.status, 200);
    Ok(())
}

#[test]
fn deeply_nested_json_is_400() -> TestResult {
    let s = Server::start("nested")?;
    let depth = 10_000;
    let body = format!("{{\"resourceType\":\"Patient\",\"extension\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 400, "{}", r.body);
    // Nested objects too, below the parser limit: validation must not overflow either.
    let mut nested = String::from("{\"url\":\"http://x\",\"valueString\":\"v\"}");
    for _ in 0..100 {
        nested = format!("{{\"url\":\"http://x\",\"extension\":[{nested}]}}");
    }
    let body = format!("{{\"resourceType\":\"Patient\",\"extension\":[{nested}]}}");
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[])?;
    assert!(r.status == 201 || r.status == 400, "{}", r.status);
    assert_eq!(s.get("health")?.status, 200);
    Ok(())
}

#[test]
fn a_body_cut_off_mid_upload_writes_nothing() -> TestResult {
    let s = Server::start("cutoff")?;
    let body = json!({"resourceType": "Patient", "id": "cut", "active": true}).to_string();
    let head = format!(
        "PUT /Patient/cut HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
        body.len() + 100
    );
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
    let _ = s.raw(&raw, true, Duration::from_secs(5))?;
    assert_eq!(s.get("Patient/cut")?.status, 404, "nothing stored");
    assert_eq!(s.get("health")?.status, 200, "server still up");
    Ok(())
}

#[test]
fn slow_uploads_time_out() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("slow")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_REQUEST_TIMEOUT_SECONDS", "1")])?;
    let head =
        "PUT /Patient/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{";
    let started = std::time::Instant::now();
    let reply = s.raw(head.as_bytes(), false, Duration::from_secs(20))?;
    assert!(started.elapsed() < Duration::from_secs(15), "the server gave up on the body");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"timeout\""), "an OperationOutcome with code timeout: {reply}");
    assert_eq!(s.get("Patient/slow")?.status, 404);
    Ok(())
}
