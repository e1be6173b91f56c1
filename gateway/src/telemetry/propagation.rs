//! W3C Trace Context (`traceparent`, `tracestate`): read from an incoming request, so that the
//! request's span joins its caller's trace, and written on each request to a remote target, so
//! that the remote's spans join this one.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use pingora::http::RequestHeader;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The caller's trace context, if `header` carries a valid one.
pub fn extract(header: &RequestHeader) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&Headers(header))
}

/// Writes the context of `span` (the current span's when called from inside it) onto an outgoing
/// request. Nothing is written when tracing is off or the span is not sampled out of a trace.
pub fn inject(span: &tracing::Span, header: &mut RequestHeader) {
    if !super::enabled() {
        return;
    }
    let context = span.context();
    TraceContextPropagator::new().inject_context(&context, &mut Outgoing(header));
}

struct Headers<'a>(&'a RequestHeader);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.headers.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.headers.keys().map(|name| name.as_str()).collect()
    }
}

struct Outgoing<'a>(&'a mut RequestHeader);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Err(e) = self.0.insert_header(key.to_owned(), value) {
            tracing::debug!(error = %e, "the trace context could not be sent");
        }
    }
}
