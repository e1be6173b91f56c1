//! OpenTelemetry traces (`[tracing]`, off by default): the `tracing` spans of a request exported
//! over OTLP/HTTP (protobuf) to a collector.
//!
//! The request's span ([`spans::request`], the one its log lines carry) is the trace's server
//! span; it joins the caller's trace when the request carries a W3C `traceparent`
//! ([`propagation`]). Below it: `authenticate`, one `cedar.decide` per decision, `engine` per
//! target called, one `store.*` per store call (`crate::metrics::store::Timed`) and `upstream` per remote
//! exchange, whose `traceparent` the remote receives.
//!
//! Those child spans have their own target ([`SPAN_TARGET`]): the log layers leave them out and,
//! with tracing off, no layer wants them, so they cost nothing. Finished spans go to a bounded
//! queue that the SDK's own thread exports in batches (reqwest's blocking client); a full queue
//! drops spans, so a slow or absent collector never holds up a request.

pub mod propagation;
pub mod spans;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::filter_fn;

use crate::config::TracingConfig;
use crate::error::GatewayError;

/// The target of the spans made for traces only (see the module documentation).
pub const SPAN_TARGET: &str = "fhirgate::trace";

/// How long the last spans may take to leave at exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// Whether traces are exported (set once, at start).
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported: the request span then gets its OTel attributes.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The exporter: flushes what is queued (for at most [`SHUTDOWN_WAIT`]) when dropped.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_WAIT) {
            eprintln!("fhirgate: the last spans could not be exported: {e}");
        }
    }
}

/// The first layer over the subscriber's registry.
pub type RegistryLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// The layer turning the request spans and [`SPAN_TARGET`] spans into OTel spans, and the
/// exporter it feeds; `None` when tracing is off.
pub fn layer(config: &TracingConfig) -> Result<Option<(RegistryLayer, Exporter)>, GatewayError> {
    if !config.enabled {
        return Ok(None);
    }
    let failed = |e: &dyn std::fmt::Display| GatewayError::Config(format!("`[tracing]`: {e}"));
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(config.timeout_seconds))
        .with_headers(config.header_pairs().into_iter().collect());
    if let Some(url) = config.traces_url() {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter.build().map_err(|e| failed(&e))?;
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(config.queue_size)
        .with_scheduled_delay(Duration::from_millis(config.export_interval_ms))
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batches).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("fhirgate");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(filter_fn(|meta| meta.is_span() && (meta.target() == SPAN_TARGET || spans::is_request(meta))));
    ON.store(true, Ordering::Relaxed);
    Ok(Some((Box::new(layer), Exporter { provider })))
}
