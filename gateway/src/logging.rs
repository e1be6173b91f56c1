//! Structured logs through `tracing`: text for people, JSON for machines. Audit events (target
//! `audit`) go through a layer of their own that the log level (`log.level`, `RUST_LOG`) cannot
//! silence: a `warn` or `error` level still writes every allow and deny, always as one JSON
//! object per line with the event under `record`. The general layer leaves them out, so each is
//! written once.
//!
//! Lines go to stderr from a writer thread, not from the request's thread: one `write` per
//! access-log line and audit event on the request path was 7.6 % of a read (bench/README.md).
//! A request's thread appends its lines to a buffer the writer thread writes out every few
//! milliseconds ([`writer`]). The writer never drops a line (when it falls far behind, the
//! thread adding a line writes them out itself), and the guard [`init`] returns writes out what
//! waits when it drops, at the end of `serve`.
//!
//! With `[tracing]` on, a third layer turns the request spans into OpenTelemetry spans
//! ([`crate::telemetry`]); the spans made for traces only stay out of the log.

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, fmt};

use crate::config::{LogConfig, TracingConfig};
use crate::error::GatewayError;
use crate::telemetry::{self, Exporter, SPAN_TARGET};

mod timestamp;
mod writer;

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "audit";

/// What must live while the process logs: the span exporter (dropped first: it sends the last
/// spans) and the log writer.
pub struct Logging {
    _exporter: Option<Exporter>,
    _writer: writer::Guard,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level (for
/// everything but the audit events). Keep the guard until the process is done logging.
pub fn init(config: &LogConfig, tracing: &TracingConfig) -> Result<Logging, GatewayError> {
    let (traces, exporter) = match telemetry::layer(tracing)? {
        Some((layer, exporter)) => (Some(layer), Some(exporter)),
        None => (None, None),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Batched: the writer thread writes what waits with one `write` every few milliseconds, not
    // one per line; a read logs three lines.
    let (writer, guard) = writer::batched(writer::Stderr);
    // A second initialisation (only possible in tests) is harmless: keep the first subscriber.
    // Without traces there is no traces layer at all: an absent (`None`) layer counts as one
    // that wants every span, so each span of a request was made and tracked for no one.
    let _ = match traces {
        Some(traces) => tracing_subscriber::registry()
            .with(traces)
            .with(general(config, writer.clone(), ansi))
            .with(audit(writer))
            .try_init(),
        None => {
            tracing_subscriber::registry().with(general(config, writer.clone(), ansi)).with(audit(writer)).try_init()
        }
    };
    if exporter.is_some() {
        let endpoint = tracing.traces_url().unwrap_or_else(|| "from OTEL_EXPORTER_OTLP_* variables".into());
        tracing::info!(%endpoint, sample_ratio = tracing.sample_ratio, "OpenTelemetry traces on");
    }
    Ok(Logging { _exporter: exporter, _writer: guard })
}

/// The layer of every log line but the audit events and the spans made for traces only, at the
/// configured level (`RUST_LOG`, when set, wins).
fn general<S>(config: &LogConfig, writer: writer::Batched<writer::Stderr>, ansi: bool) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    let level = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let not_audit = filter_fn(|meta| meta.target() != AUDIT_TARGET && meta.target() != SPAN_TARGET);
    let general = fmt::layer().with_writer(writer).with_ansi(ansi);
    let general = if config.format == "json" {
        general.json().flatten_event(true).with_current_span(true).boxed()
    } else {
        general.boxed()
    };
    general.with_filter(level.and(not_audit))
}

/// The layer of the audit events, whatever the level.
fn audit<S>(writer: writer::Batched<writer::Stderr>) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    AuditLayer { writer }.with_filter(filter_fn(|meta| meta.target() == AUDIT_TARGET))
}

/// Writes each audit event as one JSON line: `timestamp`, `level`, `target`, `message`, and the
/// event's `record` (built as JSON text by [`crate::policy::audit`] and the proxy) as a nested
/// object, so a log shipper reads its fields without a second decoding.
struct AuditLayer<W> {
    writer: W,
}

impl<S, W> Layer<S> for AuditLayer<W>
where
    S: tracing::Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = AuditFields::default();
        event.record(&mut fields);
        // The record is JSON text already: spliced in as it is once checked (a check allocates
        // nothing; parsing it into a `Value` and rendering it again was a real cost per read).
        // Text that is not JSON goes in as a string; JSON spread over lines is rendered again
        // (one event, one line).
        let record = match fields.record {
            Some(r) if r.contains(['\n', '\r']) => {
                serde_json::from_str(&r).unwrap_or_else(|_| Value::from(r)).to_string()
            }
            Some(r) if serde_json::from_str::<serde::de::IgnoredAny>(&r).is_ok() => r,
            Some(r) => Value::from(r).to_string(),
            None => "null".to_owned(),
        };
        let mut text = String::with_capacity(record.len() + 128);
        text.push_str("{\"timestamp\":\"");
        timestamp::now_into(&mut text);
        text.push_str("\",\"level\":\"");
        text.push_str(event.metadata().level().as_str());
        text.push_str("\",\"target\":\"");
        crate::policy::audit::escape_into(&mut text, event.metadata().target());
        text.push_str("\",\"message\":\"");
        crate::policy::audit::escape_into(&mut text, &fields.message);
        text.push_str("\",\"record\":");
        text.push_str(&record);
        text.push_str("}\n");
        let _ = std::io::Write::write_all(&mut self.writer.make_writer(), text.as_bytes());
    }
}

/// The `message` and `record` fields of an audit event.
#[derive(Default)]
struct AuditFields {
    message: String,
    record: Option<String>,
}

impl Visit for AuditFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => value.clone_into(&mut self.message),
            "record" => self.record = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "record" => self.record = Some(format!("{value:?}")),
            _ => {}
        }
    }
}
