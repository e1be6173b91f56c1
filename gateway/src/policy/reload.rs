//! Hot reload of the policies: on SIGHUP, and when a `*.cedar` file of the policy directory
//! changes (checked every `policy.reload_seconds`). A thread of its own with a small runtime,
//! so it works whatever pingora does with its runtimes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Policies;

/// Starts the watcher thread.
pub fn spawn(policies: Arc<Policies>, every: Duration) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Installed before the thread starts: a SIGHUP right after start must not kill the process.
    let mut hangup =
        runtime.block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) })?;
    std::thread::Builder::new().name("policy-reload".into()).spawn(move || {
        runtime.block_on(async move {
            let mut seen = policies.dir().map(|d| fingerprint(&d));
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            loop {
                tokio::select! {
                    _ = hangup.recv() => {
                        tracing::info!("SIGHUP: reloading policies");
                        seen = policies.dir().map(|d| fingerprint(&d));
                        policies.reload();
                    }
                    _ = tick.tick() => {
                        let Some(dir) = policies.dir() else { continue };
                        let now = fingerprint(&dir);
                        if seen.as_ref() != Some(&now) {
                            seen = Some(now);
                            tracing::info!(dir = %dir.display(), "policy files changed: reloading");
                            policies.reload();
                        }
                    }
                }
            }
        });
    })?;
    Ok(())
}

/// Names, sizes and modification times of the `*.cedar` files.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cedar"))
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.as_ref().map_or(0, std::fs::Metadata::len),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    files.sort();
    files
}
