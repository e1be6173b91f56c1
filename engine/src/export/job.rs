//! One export job's state as its store record holds it ([`crate::storage::JobRecord`], kind
//! `export`): what was asked, who asked, how far it got, which files it wrote.

use serde::{Deserialize, Serialize};

use crate::bulk::worker::{JobBody, Kind, Lease};

/// The level an export was asked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Level {
    System,
    Patient,
    Group(String),
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum State {
    /// Waiting for a worker, or being worked on (see [`Job::lease`]).
    Running,
    /// Every file is written; the manifest is served until [`Job::expires`].
    Done,
    /// Given up; the message is the client's.
    Failed(String),
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Output {
    /// The resource type of its lines (`OperationOutcome` for error files).
    pub(crate) resource_type: String,
    /// The file name in the job's directory.
    pub(crate) file: String,
    pub(crate) count: u64,
    /// Bytes written and committed: anything past it is a chunk whose checkpoint failed.
    pub(crate) bytes: u64,
    /// Chunks written and committed (the blocks of a blob).
    #[serde(default)]
    pub(crate) chunks: u32,
}

/// How far a job got: the part (a type, or a type for one patient) and the last key read in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub(crate) part: usize,
    pub(crate) after: Option<(String, String)>,
}

/// An export job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The client that asked ([`crate::access::Access::owner`]): the only one served its status,
    /// files and cancellation.
    pub(crate) owner: String,
    /// What rebuilds the client's decisions for the worker ([`crate::access::Access::persona`]).
    pub(crate) persona: String,
    /// The kick-off URL, for the manifest's `request`.
    pub(crate) request: String,
    pub(crate) level: Level,
    /// The types exported, in order.
    pub(crate) types: Vec<String>,
    /// Whether the client named them (`_type`): a type it may not export is then an error
    /// entry, not a silent omission.
    pub(crate) named_types: bool,
    /// Search parameters every part applies (`_lastUpdated` for `_since`).
    pub(crate) common: Vec<(String, String)>,
    /// `_typeFilter`: the search parameters of one type's query.
    pub(crate) filters: Vec<(String, Vec<(String, String)>)>,
    /// The patients whose compartments are exported (`patient`, a Group's members); empty: every
    /// resource of the types.
    pub(crate) patients: Vec<String>,
    /// When the export was asked (the manifest's `transactionTime`).
    pub(crate) transaction_time: String,
    /// Unix seconds of the kick-off.
    pub(crate) created: i64,
    pub(crate) state: State,
    pub(crate) lease: Option<Lease>,
    pub(crate) cursor: Cursor,
    pub(crate) outputs: Vec<Output>,
    pub(crate) errors: Vec<Output>,
    /// Failed attempts in a row (a store down); the job fails after a few.
    pub(crate) attempts: u32,
    /// Unix seconds after which the job and its files are removed (set when it ends).
    pub(crate) expires: Option<i64>,
}

impl Job {
    /// The parts of the job, in order: each type, or each type for each patient.
    pub(crate) fn parts(&self) -> usize {
        self.types.len() * self.patients.len().max(1)
    }

    /// The type and the patient (if any) of part `n`.
    pub(crate) fn part(&self, n: usize) -> Option<(&str, Option<&str>)> {
        let per_type = self.patients.len().max(1);
        let resource_type = self.types.get(n / per_type)?;
        Some((resource_type, self.patients.get(n % per_type).map(String::as_str)))
    }

    /// Resources written so far.
    pub(crate) fn exported(&self) -> u64 {
        self.outputs.iter().map(|o| o.count).sum()
    }
}

impl JobBody for Job {
    const KIND: &'static str = "export";
    const WORKER: Kind = Kind::Export;

    fn running(&self) -> bool {
        self.state == State::Running
    }

    fn failed(&mut self, message: String) {
        self.state = State::Failed(message);
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

/// An export job with the version of its record.
pub(crate) type Stored = crate::bulk::worker::Stored<Job>;
