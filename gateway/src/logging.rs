//! Structured logs through `tracing`: text for people, JSON for machines. Audit events go to
//! their own target, `audit`, always as JSON fields.
//!
//! Lines go to stderr from a writer thread, not from the request's thread: one `write` per
//! access-log line and audit event on the request path was 7.6 % of a read (bench/README.md).
//! The writer never drops a line (a full queue makes the request wait instead), and the guard
//! [`init`] returns writes out what is queued when it drops, at the end of `serve`.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level. Keep
/// the guard until the process is done logging.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(config: &LogConfig) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second initialisation (only possible in tests) is harmless: keep the first subscriber.
    let _ = if config.format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
    guard
}
