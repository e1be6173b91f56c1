//! `[import]`: where `$import` may read NDJSON from. (Its jobs are store records like export
//! jobs, its error reports files in the export output location.)

use std::path::PathBuf;
use std::sync::Arc;

use fhirgate_engine::bulk::blob::Account;
use fhirgate_engine::bulk::import::ImportSettings;
use serde::{Deserialize, Serialize};

/// `[import]`. With no directory and no URL prefix every `$import` input is refused (400).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Directories whose files (subdirectories included) `$import` may read.
    pub input_dirs: Vec<PathBuf>,
    /// URL prefixes (`https://data.example/exports/`) under which `$import` may fetch inputs.
    pub input_urls: Vec<String>,
    /// Containers of the `[blob]` account whose blobs `$import` may read (with the gateway's
    /// credentials), given as blob URLs (`https://ACCOUNT.blob.core.windows.net/CONTAINER/f.ndjson`).
    pub input_containers: Vec<String>,
}

impl ImportConfig {
    /// The engine's settings (`blob`: the `[blob]` account).
    pub fn settings(&self, blob: Option<&Arc<Account>>) -> Result<ImportSettings, String> {
        if !self.input_containers.is_empty() && blob.is_none() {
            return Err("`import.input_containers` needs `blob.endpoint`".into());
        }
        Ok(ImportSettings {
            input_dirs: self.input_dirs.clone(),
            input_urls: self.input_urls.clone(),
            blob: blob.cloned(),
            input_containers: self.input_containers.clone(),
        })
    }
}
