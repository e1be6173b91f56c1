use std::time::Duration;

use fhirgate_policies::Decision;

use super::labels::RequestLabels;
use super::*;
use crate::config::Config;

/// The value of the sample `name{labels}` in an exposition (labels as written, in order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The default configuration with its data directory (where the paging key is created) in a
/// temporary directory, not in the source tree.
fn config() -> Config {
    let mut config = Config::default();
    config.store.data_dir = std::env::temp_dir().join(format!("fhirgate-metrics-tests-{}", std::process::id()));
    config
}

#[test]
fn counted_requests_and_decisions_show_in_the_exposition() -> Result<(), crate::error::GatewayError> {
    let metrics = metrics();
    let routing = Routing::new(&config(), None)?;
    let read = RequestLabels { interaction: "read", resource_type: "Patient", route: "unit-test" };
    let series =
        r#"fhirgate_http_requests_total{interaction="read",resource_type="Patient",route="unit-test",status="200"}"#;
    let before = sample(&metrics.render(&routing), series).unwrap_or(0.0);
    metrics.request(&read, 200, Duration::from_millis(3));
    metrics.request(&read, 200, Duration::from_millis(4));
    let denied = Decision { allowed: false, policies: vec!["unit-set:no-reads".into()], ..Decision::default() };
    metrics.decision(&denied, "stored");
    let text = metrics.render(&routing);
    assert_eq!(sample(&text, series), Some(before + 2.0), "{text}");
    let decision = r#"fhirgate_authz_decisions_total{level="stored",outcome="deny",policy_set="unit-set"}"#;
    assert!(sample(&text, decision).is_some_and(|v| v >= 1.0), "{text}");
    assert!(text.contains("# TYPE fhirgate_http_request_duration_seconds histogram"), "{text}");
    assert!(
        text.contains(
            r#"fhirgate_http_request_duration_seconds_bucket{interaction="read",route="unit-test",le="0.005"}"#
        )
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0) || !cfg!(target_os = "linux"));
    assert!(sample(&text, "fhirgate_cosmos_request_units_total").is_some(), "kept from before: {text}");
    Ok(())
}

#[test]
fn default_deny_and_evaluation_errors_have_their_own_labels() {
    let metrics = metrics();
    let routing = Routing::new(&config(), None).ok();
    metrics.decision(&Decision::default(), "type");
    metrics.decision(&Decision { errors: vec!["boom".into()], ..Decision::default() }, "type");
    let text = routing.map(|r| metrics.render(&r)).unwrap_or_default();
    assert!(
        text.contains(r#"fhirgate_authz_decisions_total{level="type",outcome="deny",policy_set="none"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"fhirgate_authz_decisions_total{level="type",outcome="error",policy_set="none"}"#),
        "{text}"
    );
}
