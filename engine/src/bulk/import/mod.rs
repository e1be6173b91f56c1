//! `$import` (Bulk Data import, as Microsoft's FHIR server and the Bulk Data IG's import
//! proposal have it): NDJSON files loaded as a job that runs after the request.
//!
//! - Kick-off: `POST [base]/$import` with `Prefer: respond-async` and a `Parameters` body
//!   (`inputFormat` = `application/fhir+ndjson`, `mode` = `InitialLoad` or `IncrementalLoad`,
//!   one `input` part per file with `type` and `url`) → 202 with `Content-Location` naming the
//!   job's status URL, `[base]/$import-status?job=<id>`. Inputs are files in a directory the
//!   operator allowed, `http(s)` URLs under a prefix the operator allowed, or blobs of the Azure
//!   Blob Storage containers the operator allowed, read with the gateway's own identity
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
//! - Jobs are store records run by the front end's bulk worker, like export jobs
//!   ([`crate::bulk::worker`]): the kick-off records the job with the client's persona, a worker
//!   of any replica takes it and runs it with the decisions the persona rebuilds, checkpointing
//!   after every batch; a job whose worker stopped (a crash, a restart, a replica gone) is taken
//!   over once its lease runs out and resumes where its last checkpoint ends. Error reports are
//!   files in the bulk output location ([`job`]). A cancellation removes the record and the
//!   files; the run's next checkpoint then fails (a versioned write), so whichever replica runs
//!   it stops, and nothing it saves afterwards can bring the job back.

mod job;
mod line;
mod run;
mod source;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

pub(crate) use job::Job;
use job::{Input, Mode, Status, Stored};
pub(crate) use run::{build_leftovers, run};

use crate::access::{Interaction, Target};
use crate::bulk::worker::is_job_id;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::export::Location;
use crate::interaction::{Engine, Gate, Method, Request, Response};
use crate::resource::format_instant;
use crate::search::query::SearchQuery;

/// Where `$import` may read from (the gateway's `[import]` settings).
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// Directories whose files (and their subdirectories' files) may be imported.
    pub input_dirs: Vec<PathBuf>,
    /// URL prefixes under which `http(s)` inputs may be fetched.
    pub input_urls: Vec<String>,
    /// The Blob Storage account whose containers `input_containers` may be read, with the
    /// gateway's credentials.
    pub blob: Option<Arc<crate::bulk::blob::Account>>,
    /// Containers of `blob` whose blobs may be imported.
    pub input_containers: Vec<String>,
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
/// decided on (the job keeps its persona: the worker decides every line as that client).
pub(crate) async fn handle(engine: &Engine, gate: &Gate<'_>, request: &Request, name: &str) -> Result<Response> {
    let Some(output) = engine.config().export.as_ref().map(|s| &s.output) else {
        return Err(Error::NotSupported("`$import` needs the bulk job output (`export.enabled`)".into()));
    };
    match (name, &request.method) {
        ("import", Method::Post) => kick_off(engine, gate, request, output).await,
        ("import-status", Method::Get | Method::Head) => status(engine, gate, request, output).await,
        ("import-status", Method::Delete) => cancel(engine, gate, request, output).await,
        _ => Err(Error::MethodNotAllowed(format!("`{}` is not supported on `${name}`", request.method.as_str()))),
    }
}

async fn kick_off(engine: &Engine, gate: &Gate<'_>, request: &Request, output: &Location) -> Result<Response> {
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
    let Some(persona) = gate.persona() else {
        return Err(Error::Forbidden("this client's decisions cannot be kept for a job".into()));
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let job = Job {
        owner: gate.owner().to_owned(),
        persona,
        mode,
        request: request.url("$import"),
        transaction_time: format_instant(engine.now()),
        status: Status::Running,
        inputs,
        lease: None,
        attempts: 0,
        expires: None,
    };
    output.create(&id).await?;
    let mut stored = Stored::new(id.clone(), job);
    let saved = stored.save(engine.store().as_ref()).await;
    if !matches!(saved, Ok(true)) {
        output.remove(&id).await?;
    }
    match saved {
        Ok(true) => {}
        Ok(false) => return Err(Error::Conflict("an import job with this id exists already: retry".into())),
        Err(Error::BadRequest(issues)) => {
            // The store keeps no job records (see `StoreError::Unsupported`).
            return Err(Error::NotSupported(issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default()));
        }
        Err(e) => return Err(e),
    }
    engine.export_signal();
    tracing::info!(job = %id, "import kicked off");
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
            error_chunks: 0,
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
            after_sort: Vec::new(),
        };
        if !engine.store().search(&query, 1).await?.is_empty() {
            return Err(Error::bad_request(format!(
                "an initial load needs an empty store for its types, and `{t}` has resources: use `IncrementalLoad`"
            )));
        }
    }
    Ok(())
}

/// The job a status request names, if it is the caller's (404 otherwise, whether it exists or not).
async fn owned(engine: &Engine, gate: &Gate<'_>, request: &Request) -> Result<Stored> {
    let id = request.param("job").unwrap_or_default();
    let unknown = || Error::NotFound(format!("no import job `{id}`"));
    if !is_job_id(id) {
        return Err(unknown());
    }
    match Stored::load(engine.store().as_ref(), id).await? {
        Some(stored) if stored.job.owner == gate.owner() => Ok(stored),
        _ => Err(unknown()),
    }
}

async fn status(engine: &Engine, gate: &Gate<'_>, request: &Request, output: &Location) -> Result<Response> {
    let stored = owned(engine, gate, request).await?;
    let job = &stored.job;
    if let Some(n) = request.param("errors") {
        let n: usize = n.parse().map_err(|_| Error::bad_request(format!("`errors={n}` is not an input number")))?;
        let input = job.inputs.get(n).filter(|i| i.error_bytes > 0);
        let input = input.ok_or_else(|| Error::NotFound(format!("input {n} has no errors")))?;
        return output.ndjson(&stored.id, &Input::error_file(n), input.error_bytes).await;
    }
    match &job.status {
        Status::Running => {
            let (imported, failed): (u64, u64) =
                job.inputs.iter().fold((0, 0), |(i, f), n| (i + n.imported, f + n.failed));
            let done = job.inputs.iter().filter(|i| i.done).count();
            let progress =
                format!("{done} of {} inputs, {imported} resources imported, {failed} lines failed", job.inputs.len());
            Ok(Response::empty(202).with_header("X-Progress", progress).with_header("Retry-After", "2"))
        }
        Status::Failed(message) => Err(Error::Internal(format!("the import failed: {message}"))),
        Status::Completed => Ok(Response::json(200, manifest(request, &stored.id, job))),
    }
}

/// The manifest of a completed job.
fn manifest(request: &Request, id: &str, job: &Job) -> Value {
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
                "url": format!("{}&errors={n}", status_url(request, id)),
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

/// Cancels a job: its record and files are removed; the worker running it (here or on another
/// replica) finds its next checkpoint refused and stops.
async fn cancel(engine: &Engine, gate: &Gate<'_>, request: &Request, output: &Location) -> Result<Response> {
    let stored = owned(engine, gate, request).await?;
    engine.store().delete_job(&stored.id).await?;
    output.remove(&stored.id).await?;
    tracing::info!(job = %stored.id, "import cancelled");
    Ok(Response::empty(202))
}

/// The target a kick-off and a poll are decided on: `import` on the system.
pub(crate) fn target() -> Target {
    Target { operation: "import".into(), ..Target::new(Interaction::Operation, "", "") }
}
