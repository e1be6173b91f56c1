//! The state of an import job, kept as its store record ([`crate::storage::JobRecord`], kind
//! `import`, through the job mechanism it shares with `$export`: [`crate::bulk::worker`]), so
//! that a job survives the process that ran it and any replica on the same store serves and
//! resumes it. Its per-input error reports (OperationOutcome NDJSON) are files in the bulk
//! output location ([`crate::export::Location`], `<job>/errors-<input>.ndjson`): a report may
//! hold a line per input line, too much for a record that is rewritten at every checkpoint.
//!
//! Progress is recorded per input as the byte offset after the last line whose write committed
//! (and the length the error file had then), so a job resumed after a crash starts again there:
//! lines after it may have been written already, and importing them again changes nothing
//! (upserts by id; a line without id gets the same id every time, see [`line_id`]).

use serde::{Deserialize, Serialize};

use crate::bulk::worker::{JobBody, Kind, Lease};

/// How resources are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    /// Into types that hold no resource yet: each line is version 1, written in batches without
    /// reading first; a line whose resource exists is an error (unless it is the same content,
    /// written by an earlier run of the same job).
    InitialLoad,
    /// Each line an upsert: a new version when the content changed (none when it did not), a
    /// create when the resource does not exist.
    IncrementalLoad,
}

impl Mode {
    /// The mode a kick-off names (`InitialLoad`, `IncrementalLoad`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "InitialLoad" => Some(Self::InitialLoad),
            "IncrementalLoad" => Some(Self::IncrementalLoad),
            _ => None,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    Running,
    Completed,
    /// Given up (its store kept failing, or its client could not be restored).
    Failed(String),
}

/// One input file and how far the job got in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Input {
    /// The resource type its lines hold, when the kick-off named one.
    pub(crate) resource_type: Option<String>,
    /// `file:` URL or absolute path, or an `http(s)` or Blob Storage URL the operator allowed.
    pub(crate) url: String,
    /// Bytes read up to the end of the last line whose outcome is recorded.
    pub(crate) offset: u64,
    /// Lines read so far.
    pub(crate) lines: u64,
    /// Resources written (or found already written) so far.
    pub(crate) imported: u64,
    /// Lines that failed so far (one OperationOutcome each in the error file).
    pub(crate) failed: u64,
    /// The length of the error file when the progress was recorded.
    pub(crate) error_bytes: u64,
    /// The chunks of the error file then (the blocks of a blob).
    #[serde(default)]
    pub(crate) error_chunks: u32,
    pub(crate) done: bool,
}

impl Input {
    /// The name of its error file.
    pub(crate) fn error_file(n: usize) -> String {
        format!("errors-{n}.ndjson")
    }
}

/// An import job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The client that started it ([`crate::access::Access::owner`]): the only one that may
    /// poll, download its errors or cancel it.
    pub(crate) owner: String,
    /// What rebuilds the client's decisions for the worker ([`crate::access::Access::persona`]).
    pub(crate) persona: String,
    pub(crate) mode: Mode,
    /// The kick-off URL, for the manifest.
    pub(crate) request: String,
    /// When the job started (FHIR instant), for the manifest.
    pub(crate) transaction_time: String,
    pub(crate) status: Status,
    pub(crate) inputs: Vec<Input>,
    /// The worker running it, until when.
    pub(crate) lease: Option<Lease>,
    /// Failed runs in a row (a store down); the job fails after a few.
    #[serde(default)]
    pub(crate) attempts: u32,
    /// Unix seconds after which the job and its error files are removed (set when it ends).
    pub(crate) expires: Option<i64>,
}

impl JobBody for Job {
    const KIND: &'static str = "import";
    const WORKER: Kind = Kind::Import;

    fn running(&self) -> bool {
        self.status == Status::Running
    }

    fn failed(&mut self, message: String) {
        self.status = Status::Failed(message);
    }

    fn lease(&mut self) -> &mut Option<Lease> {
        &mut self.lease
    }

    fn expires(&mut self) -> &mut Option<i64> {
        &mut self.expires
    }

    fn persona(&self) -> &str {
        &self.persona
    }
}

/// An import job with the version of its record.
pub(crate) type Stored = crate::bulk::worker::Stored<Job>;

/// The id a line without one is imported under: the same for the same line of the same job,
/// so importing the line again (a resumed job) updates instead of creating a duplicate.
pub(super) fn line_id(job: &str, input: usize, line: u64) -> String {
    let short: String = job.chars().filter(char::is_ascii_alphanumeric).take(24).collect();
    format!("imp-{short}-{input}-{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ids_are_valid_ids() {
        assert!(crate::resource::is_valid_id(&line_id("0f8fad5bd9cba165708677289503e", 12, 123_456_789)));
        assert_eq!(line_id("abc", 1, 2), line_id("abc", 1, 2));
    }
}
