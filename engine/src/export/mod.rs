//! Bulk export (FHIR Bulk Data Access IG 2.0, <https://hl7.org/fhir/uv/bulkdata/export.html>):
//! `$export` at system, `Patient` and `Group/[id]` level, as an asynchronous job.
//!
//! - The kick-off ([`kickoff`]) checks the parameters ([`params`]), records the job in the
//!   store ([`job`], a [`crate::storage::JobRecord`] of kind `export`) with its client's owner
//!   digest and persona ([`crate::access::Access::persona`]), and answers 202 with the status
//!   URL `[base]/$export-status?_job=<id>`.
//! - A worker of the front end ([`claim`], [`run`]) takes a running job whose lease expired,
//!   rebuilds the client's decisions from the persona, and exports each part (a type, or a type
//!   for one patient) a chunk of matches at a time: a search of the type, decided exactly as
//!   the same client's search (`search-type` on the type, then every match on its data) and as
//!   an export (`export` on the type and on every match), written as NDJSON to the job's
//!   output location ([`files`]: a directory, or an Azure Blob Storage container). After each chunk the job's record is checkpointed (cursor, bytes
//!   written, lease), so a job resumes after a crash or on another replica where it stopped,
//!   the uncommitted tail of a file cut off: no duplicate, no gap. Memory holds one chunk.
//! - Polling the status URL answers 202 (`X-Progress`, `Retry-After`) while the job runs, then
//!   200 with the manifest; its files are downloaded from `[base]/$export-file?_job=&_file=`
//!   (`requiresAccessToken: true`) or, when they are in Blob Storage, straight from their blob
//!   URLs, as Microsoft's FHIR service does (`requiresAccessToken: false`: not the server's
//!   token but the client's own Azure credential opens them, with a data-reader role on the
//!   container); `DELETE` on the status URL cancels and removes the files. All three serve only
//!   the client that asked (the same owner digest as search pages); any other gets a 404, as for
//!   an unknown job. Jobs and files are removed [`ExportSettings::retention`] after they end
//!   ([`sweep`]). The job mechanism is shared with `$import` ([`crate::bulk::worker`]).

pub(crate) mod files;
mod job;
mod kickoff;
mod params;
mod run;

use std::path::PathBuf;
use std::time::Duration;

pub use files::Location;
pub(crate) use job::Job;
pub(crate) use kickoff::{file, kickoff, status};
pub(crate) use run::{gone, run};

/// Where and how bulk jobs keep their files (export output, import error reports).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where the jobs' files go (replicas sharing jobs share it).
    pub output: Location,
    /// How long a finished job's manifest and files stay.
    pub retention: Duration,
    /// A type's output file is closed once it holds this many bytes; the next chunk starts
    /// another file (what one download holds in memory is bounded by it and a chunk).
    pub file_max_bytes: u64,
    /// How long a worker's claim on a job lasts without a checkpoint; after it another worker
    /// (another replica, or this one after a restart) takes the job over.
    pub lease: Duration,
}

impl ExportSettings {
    /// The defaults, files under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            output: Location::Dir(dir),
            retention: Duration::from_secs(3600),
            file_max_bytes: 64 * 1024 * 1024,
            lease: Duration::from_secs(30),
        }
    }
}

/// Wakes the front end's worker when a job is kicked off.
#[derive(Debug, Default)]
pub(crate) struct Signal(tokio::sync::Notify);

impl crate::Engine {
    /// Waits until a job is kicked off on this engine, or `at_most`.
    pub async fn export_wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.exports.0.notified()).await;
    }

    pub(crate) fn export_signal(&self) {
        self.exports.0.notify_one();
    }
}

/// Declares `$export` in the CapabilityStatement's `rest` when this engine runs it: the
/// system-level operation, and the Patient and Group ones on their resources.
pub(crate) fn declare(engine: &crate::Engine, rest: &mut serde_json::Value) {
    use serde_json::json;
    if engine.config.export.is_none() {
        return;
    }
    let definition = |name: &str| json!({"name": "export", "definition": format!("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{name}")});
    crate::interaction::capabilities::declare_operation(rest, definition("export"));
    for resource in rest["resource"].as_array_mut().into_iter().flatten() {
        let name = match resource["type"].as_str() {
            Some("Patient") => "patient-export",
            Some("Group") => "group-export",
            _ => continue,
        };
        crate::interaction::capabilities::declare_operation(resource, definition(name));
    }
}
