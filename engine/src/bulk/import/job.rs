//! The state of an import job, kept so that a job survives the process that ran it, and the
//! small interface a job store offers ([`JobStore`]): save and load a job's state, and keep its
//! per-input error files (OperationOutcome NDJSON). [`DirJobs`] keeps them as files in a
//! directory.
//!
//! Progress is recorded per input as the byte offset after the last line whose write committed
//! (and the length the error file had then), so a job resumed after a crash starts again there:
//! lines after it may have been written already, and importing them again changes nothing
//! (upserts by id; a line without id gets the same id every time, see [`line_id`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How resources are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
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
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "InitialLoad" => Some(Self::InitialLoad),
            "IncrementalLoad" => Some(Self::IncrementalLoad),
            _ => None,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Running,
    Completed,
    Cancelled,
}

/// One input file and how far the job got in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The resource type its lines hold, when the kick-off named one.
    pub resource_type: Option<String>,
    /// `file:` URL or absolute path, or an `http(s)` URL the operator allowed.
    pub url: String,
    /// Bytes read up to the end of the last line whose outcome is recorded.
    pub offset: u64,
    /// Lines read so far.
    pub lines: u64,
    /// Resources written (or found already written) so far.
    pub imported: u64,
    /// Lines that failed so far (one OperationOutcome each in the error file).
    pub failed: u64,
    /// The length of the error file when the progress was recorded.
    pub error_bytes: u64,
    pub done: bool,
}

/// An import job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// The client that started it ([`crate::access::Access::owner`]): the only one that may
    /// poll, download its errors or cancel it.
    pub owner: String,
    pub mode: Mode,
    /// The kick-off URL, for the manifest.
    pub request: String,
    /// When the job started (FHIR instant), for the manifest.
    pub transaction_time: String,
    pub status: Status,
    pub inputs: Vec<Input>,
}

/// What an import job needs kept (the lead may back it by the store, as the export jobs are).
pub trait JobStore: Send + Sync {
    /// Saves the job's state (atomically: a crash leaves the old or the new state).
    fn save(&self, job: &Job) -> Result<()>;
    /// The job with this id, if there is one.
    fn load(&self, id: &str) -> Result<Option<Job>>;
    /// Cuts input `input`'s error file back to `at` bytes (what a resumed job had recorded) and
    /// appends `lines` (one NDJSON line each); the file's new length.
    fn append_errors(&self, id: &str, input: usize, at: u64, lines: &[String]) -> Result<u64>;
    /// Input `input`'s error file, when it has one.
    fn errors(&self, id: &str, input: usize) -> Result<Option<Vec<u8>>>;
}

/// Jobs as files in a directory: `<id>.json` and `<id>-<input>.errors.ndjson`.
#[derive(Debug, Clone)]
pub struct DirJobs {
    dir: PathBuf,
}

impl DirJobs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, id: &str, suffix: &str) -> Result<PathBuf> {
        // Ids are made by the server (uuids), but a polled id comes from a client.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::NotFound(format!("no import job `{id}`")));
        }
        Ok(self.dir.join(format!("{id}{suffix}")))
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Internal(format!("{what} `{}`: {e}", path.display()))
}

impl JobStore for DirJobs {
    fn save(&self, job: &Job) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error("creating the import job directory", &self.dir, &e))?;
        let path = self.path(&job.id, ".json")?;
        let temporary = self.path(&job.id, ".json.tmp")?;
        let text = serde_json::to_vec(job).map_err(|e| Error::Internal(format!("serialising an import job: {e}")))?;
        std::fs::write(&temporary, text).map_err(|e| io_error("writing", &temporary, &e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io_error("renaming", &temporary, &e))
    }

    fn load(&self, id: &str) -> Result<Option<Job>> {
        let path = self.path(id, ".json")?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Internal(format!("import job `{id}` cannot be read: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path, &e)),
        }
    }

    fn append_errors(&self, id: &str, input: usize, at: u64, lines: &[String]) -> Result<u64> {
        let path = self.path(id, &format!("-{input}.errors.ndjson"))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("opening", &path, &e))?;
        file.set_len(at).map_err(|e| io_error("truncating", &path, &e))?;
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(at)).map_err(|e| io_error("seeking", &path, &e))?;
        file.write_all(text.as_bytes()).map_err(|e| io_error("writing", &path, &e))?;
        file.sync_data().map_err(|e| io_error("syncing", &path, &e))?;
        Ok(at + text.len() as u64)
    }

    fn errors(&self, id: &str, input: usize) -> Result<Option<Vec<u8>>> {
        let path = self.path(id, &format!("-{input}.errors.ndjson"))?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path, &e)),
        }
    }
}

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
    fn jobs_and_error_files_survive_and_resume_cuts_errors_back() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("fhirgate-import-jobs-{}", std::process::id()));
        let jobs = DirJobs::new(&dir);
        let job = Job {
            id: "abc-1".into(),
            owner: "o".into(),
            mode: Mode::InitialLoad,
            request: "http://x/$import".into(),
            transaction_time: "2026-01-01T00:00:00.000Z".into(),
            status: Status::Running,
            inputs: vec![],
        };
        jobs.save(&job)?;
        assert_eq!(jobs.load("abc-1")?, Some(job));
        assert_eq!(jobs.load("missing")?, None);
        assert!(jobs.load("../etc/passwd").is_err());
        let end = jobs.append_errors("abc-1", 0, 0, &["{\"a\":1}".into(), "{\"b\":2}".into()])?;
        assert_eq!(end, 16);
        // A resumed job recorded only the first line: the second is cut and written again.
        let end = jobs.append_errors("abc-1", 0, 8, &["{\"c\":3}".into()])?;
        assert_eq!(jobs.errors("abc-1", 0)?, Some(b"{\"a\":1}\n{\"c\":3}\n".to_vec()));
        assert_eq!(end, 16);
        assert!(crate::resource::is_valid_id(&line_id("0f8fad5b-d9cb-469f-a165-70867728950e", 12, 123_456_789)));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
