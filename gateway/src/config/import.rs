//! `[import]`: where `$import` may read NDJSON from, and where it keeps its jobs.

use std::path::{Path, PathBuf};

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
    /// Where import jobs keep their state and error files; default `<data_dir>/import`.
    pub jobs_dir: Option<PathBuf>,
}

impl ImportConfig {
    /// The engine's settings, jobs under `data_dir` unless placed elsewhere.
    pub fn settings(&self, data_dir: &Path) -> ImportSettings {
        ImportSettings {
            input_dirs: self.input_dirs.clone(),
            input_urls: self.input_urls.clone(),
            jobs_dir: Some(self.jobs_dir.clone().unwrap_or_else(|| data_dir.join("import"))),
        }
    }
}
