//! `[tracing]`: OpenTelemetry traces over OTLP/HTTP, off by default (`crate::telemetry` exports
//! them). Like every section, each key has its `FHIRGATE_TRACING_*` variable.

use serde::{Deserialize, Serialize};

/// The one OTLP protocol built in.
pub const HTTP_PROTOBUF: &str = "http/protobuf";

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Export a trace of each request (a server span, with spans for authentication, each Cedar
    /// decision, the engine, each store call and each remote call).
    pub enabled: bool,
    /// The collector's OTLP/HTTP address; `/v1/traces` is added to one without a path
    /// (`http://otel-collector:4318` sends to `http://otel-collector:4318/v1/traces`). Empty:
    /// the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// variables (as a platform's managed agent sets them).
    pub endpoint: String,
    /// `http/protobuf` (the only one built in; gRPC would need a second HTTP stack).
    pub protocol: String,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share of the traces started here that are kept, 0.0 to 1.0. A request carrying a
    /// `traceparent` follows its caller's decision instead.
    pub sample_ratio: f64,
    /// Extra headers to the collector, `name=value` (an API key, a tenant); `fhirgate config`
    /// shows their names only.
    pub headers: Vec<String>,
    /// Seconds one export may take before it is abandoned.
    pub timeout_seconds: u64,
    /// Milliseconds between two exports of the finished spans.
    pub export_interval_ms: u64,
    /// Finished spans waiting for export; when full (a slow or absent collector), new spans are
    /// dropped: a request never waits for the exporter.
    pub queue_size: usize,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4318".into(),
            protocol: HTTP_PROTOBUF.into(),
            service_name: "fhirgate".into(),
            sample_ratio: 1.0,
            headers: Vec::new(),
            timeout_seconds: 10,
            export_interval_ms: 5000,
            queue_size: 2048,
        }
    }
}

impl TracingConfig {
    /// The URL spans are posted to; `None`: the one the `OTEL_EXPORTER_OTLP_*` variables name.
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.endpoint.trim_end_matches('/');
        if endpoint.is_empty() {
            return None;
        }
        let has_path = endpoint.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
        Some(if has_path { endpoint.to_owned() } else { format!("{endpoint}/v1/traces") })
    }

    /// The extra headers as (name, value) pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter_map(|h| h.split_once('='))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect()
    }

    /// The settings as `fhirgate config` shows them: header values hidden.
    pub fn shown(&self) -> Self {
        let hide = |h: &String| h.split_once('=').map_or_else(|| h.clone(), |(name, _)| format!("{name}=<hidden>"));
        Self { headers: self.headers.iter().map(hide).collect(), ..self.clone() }
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if self.protocol != HTTP_PROTOBUF {
            return Err(format!(
                "`tracing.protocol` must be `{HTTP_PROTOBUF}` (the only OTLP protocol built in), not `{}`",
                self.protocol
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!("`tracing.sample_ratio` must be between 0.0 and 1.0, not {}", self.sample_ratio));
        }
        if self.queue_size == 0 || self.timeout_seconds == 0 || self.export_interval_ms == 0 {
            return Err(
                "`tracing.queue_size`, `tracing.timeout_seconds` and `tracing.export_interval_ms` must be positive"
                    .into(),
            );
        }
        let url = self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://");
        if !url && !self.endpoint.is_empty() {
            return Err(format!("`tracing.endpoint` must be an http:// or https:// URL, not `{}`", self.endpoint));
        }
        if let Some(bad) = self.headers.iter().find(|h| h.split_once('=').is_none_or(|(n, _)| n.trim().is_empty())) {
            let name = bad.split_once('=').map_or(bad.as_str(), |(n, _)| n);
            return Err(format!("`tracing.headers`: `{name}` is not `name=value`"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{Config, Overrides};
    use crate::error::GatewayError;

    #[test]
    fn the_traces_path_is_added_only_to_an_endpoint_without_one() {
        let at = |endpoint: &str| TracingConfig { endpoint: endpoint.into(), ..TracingConfig::default() }.traces_url();
        assert_eq!(at("http://collector:4318").as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(at("http://collector:4318/").as_deref(), Some("http://collector:4318/v1/traces"));
        let custom = "https://otlp.example/custom/v1/traces";
        assert_eq!(at(custom).as_deref(), Some(custom));
        assert_eq!(at(""), None, "the OTEL_EXPORTER_OTLP_* variables decide");
    }

    #[test]
    fn bad_settings_are_refused_with_the_key_named() {
        let with = |f: fn(&mut TracingConfig)| {
            let mut c = TracingConfig::default();
            f(&mut c);
            c.check()
        };
        assert!(with(|_| {}).is_ok());
        assert!(with(|c| c.protocol = "grpc".into()).is_err_and(|e| e.contains("tracing.protocol")));
        assert!(with(|c| c.sample_ratio = 1.5).is_err_and(|e| e.contains("sample_ratio")));
        assert!(with(|c| c.endpoint = "collector:4318".into()).is_err_and(|e| e.contains("tracing.endpoint")));
        assert!(with(|c| c.headers = vec!["x-api-key".into()]).is_err_and(|e| e.contains("x-api-key")));
    }

    #[test]
    fn header_values_are_not_shown() {
        let c = TracingConfig { headers: vec!["x-api-key=secret".into()], ..TracingConfig::default() };
        assert_eq!(c.shown().headers, ["x-api-key=<hidden>"]);
        assert_eq!(c.header_pairs(), [("x-api-key".to_owned(), "secret".to_owned())]);
    }

    #[test]
    fn variables_set_the_section_and_fhirgate_config_hides_header_values() -> Result<(), GatewayError> {
        let vars: HashMap<String, String> = [
            ("FHIRGATE_TRACING_ENABLED", "true"),
            ("FHIRGATE_TRACING_SAMPLE_RATIO", "0.25"),
            ("FHIRGATE_TRACING_HEADERS", "x-api-key=k-secret-1, x-tenant=t1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (c, sources) = Config::load_with_sources(None, &vars, Overrides::default())?;
        assert!(c.tracing.enabled);
        assert!((c.tracing.sample_ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(c.tracing.header_pairs().len(), 2);
        let shown = c.describe(&sources)?;
        assert!(shown.contains("x-api-key=<hidden>") && !shown.contains("k-secret-1"), "{shown}");
        let off = Config::load(None, &HashMap::new(), Overrides::default())?;
        assert!(!off.tracing.enabled, "off by default");
        let bad: HashMap<String, String> = [("FHIRGATE_TRACING_SAMPLE_RATIO".to_owned(), "2".to_owned())].into();
        let refused = Config::load(None, &bad, Overrides::default());
        assert!(matches!(refused, Err(GatewayError::Config(m)) if m.contains("sample_ratio")));
        Ok(())
    }
}
