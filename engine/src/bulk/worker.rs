//! The one job mechanism of bulk `$export` and `$import`: both keep their jobs as store records
//! ([`crate::storage::JobRecord`], kinds `export` and `import`) written as versioned updates
//! (a save that lost a race to another writer fails and that writer wins), with the client's
//! owner digest and persona ([`crate::access::Access::persona`]), a [`Lease`] held by the worker
//! running the job and renewed at every checkpoint, and an expiry once they end.
//!
//! The front end's worker ([`claim`], [`run`]) takes any running job whose lease ran out (a new
//! one, or one whose worker stopped: a crash, a restart, another replica gone), rebuilds the
//! client's decisions from its persona and runs it; so replicas share jobs and a job resumes
//! wherever a worker runs. A cancellation removes the record: the run's next checkpoint then
//! fails, and the run stops and removes what it wrote after the cancellation. [`sweep`] removes
//! the jobs, and their files, that expired.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::error::{Error, Result};
use crate::interaction::Engine;
use crate::storage::{JobRecord, Store, StoreError};

/// A job's state, kept as the body of its store record: what the mechanism reads and writes
/// of it, whatever its kind.
pub(crate) trait JobBody: Serialize + DeserializeOwned {
    /// The record kind.
    const KIND: &'static str;
    /// Which worker runs it.
    const WORKER: Kind;
    /// Whether it still runs (neither ended nor failed).
    fn running(&self) -> bool;
    /// Ends it as failed with `message`.
    fn failed(&mut self, message: String);
    fn lease(&mut self) -> &mut Option<Lease>;
    /// Unix seconds at which it is removed, once it ended.
    fn expires(&mut self) -> &mut Option<i64>;
    /// What [`Access::persona`] gave when it was kicked off.
    fn persona(&self) -> &str;
}

/// A job with the version of its record.
#[derive(Debug, Clone)]
pub(crate) struct Stored<J> {
    pub(crate) id: String,
    pub(crate) version: u64,
    pub(crate) job: J,
}

impl<J: JobBody> Stored<J> {
    /// A new job, not saved yet.
    pub(crate) fn new(id: String, job: J) -> Self {
        Self { id, version: 0, job }
    }

    fn from_record(record: JobRecord) -> Result<Self> {
        let job = serde_json::from_str(&record.body)
            .map_err(|e| Error::Internal(format!("{} job `{}` has an unreadable record: {e}", J::KIND, record.id)))?;
        Ok(Self { id: record.id, version: record.version, job })
    }

    /// Job `id` of this kind, if there is one.
    pub(crate) async fn load(store: &dyn Store, id: &str) -> Result<Option<Self>> {
        store.job(id).await?.filter(|r| r.kind == J::KIND).map(Self::from_record).transpose()
    }

    /// Every job of this kind.
    pub(crate) async fn all(store: &dyn Store) -> Result<Vec<Self>> {
        store.jobs(J::KIND).await?.into_iter().map(Self::from_record).collect()
    }

    /// Writes the job as the next version of its record; `false` when someone else wrote (or
    /// removed: a cancellation) it first.
    pub(crate) async fn save(&mut self, store: &dyn Store) -> Result<bool> {
        let body = serde_json::to_string(&self.job).map_err(|e| Error::Internal(e.to_string()))?;
        let record = JobRecord { id: self.id.clone(), kind: J::KIND.into(), version: self.version + 1, body };
        match store.put_job(&record).await {
            Ok(()) => {
                self.version += 1;
                Ok(true)
            }
            Err(StoreError::VersionConflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

impl<J: JobBody> Stored<J> {
    /// Saves the job as ended (its state set by the caller): no lease, removed after the
    /// retention; `false` as [`Stored::save`].
    pub(crate) async fn finish(&mut self, engine: &Engine) -> Result<bool> {
        *self.job.lease() = None;
        *self.job.expires() = Some(expiry(engine));
        self.save(engine.store.as_ref()).await
    }
}

/// Takes over a running job of kind `J` that no worker holds (new, or whose holder stopped
/// checkpointing: a crash, a restart, another replica gone), for `holder`.
async fn claim_kind<J: JobBody>(engine: &Engine, holder: &str) -> Result<Option<Claimed>> {
    for mut stored in Stored::<J>::all(engine.store.as_ref()).await? {
        if !stored.job.running() || !Lease::free(stored.job.lease().as_ref(), engine) {
            continue;
        }
        *stored.job.lease() = Some(Lease::new(engine, holder));
        if stored.save(engine.store.as_ref()).await? {
            tracing::info!(job = %stored.id, holder, "{} job taken", J::KIND);
            return Ok(Some(Claimed { kind: J::WORKER, job: stored.id, persona: stored.job.persona().to_owned() }));
        }
    }
    Ok(None)
}

/// Ends a claimed job of kind `J` as failed, if `holder` still holds it.
async fn fail_kind<J: JobBody>(engine: &Engine, claimed: &Claimed, holder: &str, message: &str) -> Result<()> {
    let Some(mut stored) = Stored::<J>::load(engine.store.as_ref(), &claimed.job).await? else { return Ok(()) };
    if stored.job.lease().as_ref().is_some_and(|l| l.holder == holder) {
        stored.job.failed(message.to_owned());
        stored.finish(engine).await?;
    }
    Ok(())
}

/// Removes the jobs of kind `J`, and their files, that ended longer than the retention ago.
async fn sweep_kind<J: JobBody>(engine: &Engine) -> Result<()> {
    let Some(settings) = &engine.config.export else { return Ok(()) };
    let now = engine.now().unix_timestamp();
    for mut stored in Stored::<J>::all(engine.store.as_ref()).await? {
        if stored.job.expires().is_some_and(|at| at <= now) {
            engine.store.delete_job(&stored.id).await?;
            settings.output.remove(&stored.id).await?;
            tracing::info!(job = %stored.id, "{} job expired and removed", J::KIND);
        }
    }
    Ok(())
}

/// Whether `id` looks like a job id this server makes (32 hex digits); a client's other ids are
/// unknown jobs without a store read.
pub(crate) fn is_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A worker's claim on a running job, until `until` (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) holder: String,
    pub(crate) until: i64,
}

impl Lease {
    /// A claim by `holder` for the lease time of `engine`'s settings.
    pub(crate) fn new(engine: &Engine, holder: &str) -> Self {
        let ms = engine.config.export.as_ref().map_or(30_000, |s| s.lease.as_millis());
        Self { holder: holder.to_owned(), until: now_ms(engine).saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)) }
    }

    /// Whether nobody holds a job with this lease (`None`: never claimed).
    pub(crate) fn free(lease: Option<&Self>, engine: &Engine) -> bool {
        lease.is_none_or(|l| l.until < now_ms(engine))
    }
}

fn now_ms(engine: &Engine) -> i64 {
    i64::try_from(engine.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Unix seconds at which a job ending now expires (the retention of the export settings).
pub(crate) fn expiry(engine: &Engine) -> i64 {
    let retention = engine.config.export.as_ref().map_or(0, |s| s.retention.as_secs());
    engine.now().unix_timestamp().saturating_add(i64::try_from(retention).unwrap_or(0))
}

/// Which kind of job a worker took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Export,
    Import,
}

/// A job a worker took over: run it with the decisions its persona rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub kind: Kind,
    pub job: String,
    /// What [`Access::persona`] gave when the job was kicked off.
    pub persona: String,
}

/// Whether this engine runs bulk jobs: it has an output location and its store keeps job
/// records.
pub async fn available(engine: &Engine) -> bool {
    engine.config.export.is_some() && !matches!(engine.store.jobs("").await, Err(StoreError::Unsupported(_)))
}

/// Takes over a running job that no worker holds, for `holder`: exports first, then imports.
pub async fn claim(engine: &Engine, holder: &str) -> Result<Option<Claimed>> {
    if let Some(claimed) = claim_kind::<crate::export::Job>(engine, holder).await? {
        return Ok(Some(claimed));
    }
    claim_kind::<crate::bulk::import::Job>(engine, holder).await
}

/// Runs a claimed job to its end with `access`, the decisions of the client that asked.
pub async fn run(engine: &Engine, claimed: &Claimed, holder: &str, access: &dyn Access) -> Result<()> {
    match claimed.kind {
        Kind::Export => crate::export::run(engine, claimed, holder, access).await,
        Kind::Import => crate::bulk::import::run(engine, claimed, holder, access).await,
    }
}

/// Ends a claimed job as failed (its persona cannot be turned into decisions any more).
pub async fn fail(engine: &Engine, claimed: &Claimed, holder: &str, message: &str) -> Result<()> {
    match claimed.kind {
        Kind::Export => fail_kind::<crate::export::Job>(engine, claimed, holder, message).await,
        Kind::Import => fail_kind::<crate::bulk::import::Job>(engine, claimed, holder, message).await,
    }
}

/// Removes the jobs of both kinds, and their files, that ended longer than the retention ago;
/// builds what an initial load set aside and no run will build.
pub async fn sweep(engine: &Engine) -> Result<()> {
    sweep_kind::<crate::export::Job>(engine).await?;
    sweep_kind::<crate::bulk::import::Job>(engine).await?;
    crate::bulk::import::build_leftovers(engine).await
}
