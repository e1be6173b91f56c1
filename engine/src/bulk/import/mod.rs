//! `$import` (Bulk Data import, as Microsoft's FHIR server and the Bulk Data IG's import
//! proposal have it): NDJSON files loaded as a job that runs after the request.
//!
//! - Kick-off: `POST [base]/$import` with `Prefer: respond-async` and a `Parameters` body
//!   (`inputFormat` = `application/fhir+ndjson`, `mode` = `InitialLoad` or `IncrementalLoad`,
//!   one `input` part per file with `type` and `url`) → 202 with `Content-Location` naming the
//!   job's status URL, `[base]/$import-status?job=<id>`. Inputs are files in a directory the
//!   operator allowed or `http(s)` URLs under a prefix the operator allowed
//!   ([`ImportSettings`]); anything else is a 400 before anything runs. An initial load is
//!   refused (400) unless every type it names holds no resource yet, and only clients whose
//!   grant covers every resource may ask for one (403 otherwise: the refusal would tell a client
//!   of resources hidden from it).
//! - Status: `GET` on it → 202 with `X-Progress` while it runs, then 200 with the manifest: per
//!   input the resources imported and, when lines failed, the URL of an OperationOutcome NDJSON
//!   file with one line per failed input line (`&errors=<n>` on the status URL). `DELETE` on it
//!   cancels the job (202); afterwards the status URL is a 404.
//! - Decisions: the kick-off is decided as the action `import` on the system; each resource as
//!   a resource that client sends under `import` (`incoming`), and in incremental mode the
//!   version it replaces as `stored`. Only the client that started a job (the same owner
//!   digest: same principal, same grants) may poll, download or cancel it; to anyone else it
//!   does not exist (404).
//! - Jobs survive the process: their state and error files are kept by a [`JobStore`] (files
//!   under the server's data directory); a job found running in its state but not in this
//!   process (the server restarted) resumes where its saved progress ends when its owner polls
//!   it, with the decisions of the poll's client (the same owner).

mod job;
mod line;
mod run;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub use job::{DirJobs, Input, Job, JobStore, Mode, Status};

use crate::access::{Access, Interaction, Target};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::{Engine, Gate, Method, Request, Response};
use crate::resource::format_instant;
use crate::search::query::SearchQuery;

/// Import jobs one process runs at once; a kick-off beyond them is a 503 with `Retry-After`.
const MAX_RUNNING: usize = 4;

/// Where `$import` may read from and keep its jobs (the gateway's `[import]` settings).
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// Directories whose files (and their subdirectories' files) may be imported.
    pub input_dirs: Vec<PathBuf>,
    /// URL prefixes under which `http(s)` inputs may be fetched.
    pub input_urls: Vec<String>,
    /// Where job states and error files are kept; `None`: `$import` is not available (501).
    pub jobs_dir: Option<PathBuf>,
}

/// The jobs running in this process: their cancellation flags.
#[derive(Default)]
pub(crate) struct Running {
    jobs: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `$name` at system level is one of this module's.
pub(crate) fn is_import(name: &str) -> bool {
    matches!(name, "import" | "import-status")
}

/// The CapabilityStatement's `rest.operation` entry for `$import` (Microsoft's FHIR server's
/// definition: its `Parameters` form is the one accepted).
pub(crate) fn declared() -> serde_json::Value {
    serde_json::json!({"name": "import", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import"})
}

/// `$import` (kick-off) and `$import-status` (poll, errors, cancel) for the client `gate`
/// decided on, whose decisions `access` makes.
pub(crate) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    access: &dyn Access,
    request: &Request,
    name: &str,
) -> Result<Response> {
    let Some(dir) = engine.config().import.jobs_dir.clone() else {
        return Err(Error::NotSupported("`$import` is not enabled on this server".into()));
    };
    let jobs: Arc<dyn JobStore> = Arc::new(DirJobs::new(dir));
    match (name, &request.method) {
        ("import", Method::Post) => kick_off(engine, gate, access, request, jobs).await,
        ("import-status", Method::Get | Method::Head) => status(engine, gate, access, request, &jobs),
        ("import-status", Method::Delete) => cancel(engine, gate, request, &jobs),
        _ => Err(Error::MethodNotAllowed(format!("`{}` is not supported on `${name}`", request.method.as_str()))),
    }
}

async fn kick_off(
    engine: &Engine,
    gate: &Gate<'_>,
    access: &dyn Access,
    request: &Request,
    jobs: Arc<dyn JobStore>,
) -> Result<Response> {
    let asynchronous = request.headers.prefer.as_deref().is_some_and(|p| p.contains("respond-async"));
    if !asynchronous {
        return Err(Error::bad_request("`$import` runs asynchronously: send `Prefer: respond-async`"));
    }
    let (mode, inputs) = parameters(engine, &request.body)?;
    if mode == Mode::InitialLoad && !gate.covers_data() {
        // Its refusal of a type that holds resources would count resources the client may not see.
        return Err(Error::Forbidden(
            "an initial load needs an import grant on every resource; use `IncrementalLoad`".into(),
        ));
    }
    if mode == Mode::InitialLoad {
        check_empty(engine, &inputs).await?;
    }
    let Some(detached) = access.detach() else {
        return Err(Error::Forbidden("this client's decisions cannot be kept for a job".into()));
    };
    if engine.imports.lock().len() >= MAX_RUNNING {
        return Err(Error::Timeout(format!("{MAX_RUNNING} imports are running already: start this one later")));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let job = Job {
        id: id.clone(),
        owner: gate.owner().to_owned(),
        mode,
        request: request.url("$import"),
        transaction_time: format_instant(engine.now()),
        status: Status::Running,
        inputs,
    };
    jobs.save(&job)?;
    start(engine, jobs, detached, job);
    Ok(Response::empty(202).with_header("Content-Location", status_url(request, &id)))
}

fn status_url(request: &Request, id: &str) -> String {
    format!("{}?job={id}", request.url("$import-status"))
}

/// The mode and inputs of a kick-off's `Parameters`, every input checked.
fn parameters(engine: &Engine, body: &[u8]) -> Result<(Mode, Vec<Input>)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("the `$import` body is not valid JSON: {e}")))?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::bad_request("the `$import` body must be a `Parameters` resource"));
    }
    let parameters = value.get("parameter").and_then(Value::as_array).cloned().unwrap_or_default();
    let text = |p: &Value| -> Option<String> {
        ["valueString", "valueCode", "valueUri", "valueUrl"].iter().find_map(|k| p.get(*k)?.as_str().map(str::to_owned))
    };
    let named =
        |name: &'static str| parameters.iter().filter(move |p| p.get("name").and_then(Value::as_str) == Some(name));
    if let Some(format) = named("inputFormat").find_map(text) {
        if format != "application/fhir+ndjson" && format != "application/ndjson" {
            return Err(Error::bad_request(format!(
                "`inputFormat` `{format}` is not supported: use `application/fhir+ndjson`"
            )));
        }
    }
    let mode = named("mode").find_map(text).unwrap_or_else(|| "InitialLoad".into());
    let mode = Mode::parse(&mode)
        .ok_or_else(|| Error::bad_request(format!("`mode` `{mode}` is neither `InitialLoad` nor `IncrementalLoad`")))?;
    let settings = &engine.config().import;
    let mut inputs = Vec::new();
    for part in named("input") {
        let parts = part.get("part").and_then(Value::as_array).cloned().unwrap_or_default();
        let of = |name: &str| parts.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(name)).and_then(text);
        let url = of("url").ok_or_else(|| Error::bad_request("an `input` has no `url`"))?;
        let resource_type = of("type");
        if let Some(t) = resource_type.as_deref().filter(|t| !Definitions::r4().is_resource_type(t)) {
            return Err(Error::bad_request(format!("input type `{t}` is not a resource type")));
        }
        if mode == Mode::InitialLoad && resource_type.is_none() {
            return Err(Error::bad_request(format!("input `{url}` needs a `type` for an initial load")));
        }
        source::check(settings, &url)?;
        inputs.push(Input {
            resource_type,
            url,
            offset: 0,
            lines: 0,
            imported: 0,
            failed: 0,
            error_bytes: 0,
            done: false,
        });
    }
    if inputs.is_empty() {
        return Err(Error::bad_request("`$import` needs at least one `input`"));
    }
    if inputs.len() > 1_000 {
        return Err(Error::bad_request("`$import` takes at most 1000 inputs"));
    }
    Ok((mode, inputs))
}

/// An initial load writes only into types that hold nothing yet.
async fn check_empty(engine: &Engine, inputs: &[Input]) -> Result<()> {
    let mut types: Vec<&str> = inputs.iter().filter_map(|i| i.resource_type.as_deref()).collect();
    types.sort_unstable();
    types.dedup();
    for t in types {
        let query = SearchQuery {
            resource_type: Some(t.to_owned()),
            clauses: Vec::new(),
            result: Default::default(),
            compartment: None,
            after: None,
        };
        if !engine.store().search(&query, 1).await?.is_empty() {
            return Err(Error::bad_request(format!(
                "an initial load needs an empty store for its types, and `{t}` has resources: use `IncrementalLoad`"
            )));
        }
    }
    Ok(())
}

/// Runs `job` on this process's runtime, unless it runs here already.
fn start(engine: &Engine, jobs: Arc<dyn JobStore>, access: Arc<dyn Access>, job: Job) {
    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let mut running = engine.imports.lock();
        if running.contains_key(&job.id) {
            return;
        }
        running.insert(job.id.clone(), Arc::clone(&cancelled));
    }
    let engine = engine.worker();
    tokio::spawn(async move {
        let run = run::Run { engine: Arc::clone(&engine), jobs, access, cancelled };
        run.run(job).await;
    });
}

/// The job a status request names, if it is the caller's (404 otherwise, whether it exists or not).
fn owned(gate: &Gate<'_>, request: &Request, jobs: &Arc<dyn JobStore>) -> Result<Job> {
    let id = request.param("job").unwrap_or_default();
    let unknown = || Error::NotFound(format!("no import job `{id}`"));
    let job = jobs.load(id).map_err(|_| unknown())?.ok_or_else(unknown)?;
    if job.owner != gate.owner() || job.status == Status::Cancelled {
        return Err(unknown());
    }
    Ok(job)
}

fn status(
    engine: &Engine,
    gate: &Gate<'_>,
    access: &dyn Access,
    request: &Request,
    jobs: &Arc<dyn JobStore>,
) -> Result<Response> {
    let mut job = owned(gate, request, jobs)?;
    if let Some(n) = request.param("errors") {
        let n: usize = n.parse().map_err(|_| Error::bad_request(format!("`errors={n}` is not an input number")))?;
        let bytes = jobs.errors(&job.id, n)?.ok_or_else(|| Error::NotFound(format!("input {n} has no errors")))?;
        return Ok(Response::rendered(200, "application/fhir+ndjson", bytes));
    }
    let (imported, failed): (u64, u64) = job.inputs.iter().fold((0, 0), |(i, f), n| (i + n.imported, f + n.failed));
    if job.status == Status::Running && !engine.imports.lock().contains_key(&job.id) {
        // Not running here: it ended since it was loaded, or the process that ran it stopped.
        job = owned(gate, request, jobs)?;
        if job.status == Status::Running
            && let Some(detached) = access.detach()
        {
            start(engine, Arc::clone(jobs), detached, job.clone());
        }
    }
    if job.status == Status::Running {
        let done = job.inputs.iter().filter(|i| i.done).count();
        let progress =
            format!("{done} of {} inputs, {imported} resources imported, {failed} lines failed", job.inputs.len());
        return Ok(Response::empty(202).with_header("X-Progress", progress).with_header("Retry-After", "2"));
    }
    Ok(Response::json(200, manifest(request, &job)))
}

/// The manifest of a completed job.
fn manifest(request: &Request, job: &Job) -> Value {
    let mut output = Vec::new();
    let mut error = Vec::new();
    for (n, input) in job.inputs.iter().enumerate() {
        output.push(json!({
            "type": input.resource_type.clone().unwrap_or_default(),
            "count": input.imported,
            "inputUrl": input.url,
        }));
        if input.failed > 0 {
            error.push(json!({
                "type": "OperationOutcome",
                "count": input.failed,
                "inputUrl": input.url,
                "url": format!("{}&errors={n}", status_url(request, &job.id)),
            }));
        }
    }
    json!({
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": true,
        "mode": match job.mode { Mode::InitialLoad => "InitialLoad", Mode::IncrementalLoad => "IncrementalLoad" },
        "output": output,
        "error": error,
    })
}

fn cancel(engine: &Engine, gate: &Gate<'_>, request: &Request, jobs: &Arc<dyn JobStore>) -> Result<Response> {
    let mut job = owned(gate, request, jobs)?;
    // Under the running set's lock: the run's own saves check the flag under it (see `run`).
    let running = engine.imports.lock();
    if let Some(flag) = running.get(&job.id) {
        flag.store(true, Ordering::Relaxed);
    }
    job.status = Status::Cancelled;
    jobs.save(&job)?;
    drop(running);
    Ok(Response::empty(202))
}

/// The target a kick-off and a poll are decided on: `import` on the system.
pub(crate) fn target() -> Target {
    Target { operation: "import".into(), ..Target::new(Interaction::Operation, "", "") }
}
