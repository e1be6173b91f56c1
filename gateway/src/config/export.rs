//! `[export]`: bulk `$export` jobs of the local targets (engine `export`), and the output location
//! of every bulk job (`$import` error reports too).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fhirgate_engine::bulk::blob::Account;
use fhirgate_engine::export::{ExportSettings, Location};
use serde::{Deserialize, Serialize};

use super::Config;

/// Where export jobs write their files, and how long they are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Bulk export on (the local targets' `$export`); off answers 501.
    pub enabled: bool,
    /// The directory of the jobs' NDJSON files (and of `$import`'s error reports); default
    /// `<data_dir>/exports`. Replicas that share a store share its jobs: give them one shared
    /// directory too, or use `blob_container`.
    pub dir: Option<PathBuf>,
    /// A container of the `[blob]` account to write the files to instead of `dir`; the manifest
    /// then names the blobs' URLs (`requiresAccessToken: false`: clients read them with their
    /// own Azure credential and a data-reader role on the container, as with Microsoft's FHIR
    /// service).
    pub blob_container: Option<String>,
    /// How long a finished job's manifest and files stay before they are removed, in seconds.
    pub retention_seconds: u64,
    /// A type's file is closed at this size and the next one started, in bytes (a download is
    /// read into memory: this bounds it).
    pub file_max_bytes: u64,
    /// A job (export or import) whose worker has not checkpointed for this long is taken over
    /// by another worker (a restart, another replica), in seconds.
    pub lease_seconds: u64,
    /// Bulk jobs (exports and imports) one process runs at a time; more wait.
    pub max_running: usize,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            blob_container: None,
            retention_seconds: 3600,
            file_max_bytes: 64 * 1024 * 1024,
            lease_seconds: 30,
            max_running: 2,
        }
    }
}

impl Config {
    /// The engine's export settings (`blob`: the `[blob]` account); `None` when export is off.
    pub fn export_settings(&self, blob: Option<&Arc<Account>>) -> Result<Option<ExportSettings>, String> {
        let export = &self.export;
        if !export.enabled {
            return Ok(None);
        }
        let output = match (&export.blob_container, blob) {
            (Some(container), Some(account)) => Location::Blob(account.container(container)),
            (Some(_), None) => return Err("`export.blob_container` needs `blob.endpoint`".into()),
            (None, _) => Location::Dir(export.dir.clone().unwrap_or_else(|| self.store.data_dir.join("exports"))),
        };
        Ok(Some(ExportSettings {
            output,
            retention: Duration::from_secs(export.retention_seconds),
            file_max_bytes: export.file_max_bytes.max(1),
            lease: Duration::from_secs(export.lease_seconds.max(1)),
        }))
    }
}
