//! End-to-end attacks on the operations endpoints: the metrics listener (`metrics.listen`)
//! serves `/metrics` under the same token rule and never a resource; what a caller makes up
//! (types, ids, methods, paths, queries) never becomes a label, so it can neither grow the series
//! without bound nor read back what others asked; the probes answer without a token and so
//! tell nothing but their fixed words, and a path that only starts like a probe is not public.

use std::collections::BTreeSet;

use fhirgate_e2e::{Server, TestResult, free_port, temp_dir};
use serde_json::json;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

#[test]
fn the_metrics_listener_needs_a_permitted_token_and_serves_no_resource() -> TestResult {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let s = Server::start_with(&temp_dir("attack-metrics-listener")?, &[("FHIRGATE_METRICS_LISTEN", listen.as_str())])?;
    let admin = s.token.clone().ok_or("the harness token")?;
    let reader = s.mint(&["--role", "globalReader"])?;
    let metrics = format!("http://{listen}/metrics");
    let status = |token: Option<&str>| -> TestResult<u16> {
        let mut request = agent().get(&metrics);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Ok(request.call()?.status().as_u16())
    };
    assert_eq!(status(None)?, 401, "no token");
    assert_eq!(status(Some("not.a.token"))?, 401, "a forged token");
    assert_eq!(status(Some(&reader))?, 403, "a token the policies do not allow it");
    assert_eq!(status(Some(&admin))?, 200, "globalAdmin");

    assert_eq!(s.put("Patient/hidden", &json!({"resourceType": "Patient", "id": "hidden"}))?.status, 201);
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/hidden"}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let base = format!("http://{listen}");
    let bearer = format!("Bearer {admin}");
    let tries: [(&str, &str, Option<String>); 6] = [
        ("GET", "/Patient/hidden", None),
        ("GET", "/Patient", None),
        ("GET", "/metadata", None),
        ("GET", "/health/ready", None),
        ("POST", "/Patient", Some(json!({"resourceType": "Patient"}).to_string())),
        ("POST", "/", Some(bundle.to_string())),
    ];
    for (method, path, body) in tries {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("Authorization", bearer.as_str())
            .header("Content-Type", "application/fhir+json");
        let mut reply = match body {
            Some(b) => agent().run(request.body(b)?)?,
            None => agent().run(request.body(())?)?,
        };
        let text = reply.body_mut().read_to_string()?;
        assert_eq!(reply.status().as_u16(), 404, "{method} {path} on the metrics listener: {text}");
        assert!(!text.contains("hidden") || text.contains("serves `/metrics` only"), "{text}");
    }
    let all = s.get("Patient?_summary=count")?.json()?;
    assert_eq!(all["total"], 1, "nothing was written through the metrics listener: {all}");
    Ok(())
}

#[test]
fn what_a_caller_makes_up_never_becomes_a_label() -> TestResult {
    let s = Server::start_with(&temp_dir("attack-metrics-labels")?, &[("FHIRGATE_METRICS_PUBLIC", "true")])?;
    let mut sent = Vec::new();
    for i in 0..60 {
        let marker = format!("zq{i}x");
        sent.push(marker.clone());
        for (method, path) in [
            ("GET", format!("{marker}/1")),
            ("GET", format!("Patient/{marker}")),
            ("GET", format!("Patient?name={marker}")),
            ("GET", format!("Patient/{marker}/_history/{marker}")),
            ("DELETE", marker.clone()),
            ("GET", format!("Patient/p/{marker}")),
            ("GET", format!("{marker}/{marker}/{marker}/{marker}/{marker}")),
            ("POST", format!("${marker}")),
        ] {
            s.send("GET", &path, None, &[]).map(|_| ())?;
            s.send(method, &path, None, &[("X-Request-Id", marker.as_str())]).map(|_| ())?;
        }
        let _ = s.send_as(Some(&format!("{marker}.{marker}.{marker}")), "GET", "Patient", None, &[])?;
    }
    let exposition = s.send_as(None, "GET", "metrics", None, &[])?;
    assert_eq!(exposition.status, 200);
    let leaked: Vec<&String> = sent.iter().filter(|m| exposition.body.contains(m.as_str())).collect();
    assert!(leaked.is_empty(), "made-up values in the metrics: {leaked:?}");
    let series: BTreeSet<&str> = exposition
        .body
        .lines()
        .filter(|l| l.starts_with("fhirgate_http_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series))
        .collect();
    // 60 rounds of 17 made-up requests fall into a handful of series, not hundreds.
    assert!(series.len() <= 25, "{} series: {series:#?}", series.len());
    Ok(())
}

#[test]
fn the_probes_say_only_their_fixed_words_and_their_look_alikes_are_not_public() -> TestResult {
    let s = Server::start("attack-probes")?;
    assert_eq!(s.put("Patient/secret", &json!({"resourceType": "Patient", "id": "secret"}))?.status, 201);
    for path in ["health/live", "health/ready", "health/ready?verbose=true", "health/live?_format=json"] {
        let r = s.send_as(None, "GET", path, None, &[])?;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let keys: BTreeSet<String> = r.json()?.as_object().ok_or("an object")?.keys().cloned().collect();
        assert!(keys.iter().all(|k| ["status", "store", "policies"].contains(&k.as_str())), "{path}: {keys:?}");
        assert!(!r.body.contains("secret") && !r.body.contains("sqlite"), "{path}: {}", r.body);
    }
    for path in ["health/live/../../Patient/secret", "health/ready/Patient", "health/x", "health/live/Patient/secret"] {
        let r = s.send_as(None, "GET", path, None, &[])?;
        assert_eq!(r.status, 401, "{path} is not a probe: {}", r.body);
    }
    Ok(())
}
