//! Structured logs through `tracing`: text for people, JSON for machines. Audit events (target
//! `audit`) go through a layer of their own, always JSON, that the log level (`log.level`,
//! `RUST_LOG`) cannot silence: a `warn` or `error` level still writes every allow and deny.
//! The general layer leaves them out, so each is written once.
//!
//! Lines go to stderr from a writer thread, not from the request's thread: one `write` per
//! access-log line and audit event on the request path was 7.6 % of a read (bench/README.md).
//! The writer never drops a line (a full queue makes the request wait instead), and the guard
//! [`init`] returns writes out what is queued when it drops, at the end of `serve`.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt as _, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

use crate::config::LogConfig;

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "audit";

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level (for
/// everything but the audit events). Keep the guard until the process is done logging.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(config: &LogConfig) -> WorkerGuard {
    let level = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let not_audit = filter_fn(|meta| meta.target() != AUDIT_TARGET);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    let general = fmt::layer().with_writer(writer.clone()).with_ansi(ansi);
    let general = if config.format == "json" {
        general.json().flatten_event(true).with_current_span(true).boxed()
    } else {
        general.boxed()
    };
    let audit = fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_filter(Targets::new().with_target(AUDIT_TARGET, tracing::Level::TRACE));
    // A second initialisation (only possible in tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry().with(general.with_filter(level.and(not_audit))).with(audit).try_init();
    guard
}
