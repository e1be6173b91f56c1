//! Hot reload of the policies: on SIGHUP, and when a `*.cedar` file of the policy directory
//! changes (checked every `policy.reload_seconds`), including through a swapped symlink (a
//! Kubernetes ConfigMap update). A thread of its own with a small runtime,
//! so it works whatever pingora does with its runtimes.

use std::path::{Path, PathBuf};
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

/// One `*.cedar` file as the loader reads it: name, the file it resolves to (through symlinks),
/// its size and modification time.
type FileMark = (String, Option<PathBuf>, u64, Option<SystemTime>);

/// The `*.cedar` files of the directory, followed through symlinks as the loader reads them.
/// Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink the files point
/// through: the names stay, the resolved paths (and usually the times) change.
fn fingerprint(dir: &Path) -> Vec<FileMark> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cedar"))
        .map(|e| {
            let path = e.path();
            let meta = std::fs::metadata(&path).ok();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::canonicalize(&path).ok(),
                meta.as_ref().map_or(0, std::fs::Metadata::len),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    files.sort();
    files
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A ConfigMap volume: `..<version>/policy.cedar`, `..data -> ..<version>`,
    /// `policy.cedar -> ..data/policy.cedar`.
    fn version(dir: &Path, name: &str, text: &str, mtime: SystemTime) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join(name))?;
        let file = dir.join(name).join("policy.cedar");
        std::fs::write(&file, text)?;
        std::fs::File::options().write(true).open(&file)?.set_modified(mtime)
    }

    #[test]
    fn a_configmap_symlink_swap_changes_the_fingerprint() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("fhirgate-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // Same size and same modification time in both versions: only the swap tells them apart.
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        version(&dir, "..2026_01", "permit (principal, action, resource);", mtime)?;
        version(&dir, "..2026_02", "forbid (principal, action, resource);", mtime)?;
        symlink("..2026_01", dir.join("..data"))?;
        symlink("..data/policy.cedar", dir.join("policy.cedar"))?;
        let before = fingerprint(&dir);
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(fingerprint(&dir), before, "stable while nothing changes");
        // The kubelet's update: a new link, renamed over `..data` (atomic).
        symlink("..2026_02", dir.join("..data_tmp"))?;
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data"))?;
        let after = fingerprint(&dir);
        assert_ne!(after, before, "the swap is seen");
        let text = std::fs::read_to_string(dir.join("policy.cedar"))?;
        assert!(text.starts_with("forbid"), "the loader reads the new version");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
