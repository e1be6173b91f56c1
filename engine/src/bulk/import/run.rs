//! Running an import job: each input read from its recorded offset, a batch of lines at a time;
//! each line parsed and validated ([`super::line`]), decided by the client's access as a
//! resource it sends (`incoming`; in incremental mode the version it replaces as `stored` too),
//! and written like any write (index entries extracted the same way). A failed line is reported
//! in the input's error file and never stops the others. After each batch commits, the progress
//! (offset, counts, error file length) is saved: a job that stops (crash, restart) resumes there.
//! Every write is told to the access (`written`), which audits it as the kick-off's request.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use super::job::{Input, Job, JobStore, Mode, Status, line_id};
use super::line::{self, Parsed};
use super::source::{self, Location};
use crate::access::{Access, Phase};
use crate::error::Result;
use crate::interaction::{Engine, Gate, prepare_write};
use crate::outcome::{Issue, IssueType};
use crate::resource::without_server_meta;
use crate::storage::{StoreError, Write, WriteKind};

/// Lines per batch: one store transaction in initial-load mode, one saved progress.
const BATCH: usize = 500;

/// What a run needs: the engine it writes through, where its state is kept, the client's
/// decisions, and the flag a cancellation sets.
pub(super) struct Run {
    pub(super) engine: Arc<Engine>,
    pub(super) jobs: Arc<dyn JobStore>,
    pub(super) access: Arc<dyn Access>,
    pub(super) cancelled: Arc<AtomicBool>,
}

/// What became of one line.
enum Outcome {
    Written,
    Failed(Vec<Issue>),
}

impl Run {
    /// Runs `job` to its end (or its cancellation); a store failure ends the run with the
    /// progress saved so far, and a later poll resumes it.
    pub(super) async fn run(self, mut job: Job) {
        let ran = self.inputs(&mut job).await;
        // Ending the job and leaving the running set are one step under the set's lock, so that
        // a cancellation or a poll sees either a running job or its final state.
        let mut running = self.engine.imports.lock();
        match ran {
            Err(e) => tracing::warn!(job = %job.id, error = %e, "import job stopped; it resumes when polled"),
            Ok(()) => {
                job.status = if self.cancelled.load(Ordering::Relaxed) { Status::Cancelled } else { Status::Completed };
                if let Err(e) = self.jobs.save(&job) {
                    tracing::error!(job = %job.id, error = %e, "import job state could not be saved");
                }
            }
        }
        running.remove(&job.id);
    }

    /// Saves the job's progress; once cancelled (the flag is set under the same lock that the
    /// cancellation saves under), as cancelled, so a late progress never revives it.
    fn save(&self, job: &mut Job) -> Result<()> {
        let _running = self.engine.imports.lock();
        if self.cancelled.load(Ordering::Relaxed) {
            job.status = Status::Cancelled;
        }
        self.jobs.save(job)
    }

    async fn inputs(&self, job: &mut Job) -> Result<()> {
        let gate = Gate::open(self.access.as_ref(), super::target())?;
        let settings = &self.engine.config().import;
        for n in 0..job.inputs.len() {
            if job.inputs[n].done {
                continue;
            }
            let input = job.inputs[n].clone();
            let location = match source::check(settings, &input.url) {
                Ok(location) => location,
                Err(e) => {
                    self.fail_input(job, n, vec![Issue::error(IssueType::Forbidden, e.to_string())])?;
                    continue;
                }
            };
            self.input(job, n, &gate, location).await?;
            if self.cancelled.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Records a whole input as failed (it cannot be read at all).
    fn fail_input(&self, job: &mut Job, n: usize, issues: Vec<Issue>) -> Result<()> {
        let input = &mut job.inputs[n];
        let report = line::failure(&input.url, input.lines, issues);
        input.error_bytes = self.jobs.append_errors(&job.id, n, input.error_bytes, &[report])?;
        input.failed += 1;
        input.done = true;
        self.save(job)
    }

    async fn input(&self, job: &mut Job, n: usize, gate: &Gate<'_>, location: Location) -> Result<()> {
        let mut lines = source::read(location, job.inputs[n].offset);
        let mut batch: Vec<(u64, std::result::Result<Vec<u8>, String>)> = Vec::with_capacity(BATCH);
        let mut end = job.inputs[n].offset;
        loop {
            let next = lines.recv().await;
            let finished = next.is_none();
            if let Some(line) = next {
                end = line.end;
                batch.push((job.inputs[n].lines + batch.len() as u64 + 1, line.text));
            }
            if batch.len() >= BATCH || (finished && !batch.is_empty()) {
                self.batch(job, n, gate, std::mem::take(&mut batch), end).await?;
                if self.cancelled.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            if finished {
                job.inputs[n].done = true;
                return self.save(job);
            }
        }
    }

    /// Imports one batch of numbered lines and saves the progress up to `end`.
    async fn batch(
        &self,
        job: &mut Job,
        n: usize,
        gate: &Gate<'_>,
        batch: Vec<(u64, std::result::Result<Vec<u8>, String>)>,
        end: u64,
    ) -> Result<()> {
        let input: Input = job.inputs[n].clone();
        let mut outcomes: Vec<(u64, Outcome)> = Vec::with_capacity(batch.len());
        let mut parsed: Vec<(u64, Parsed)> = Vec::with_capacity(batch.len());
        for (number, text) in batch {
            let result = match text {
                Ok(text) => line::parse(&text, input.resource_type.as_deref(), || line_id(&job.id, n, number)),
                Err(reason) => Err(vec![Issue::error(IssueType::Structure, reason)]),
            };
            match result {
                Ok(p) => parsed.push((number, p)),
                Err(issues) => outcomes.push((number, Outcome::Failed(issues))),
            }
        }
        // Decided as resources the client sends, after loading what the decisions read.
        let values: Vec<Value> = parsed.iter().map(|(_, p)| Value::Object(p.resource.clone())).collect();
        gate.load_consents(&self.engine, &values.iter().collect::<Vec<_>>()).await?;
        let mut allowed = Vec::with_capacity(parsed.len());
        for ((number, p), value) in parsed.into_iter().zip(&values) {
            if gate.allows(value, Phase::Incoming) {
                allowed.push((number, p));
            } else {
                let why = format!("importing `{}/{}` is not allowed for this client", p.resource_type, p.id);
                outcomes.push((number, Outcome::Failed(vec![Issue::error(IssueType::Forbidden, why)])));
            }
        }
        match job.mode {
            Mode::InitialLoad => outcomes.extend(self.initial(gate, allowed).await?),
            Mode::IncrementalLoad => {
                for (number, p) in allowed {
                    outcomes.push((number, self.upsert(gate, p).await?));
                }
            }
        }
        outcomes.sort_by_key(|(number, _)| *number);
        let mut reports = Vec::new();
        let progress = &mut job.inputs[n];
        for (number, outcome) in outcomes {
            match outcome {
                Outcome::Written => progress.imported += 1,
                Outcome::Failed(issues) => {
                    progress.failed += 1;
                    reports.push(line::failure(&input.url, number, issues));
                }
            }
            progress.lines = progress.lines.max(number);
        }
        progress.error_bytes = self.jobs.append_errors(&job.id, n, progress.error_bytes, &reports)?;
        progress.offset = end;
        self.save(job)
    }

    /// Initial load: version 1 of every line, in as few transactions as the store allows; when
    /// one fails on a resource that exists, line by line (a line a previous run of this job wrote, same
    /// content, counts as written; any other existing resource is an error).
    async fn initial(&self, gate: &Gate<'_>, lines: Vec<(u64, Parsed)>) -> Result<Vec<(u64, Outcome)>> {
        let mut outcomes = Vec::with_capacity(lines.len());
        let mut seen = HashSet::new();
        let mut writes: Vec<(u64, Map<String, Value>, Write)> = Vec::with_capacity(lines.len());
        for (number, mut p) in lines {
            if !seen.insert((p.resource_type.clone(), p.id.clone())) {
                let why = format!("`{}/{}` appears twice in the same batch of an initial load", p.resource_type, p.id);
                outcomes.push((number, Outcome::Failed(vec![Issue::error(IssueType::Conflict, why)])));
                continue;
            }
            let content = p.resource.clone();
            let write =
                prepare_write(&self.engine, &p.resource_type, &p.id, 1, WriteKind::Create, Some(&mut p.resource))?;
            writes.push((number, content, write));
        }
        // As many per transaction as the store takes at once (Cosmos DB: 49).
        let most = self.engine.store().capabilities().max_batch_writes.unwrap_or(BATCH).max(1);
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let group: Vec<(u64, Map<String, Value>, Write)> = writes.by_ref().take(most).collect();
            outcomes.extend(self.initial_group(gate, group).await?);
        }
        Ok(outcomes)
    }

    /// One transaction of version-1 writes; on a conflict, each write alone.
    async fn initial_group(
        &self,
        gate: &Gate<'_>,
        writes: Vec<(u64, Map<String, Value>, Write)>,
    ) -> Result<Vec<(u64, Outcome)>> {
        let mut outcomes = Vec::with_capacity(writes.len());
        let all: Vec<Write> = writes.iter().map(|(_, _, w)| w.clone()).collect();
        match self.engine.store().transact(all).await {
            Ok(()) => {
                for (number, _, write) in writes {
                    gate.written(&write.version);
                    outcomes.push((number, Outcome::Written));
                }
                return Ok(outcomes);
            }
            Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        for (number, content, write) in writes {
            let version = write.version.clone();
            let (resource_type, id) = (version.resource_type.clone(), version.id.clone());
            let outcome = match self.engine.store().transact(vec![write]).await {
                Ok(()) => {
                    gate.written(&version);
                    Outcome::Written
                }
                Err(StoreError::VersionConflict { .. }) => {
                    let current = self.engine.store().read(&resource_type, &id).await?;
                    if current.as_ref().is_some_and(|c| !c.is_deleted() && same(c.json.as_deref(), &content)) {
                        Outcome::Written
                    } else {
                        Outcome::Failed(vec![Issue::error(
                            IssueType::Conflict,
                            format!(
                                "`{resource_type}/{id}` exists already: an initial load writes only new resources \
                                 (use `IncrementalLoad` to update)"
                            ),
                        )])
                    }
                }
                Err(e) => return Err(e.into()),
            };
            outcomes.push((number, outcome));
        }
        Ok(outcomes)
    }

    /// Incremental load: one line as an upsert, decided on the version it replaces too.
    async fn upsert(&self, gate: &Gate<'_>, p: Parsed) -> Result<Outcome> {
        for _ in 0..12 {
            let current = self.engine.store().read(&p.resource_type, &p.id).await?;
            let live = current.as_ref().filter(|c| !c.is_deleted());
            if let Some(live) = live {
                if !gate.allows_version(&self.engine, live, Phase::Stored).await? {
                    let why = format!("replacing `{}/{}` is not allowed for this client", p.resource_type, p.id);
                    return Ok(Outcome::Failed(vec![Issue::error(IssueType::Forbidden, why)]));
                }
                if !self.engine.config().version_unchanged_updates && same(live.json.as_deref(), &p.resource) {
                    return Ok(Outcome::Written);
                }
            }
            let next = current.as_ref().map_or(1, |c| c.version + 1);
            let kind = if current.is_some() { WriteKind::Update } else { WriteKind::Create };
            let mut resource = p.resource.clone();
            let write = prepare_write(&self.engine, &p.resource_type, &p.id, next, kind, Some(&mut resource))?;
            let version = write.version.clone();
            match self.engine.store().transact(vec![write]).await {
                Ok(()) => {
                    gate.written(&version);
                    return Ok(Outcome::Written);
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let why = format!("`{}/{}` kept being written concurrently; it was not imported", p.resource_type, p.id);
        Ok(Outcome::Failed(vec![Issue::error(IssueType::Conflict, why)]))
    }
}

/// Whether a stored version has `content`, server-managed meta aside.
fn same(stored: Option<&str>, content: &Map<String, Value>) -> bool {
    let Some(Ok(Value::Object(stored))) = stored.map(serde_json::from_str::<Value>) else { return false };
    without_server_meta(&stored) == without_server_meta(content)
}
