//! Running an import job: each input read from its recorded offset, a batch of lines at a time;
//! each line parsed and validated ([`super::line`]), checked against the profiles it declares or
//! its type requires (and a SearchParameter's own checks) as any write is, decided by the client's access as a
//! resource it sends (`incoming`; in incremental mode the version it replaces as `stored` too),
//! and written like any write (index entries extracted the same way). A failed line is reported
//! in the input's error file and never stops the others. After each batch commits, the progress
//! (offset, counts, error file length) is saved: a job that stops (crash, restart) resumes there.
//! Every write is told to the access (`written`), which audits it as the kick-off's request, and
//! has the effects of any write (an imported SearchParameter is put in force at once). An
//! initial load tells the store when it begins and ends (`Store::load_begins`/`load_ends`), so a
//! store may build its search indexes once at the end; the job completes once they are built.

use std::collections::HashSet;

use rayon::iter::{IntoParallelIterator, ParallelIterator};
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use super::job::{Input, Mode, Status, Stored, line_id};
use super::line::{self, Parsed};
use super::source::{self, Location};
use crate::access::{Access, Phase};
use crate::bulk::worker::{Claimed, Lease};
use crate::error::{Error, Result};
use crate::export::files::Committed;
use crate::interaction::{Engine, Gate, after_write, enforce_profiles, prepare_write};
use crate::outcome::{Issue, IssueType};
use crate::resource::without_server_meta;
use crate::storage::{ResourceVersion, StoreError, Write, WriteKind};

/// Lines per batch at most: one saved progress; in initial-load mode, as few store loads as
/// the store allows. A batch must end well within the job's lease (the lease is renewed at each
/// checkpoint; tests run with 1 s): 2,000 lines of a debug build on a loaded machine did not,
/// and replicas took the job from each other forever.
const BATCH_LINES: usize = 500;
/// Line bytes per batch at most (a batch ends with the line that reaches it): what a batch holds
/// (parsed resources, then their JSON text and index entries) is a few times this, whatever the
/// lines' size (Synthea's Provenance lines are ~140 KB each); two batches are held at once
/// while one loads and the next is prepared. With 1 MB, the 1,000-patient load's Provenance
/// lines took the process from ~165 to ~275 MB (the allocators keep what several threads
/// needed at once); with 256 KB, ~230 MB, at the same speed.
const BATCH_BYTES: usize = 256 * 1024;
/// Lines below which a batch is parsed on the calling thread.
const PARALLEL_FROM: usize = 64;
/// Failed runs in a row after which a job fails.
const MAX_ATTEMPTS: u32 = 3;

async fn end(engine: &Engine, stored: &mut Stored, status: Status) -> Result<bool> {
    stored.job.status = status;
    stored.finish(engine).await
}

/// Runs a claimed job to its end with `access`, the decisions of the client that asked,
/// checkpointing after every batch. Stops early, without error, when the job is cancelled or
/// taken over by another worker (its record changed under it); a store failure ends the run
/// with the progress saved so far, and the job is taken again (a few times, then it fails).
pub(crate) async fn run(engine: &Engine, claimed: &Claimed, holder: &str, access: &dyn Access) -> Result<()> {
    let Some(stored) = Stored::load(engine.store.as_ref(), &claimed.job).await? else { return Ok(()) };
    if stored.job.status != Status::Running || stored.job.lease.as_ref().is_none_or(|l| l.holder != holder) {
        return Ok(());
    }
    let output = engine.config.export.as_ref().map(|s| s.output.clone());
    let output = output.ok_or_else(|| Error::Internal("bulk output settings gone".into()))?;
    let initial = stored.job.mode == Mode::InitialLoad;
    let mut run = Run { engine, access, holder, output, stored };
    let begun = if initial { engine.store.load_begins().await.map_err(Error::from) } else { Ok(()) };
    let result = match begun {
        Ok(()) => run.inputs().await,
        Err(e) => Err(e),
    };
    let result = if initial { run.built(result).await } else { result };
    match result {
        Ok(true) => {
            if end(engine, &mut run.stored, Status::Completed).await? {
                let imported: u64 = run.stored.job.inputs.iter().map(|i| i.imported).sum();
                tracing::info!(job = %run.stored.id, imported, "import done");
                return Ok(());
            }
            crate::export::gone(engine, &run.stored.id).await
        }
        Ok(false) => {
            tracing::info!(job = %run.stored.id, "import job cancelled or taken over; stopping");
            crate::export::gone(engine, &run.stored.id).await
        }
        Err(e) => {
            let Some(mut stored) = Stored::load(engine.store.as_ref(), &claimed.job).await? else {
                // Cancelled under it: what failed was writing into its removed files.
                return crate::export::gone(engine, &claimed.job).await;
            };
            if stored.version != run.stored.version {
                return Ok(());
            }
            stored.job.attempts += 1;
            let saved = if stored.job.attempts >= MAX_ATTEMPTS {
                end(engine, &mut stored, Status::Failed(e.to_string())).await?
            } else {
                // Released: a worker takes it again (this one, on its next look).
                stored.job.lease = None;
                stored.save(engine.store.as_ref()).await?
            };
            if !saved {
                return Ok(());
            }
            Err(e)
        }
    }
}

/// Has the store build what an initial load set aside and no run will build (a load a crash
/// ended, whose job was then cancelled; [`crate::storage::Store::load_ends`]), unless an initial
/// load is running, which builds them at its end.
pub(crate) async fn build_leftovers(engine: &Engine) -> Result<()> {
    let jobs = Stored::all(engine.store.as_ref()).await?;
    if jobs.iter().any(|s| s.job.status == Status::Running && s.job.mode == Mode::InitialLoad) {
        return Ok(());
    }
    while engine.store.load_ends().await? {}
    Ok(())
}

/// A job being run: the engine it writes through, the client's decisions, the worker that holds
/// it, where its error files go, and its state as last saved.
struct Run<'a> {
    engine: &'a Engine,
    access: &'a dyn Access,
    holder: &'a str,
    output: crate::export::Location,
    stored: Stored,
}

/// A batch of lines made ready ([`Run::prepare`]): what became of the lines settled so far,
/// what is left to write, and the input's byte offset after the batch's last line.
struct Prepared {
    outcomes: Vec<(u64, Outcome)>,
    work: Work,
    end: u64,
}

/// What is left to write of a batch.
enum Work {
    /// Initial load: each line's version 1.
    Initial(Vec<(u64, Write)>),
    /// Incremental load: each line upserted in turn.
    Incremental(Vec<(u64, Parsed)>),
}

/// A prepared batch whose writes have started ([`Run::start`]).
struct Started {
    outcomes: Vec<(u64, Outcome)>,
    writing: Writing,
    end: u64,
}

/// The writes of a started batch.
enum Writing {
    /// Initial load: the task loading the writes, which gives each load's lines, writes and
    /// result (dropped, it is aborted).
    Loads(JoinSet<Vec<Loaded>>),
    /// Incremental load: the lines still to upsert.
    Incremental(Vec<(u64, Parsed)>),
}

/// One store load of an initial load: its lines, their writes, and how it ended.
type Loaded = (Vec<u64>, Vec<Write>, std::result::Result<(), StoreError>);

/// What became of one line.
enum Outcome {
    Written,
    Failed(Vec<Issue>),
}

impl Run<'_> {
    /// Checkpoints the job's progress and renews the lease; `false` when the record changed
    /// under it (cancelled: removed; or taken over by another worker), and the run must stop.
    async fn save(&mut self) -> Result<bool> {
        self.stored.job.lease = Some(Lease::new(self.engine, self.holder));
        self.stored.save(self.engine.store.as_ref()).await
    }

    /// Has the store build again what it set aside for the initial load
    /// ([`crate::storage::Store::load_ends`]), whatever became of the run (`result`), renewing
    /// the lease between pieces while the job is still this worker's; `result`, or the build's
    /// error (the store builds the rest when it opens again).
    async fn built(&mut self, result: Result<bool>) -> Result<bool> {
        let mut ours = matches!(result, Ok(true));
        loop {
            match self.engine.store.load_ends().await {
                Ok(true) if ours => ours = self.save().await.unwrap_or(false),
                Ok(true) => {}
                Ok(false) => return result,
                Err(e) => return result.and(Err(e.into())),
            }
        }
    }

    /// Every input not done yet; `false` when the run must stop.
    async fn inputs(&mut self) -> Result<bool> {
        let gate = Gate::open(self.access, super::target())?;
        let settings = &self.engine.config.import;
        for n in 0..self.stored.job.inputs.len() {
            if self.stored.job.inputs[n].done {
                continue;
            }
            let url = self.stored.job.inputs[n].url.clone();
            let location = match source::check(settings, &url) {
                Ok(location) => location,
                Err(e) => {
                    if !self.fail_input(n, vec![Issue::error(IssueType::Forbidden, e.to_string())]).await? {
                        return Ok(false);
                    }
                    continue;
                }
            };
            if !self.input(n, &gate, location).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Appends `reports` to input `n`'s error file after what was committed.
    async fn report(&mut self, n: usize, reports: Vec<String>) -> Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for report in reports {
            text.extend_from_slice(report.as_bytes());
            text.push(b'\n');
        }
        let input = &mut self.stored.job.inputs[n];
        let at = Committed { bytes: input.error_bytes, chunks: input.error_chunks };
        let next = self.output.append(&self.stored.id, &Input::error_file(n), at, text).await?;
        (input.error_bytes, input.error_chunks) = (next.bytes, next.chunks);
        Ok(())
    }

    /// Records a whole input as failed (it cannot be read at all).
    async fn fail_input(&mut self, n: usize, issues: Vec<Issue>) -> Result<bool> {
        let input = &self.stored.job.inputs[n];
        let report = line::failure(&input.url, input.lines, issues);
        self.report(n, vec![report]).await?;
        let input = &mut self.stored.job.inputs[n];
        input.failed += 1;
        input.done = true;
        self.save().await
    }

    /// Input `n` from its recorded offset to its end; `false` when the run must stop. While one
    /// batch's writes are in the store, the next batch is parsed, validated and indexed (when no
    /// decision reads stored data, such as a patient's Consents, which the batch before may
    /// write): a load keeps a core on the store and one on the lines.
    async fn input(&mut self, n: usize, gate: &Gate<'_>, location: Location) -> Result<bool> {
        let offset = self.stored.job.inputs[n].offset;
        let mut lines = source::read(&self.engine.config.import, location, offset).await?;
        let overlap = gate.covers_data();
        let mut number = self.stored.job.inputs[n].lines;
        let mut batch: Vec<(u64, std::result::Result<Vec<u8>, String>)> = Vec::new();
        let mut pending: Option<Started> = None;
        let mut bytes = 0;
        let mut end = offset;
        loop {
            let next = lines.recv().await;
            let finished = next.is_none();
            if let Some(line) = next {
                end = line.end;
                bytes += line.text.as_ref().map_or(0, Vec::len);
                number += 1;
                batch.push((number, line.text));
            }
            let full = batch.len() >= BATCH_LINES || bytes >= BATCH_BYTES;
            if full || (finished && !batch.is_empty()) {
                let prepared = self.prepare(n, gate, std::mem::take(&mut batch), end).await?;
                bytes = 0;
                if let Some(before) = pending.take()
                    && !self.finish(n, gate, before).await?
                {
                    return Ok(false);
                }
                let started = self.start(prepared);
                if overlap {
                    pending = Some(started);
                } else if !self.finish(n, gate, started).await? {
                    return Ok(false);
                }
            }
            if finished {
                if let Some(before) = pending.take()
                    && !self.finish(n, gate, before).await?
                {
                    return Ok(false);
                }
                self.stored.job.inputs[n].done = true;
                return self.save().await;
            }
        }
    }

    /// One batch of numbered lines (of input `n`, ending at byte `end`) made ready on the CPU:
    /// parsed, validated and decided as resources the client sends; in initial-load mode, each
    /// line's version 1 indexed too. Nothing is written.
    async fn prepare(
        &self,
        n: usize,
        gate: &Gate<'_>,
        batch: Vec<(u64, std::result::Result<Vec<u8>, String>)>,
        end: u64,
    ) -> Result<Prepared> {
        let expected = self.stored.job.inputs[n].resource_type.clone();
        let id = &self.stored.id;
        let results = parallel(batch, |(number, text)| {
            let result = match text {
                Ok(text) => line::parse(&text, expected.as_deref(), || line_id(id, n, number)),
                Err(reason) => Err(vec![Issue::error(IssueType::Structure, reason)]),
            };
            (number, result)
        });
        let mut outcomes: Vec<(u64, Outcome)> = Vec::new();
        let mut parsed: Vec<(u64, Parsed)> = Vec::with_capacity(results.len());
        for (number, result) in results {
            match result {
                // The profile checks of any write: the profiles it declares or its type requires,
                // and a SearchParameter's own checks.
                Ok(p) => match enforce_profiles(self.engine, p.resource.as_object().unwrap_or(&Map::new())).await {
                    Ok(()) => parsed.push((number, p)),
                    Err(e @ (Error::Unprocessable(_) | Error::BadRequest(_) | Error::Invalid(_))) => {
                        outcomes.push((number, Outcome::Failed(e.outcome().issues)));
                    }
                    Err(e) => return Err(e),
                },
                Err(issues) => outcomes.push((number, Outcome::Failed(issues))),
            }
        }
        // Decided as resources the client sends, after loading what the decisions read.
        let values: Vec<&Value> = parsed.iter().map(|(_, p)| &p.resource).collect();
        gate.load_consents(self.engine, &values).await?;
        let mut allowed = Vec::with_capacity(parsed.len());
        for (number, p) in parsed {
            if gate.allows(&p.resource, Phase::Incoming) {
                allowed.push((number, p));
            } else {
                let why = format!("importing `{}/{}` is not allowed for this client", p.resource_type, p.id);
                outcomes.push((number, Outcome::Failed(vec![Issue::error(IssueType::Forbidden, why)])));
            }
        }
        let work = match self.stored.job.mode {
            Mode::InitialLoad => Work::Initial(self.initial(allowed, &mut outcomes)?),
            Mode::IncrementalLoad => Work::Incremental(allowed),
        };
        Ok(Prepared { outcomes, work, end })
    }

    /// Initial load: version 1 of every line, indexed on the parsing threads; a resource twice
    /// in the batch fails its second line.
    fn initial(&self, lines: Vec<(u64, Parsed)>, outcomes: &mut Vec<(u64, Outcome)>) -> Result<Vec<(u64, Write)>> {
        let mut seen = HashSet::with_capacity(lines.len());
        let mut first = Vec::with_capacity(lines.len());
        for (number, p) in lines {
            if seen.insert((p.resource_type.clone(), p.id.clone())) {
                first.push((number, p));
            } else {
                let why = format!("`{}/{}` appears twice in the same batch of an initial load", p.resource_type, p.id);
                outcomes.push((number, Outcome::Failed(vec![Issue::error(IssueType::Conflict, why)])));
            }
        }
        drop(seen);
        // Each parsed resource is dropped as its write (JSON text and index entries) is made.
        let prepared = parallel(first, |(number, mut p)| {
            let write =
                prepare_write(self.engine, &p.resource_type, &p.id, 1, WriteKind::Create, p.resource.as_object_mut());
            (number, write)
        });
        prepared.into_iter().map(|(number, write)| Ok((number, write?))).collect()
    }

    /// Starts writing a prepared batch: in initial-load mode its writes go to the store on a
    /// task of their own, in as few loads as the store takes at once (Cosmos DB: 49), while the
    /// caller prepares the next batch.
    fn start(&self, prepared: Prepared) -> Started {
        let Prepared { outcomes, work, end } = prepared;
        let writing = match work {
            Work::Initial(lines) => {
                let store = self.engine.store().clone();
                let most = store.capabilities().max_batch_writes.unwrap_or(BATCH_LINES).max(1);
                let mut loads: Vec<(Vec<u64>, Vec<Write>)> = Vec::new();
                let mut lines = lines.into_iter().peekable();
                while lines.peek().is_some() {
                    loads.push(lines.by_ref().take(most).unzip());
                }
                let mut task = JoinSet::new();
                task.spawn(async move {
                    let mut loaded = Vec::with_capacity(loads.len());
                    for (numbers, writes) in loads {
                        let result = store.load(&writes).await;
                        loaded.push((numbers, writes, result));
                    }
                    loaded
                });
                Writing::Loads(task)
            }
            Work::Incremental(lines) => Writing::Incremental(lines),
        };
        Started { outcomes, writing, end }
    }

    /// Ends a started batch: its loads awaited (a load that failed on a resource that exists,
    /// again line by line) or, in incremental mode, each line upserted; then the lines' outcomes
    /// reported and the progress saved up to the batch's end. `false` when the run must stop.
    async fn finish(&mut self, n: usize, gate: &Gate<'_>, started: Started) -> Result<bool> {
        let Started { mut outcomes, writing, end } = started;
        match writing {
            Writing::Loads(mut task) => {
                let Some(Ok(loads)) = task.join_next().await else {
                    return Err(Error::Internal("an import's load task failed".into()));
                };
                for (numbers, writes, result) in loads {
                    outcomes.extend(self.loaded(gate, &numbers, &writes, result).await?);
                }
            }
            Writing::Incremental(lines) => {
                for (number, p) in lines {
                    outcomes.push((number, self.upsert(gate, p).await?));
                }
            }
        }
        outcomes.sort_by_key(|(number, _)| *number);
        let mut reports = Vec::new();
        let input = &mut self.stored.job.inputs[n];
        for (number, outcome) in outcomes {
            match outcome {
                Outcome::Written => input.imported += 1,
                Outcome::Failed(issues) => {
                    input.failed += 1;
                    reports.push(line::failure(&input.url, number, issues));
                }
            }
            input.lines = input.lines.max(number);
        }
        self.report(n, reports).await?;
        self.stored.job.inputs[n].offset = end;
        self.save().await
    }

    /// What became of one load of version-1 writes (of lines `numbers`) that ended with
    /// `result`; on a conflict, or more than the store takes at once, each write alone.
    async fn loaded(
        &self,
        gate: &Gate<'_>,
        numbers: &[u64],
        writes: &[Write],
        result: std::result::Result<(), StoreError>,
    ) -> Result<Vec<(u64, Outcome)>> {
        let store = self.engine.store();
        match result {
            Ok(()) => {
                for write in writes {
                    self.written(gate, &write.version).await;
                }
                return Ok(numbers.iter().map(|n| (*n, Outcome::Written)).collect());
            }
            Err(StoreError::VersionConflict { .. }) => {}
            // More than the store takes at once (Cosmos DB: 2 MB per transactional batch).
            Err(StoreError::Unsupported(_)) if writes.len() > 1 => {}
            Err(e) => return Err(e.into()),
        }
        let mut outcomes = Vec::with_capacity(writes.len());
        for (number, write) in numbers.iter().zip(writes) {
            let version = &write.version;
            let (resource_type, id) = (version.resource_type.as_str(), version.id.as_str());
            let outcome = match store.load(std::slice::from_ref(write)).await {
                Ok(()) => {
                    self.written(gate, version).await;
                    Outcome::Written
                }
                Err(StoreError::VersionConflict { .. }) => {
                    let current = store.read(resource_type, id).await?;
                    let content = version.json.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok());
                    let replay = content.is_some_and(|content| {
                        current.as_ref().is_some_and(|c| !c.is_deleted() && same(c.json.as_deref(), &content))
                    });
                    if replay {
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
                // One resource larger than the store takes: this line fails, the others go on.
                Err(StoreError::Unsupported(why)) => Outcome::Failed(vec![Issue::error(IssueType::NotSupported, why)]),
                Err(e) => return Err(e.into()),
            };
            outcomes.push((*number, outcome));
        }
        Ok(outcomes)
    }

    /// After a line's version was stored: audited as the kick-off's request, and what any write
    /// of it does next (a SearchParameter put in force, stored profiles read again).
    async fn written(&self, gate: &Gate<'_>, version: &ResourceVersion) {
        gate.written(version);
        after_write(self.engine, version).await;
    }

    /// Incremental load: one line as an upsert, decided on the version it replaces too.
    async fn upsert(&self, gate: &Gate<'_>, mut p: Parsed) -> Result<Outcome> {
        for _ in 0..12 {
            let current = self.engine.store().read(&p.resource_type, &p.id).await?;
            let live = current.as_ref().filter(|c| !c.is_deleted());
            if let Some(live) = live {
                if !gate.allows_version(self.engine, live, Phase::Stored).await? {
                    let why = format!("replacing `{}/{}` is not allowed for this client", p.resource_type, p.id);
                    return Ok(Outcome::Failed(vec![Issue::error(IssueType::Forbidden, why)]));
                }
                if !self.engine.config().version_unchanged_updates && same(live.json.as_deref(), &p.resource) {
                    return Ok(Outcome::Written);
                }
            }
            let next = current.as_ref().map_or(1, |c| c.version + 1);
            let kind = if current.is_some() { WriteKind::Update } else { WriteKind::Create };
            // A retry stamps `meta` again: what the comparison above ignores.
            let write = prepare_write(self.engine, &p.resource_type, &p.id, next, kind, p.resource.as_object_mut())?;
            let version = write.version.clone();
            match self.engine.store().transact(vec![write]).await {
                Ok(()) => {
                    self.written(gate, &version).await;
                    return Ok(Outcome::Written);
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::Unsupported(why)) => {
                    return Ok(Outcome::Failed(vec![Issue::error(IssueType::NotSupported, why)]));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let why = format!("`{}/{}` kept being written concurrently; it was not imported", p.resource_type, p.id);
        Ok(Outcome::Failed(vec![Issue::error(IssueType::Conflict, why)]))
    }
}

/// `work` on each of `items`, in order, on rayon's pool (one thread per core, kept for the
/// process's life): parsing, validating and indexing a batch's lines is CPU work that the
/// store's round trips do not overlap. Threads made per batch instead each left an allocator
/// heap behind holding what they parsed (a 100-patient import made 1,700 of them). On a
/// multi-threaded runtime the calling worker hands its other tasks on while it waits
/// ([`tokio::task::block_in_place`]).
fn parallel<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if items.len() < PARALLEL_FROM || rayon::current_num_threads() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let run = move || items.into_par_iter().map(work).collect();
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi { tokio::task::block_in_place(run) } else { run() }
}

/// Whether a stored version has `content` (a JSON object), server-managed meta aside.
fn same(stored: Option<&str>, content: &Value) -> bool {
    let Some(Ok(Value::Object(stored))) = stored.map(serde_json::from_str::<Value>) else { return false };
    content.as_object().is_some_and(|content| without_server_meta(&stored) == without_server_meta(content))
}
