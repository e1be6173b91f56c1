//! The client's side of an export: the kick-off (`$export`), the status URL (`$export-status`:
//! poll with `GET`, cancel with `DELETE`) and the files (`$export-file`).

use serde_json::{Value, json};

use super::files::Location;
use super::job::{Cursor, Job, Level, Output, State, Stored};
use super::params::{self, MAX_PATIENTS};
use crate::access::{Interaction, Target};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::{Engine, Gate, Method, Request, Response};
use crate::resource::format_instant;
use crate::search::query::Limits;

/// How long a client should wait between two polls, in seconds.
const RETRY_AFTER: &str = "2";

/// `$export` at `resource_type`/`id` (both `None`: system level).
pub(crate) async fn kickoff(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Response> {
    let level = match (resource_type, id) {
        (None, None) => Level::System,
        (Some("Patient"), None) => Level::Patient,
        (Some("Group"), Some(id)) => Level::Group(id.to_owned()),
        _ => {
            return Err(Error::bad_request(
                "`$export` is defined at system level, on `Patient` and on `Group/[id]` only",
            ));
        }
    };
    let settings =
        engine.config.export.as_ref().ok_or_else(|| {
            Error::NotSupported("bulk export is off on this server (`export.enabled = false`)".into())
        })?;
    if !matches!(request.method, Method::Get | Method::Post) {
        return Err(Error::MethodNotAllowed("`$export` is kicked off with `GET` or `POST`".into()));
    }
    let asynchronous = request
        .headers
        .prefer
        .as_deref()
        .is_some_and(|p| p.split([',', ';']).any(|part| part.trim().eq_ignore_ascii_case("respond-async")));
    if !asynchronous {
        return Err(Error::bad_request("`$export` runs asynchronously: send `Prefer: respond-async`"));
    }
    let asked = params::parse(request, &level, &Limits::from(&engine.config))?;
    let persona = gate.persona().ok_or_else(|| {
        Error::NotSupported("this client's decisions cannot be carried into an asynchronous job".into())
    })?;
    let named_types = !asked.types.is_empty();
    let (types, patients) = scope(engine, gate, &level, asked.types, asked.patients).await?;
    let now = engine.now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let query = if request.query.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = request
            .query
            .iter()
            .map(|(k, v)| {
                format!("{}={}", crate::interaction::percent_encode(k), crate::interaction::percent_encode(v))
            })
            .collect();
        format!("?{}", pairs.join("&"))
    };
    let job = Job {
        owner: gate.owner().to_owned(),
        persona,
        request: format!("{}{query}", request.url(&request.path)),
        level,
        named_types,
        types,
        common: asked.since.map(|s| vec![("_lastUpdated".to_owned(), format!("ge{s}"))]).unwrap_or_default(),
        filters: asked.filters,
        patients,
        transaction_time: format_instant(now),
        created: now.unix_timestamp(),
        state: State::Running,
        lease: None,
        cursor: Cursor::default(),
        outputs: Vec::new(),
        errors: Vec::new(),
        attempts: 0,
        expires: None,
    };
    settings.output.create(&id).await?;
    let mut stored = Stored::new(id.clone(), job);
    match stored.save(engine.store.as_ref()).await {
        Ok(true) => {}
        Ok(false) => return Err(Error::Conflict("an export job with this id exists already: retry".into())),
        Err(Error::BadRequest(issues)) => {
            // The store keeps no job records (see `StoreError::Unsupported`).
            let message = issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default();
            settings.output.remove(&id).await?;
            return Err(Error::NotSupported(message));
        }
        Err(e) => {
            settings.output.remove(&id).await?;
            return Err(e);
        }
    }
    engine.export_signal();
    tracing::info!(job = %id, "export kicked off");
    Ok(Response::empty(202).with_header("Content-Location", status_url(request, &id)))
}

/// The types and patients of an export at `level`: every type (system), the types of the
/// Patient compartment (Patient, Group), `_type` within them; the Group's patient members.
async fn scope(
    engine: &Engine,
    gate: &Gate<'_>,
    level: &Level,
    named: Vec<String>,
    patients: Vec<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let defs = Definitions::r4();
    if *level == Level::System {
        let all = if named.is_empty() { defs.resource_types().map(str::to_owned).collect() } else { named };
        return Ok((all, Vec::new()));
    }
    let compartment =
        defs.compartment("Patient").ok_or_else(|| Error::Internal("no Patient compartment definition".into()))?;
    let mut within: Vec<String> =
        compartment.resources().filter(|(_, params)| !params.is_empty()).map(|(t, _)| t.to_owned()).collect();
    if !within.iter().any(|t| t == "Patient") {
        within.insert(0, "Patient".to_owned());
    }
    let types = if named.is_empty() {
        within
    } else {
        if let Some(outside) = named.iter().find(|t| !within.contains(t)) {
            return Err(Error::bad_request(format!("`_type`: `{outside}` is not in the Patient compartment")));
        }
        named
    };
    let Level::Group(group) = level else { return Ok((types, patients)) };
    let members = members(engine, gate, group).await?;
    let chosen: Vec<String> =
        if patients.is_empty() { members } else { members.into_iter().filter(|m| patients.contains(m)).collect() };
    // A Group without (the chosen) patients exports nothing, rather than everything.
    Ok(if chosen.is_empty() { (Vec::new(), Vec::new()) } else { (types, chosen) })
}

/// The patients a Group lists (`member.entity` references to `Patient/[id]`), read as the client
/// reads the Group (hidden or missing: 404).
async fn members(engine: &Engine, gate: &Gate<'_>, id: &str) -> Result<Vec<String>> {
    let missing = || Error::NotFound(format!("resource `Group/{id}` not found"));
    let reader = gate.other(Target::new(Interaction::Read, "Group", id)).map_err(|_| missing())?;
    let version = engine.store.read("Group", id).await?.filter(|v| !v.is_deleted()).ok_or_else(missing)?;
    reader.check_outgoing(engine, &version, missing).await?;
    let group: Value = serde_json::from_str(version.json.as_deref().unwrap_or("{}"))
        .map_err(|e| Error::Internal(format!("stored `Group/{id}` is not JSON: {e}")))?;
    let mut patients = Vec::new();
    for member in group.get("member").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let reference = member.pointer("/entity/reference").and_then(Value::as_str).unwrap_or_default();
        if let Some(patient) = reference.strip_prefix("Patient/") {
            if crate::resource::is_valid_id(patient) && !patients.iter().any(|p| p == patient) {
                patients.push(patient.to_owned());
            }
        }
    }
    // The job's record lists them and is rewritten at each checkpoint: keep it small.
    if patients.len() > MAX_PATIENTS * 10 {
        return Err(Error::bad_request(format!("`Group/{id}` has more patients than one export takes")));
    }
    Ok(patients)
}

fn status_url(request: &Request, id: &str) -> String {
    request.url(&format!("$export-status?_job={id}"))
}

fn file_url(request: &Request, id: &str, file: &str) -> String {
    request.url(&format!("$export-file?_job={id}&_file={file}"))
}

/// The job `_job` names, if it is the client's; every other case (no such job, a malformed id,
/// another client's job) is the same 404.
async fn owned(engine: &Engine, gate: &Gate<'_>, request: &Request) -> Result<Stored> {
    let id = request.param("_job").unwrap_or_default();
    let missing = || Error::NotFound(format!("no export job `{id}`"));
    if !crate::bulk::worker::is_job_id(id) {
        return Err(missing());
    }
    match Stored::load(engine.store.as_ref(), id).await {
        Ok(Some(stored)) if stored.job.owner == gate.owner() => Ok(stored),
        Ok(_) => Err(missing()),
        Err(Error::BadRequest(_)) => Err(missing()),
        Err(e) => Err(e),
    }
}

/// `$export-status`: `GET` polls, `DELETE` cancels.
pub(crate) async fn status(engine: &Engine, gate: &Gate<'_>, request: &Request) -> Result<Response> {
    let settings = engine.config.export.as_ref().ok_or_else(|| Error::NotFound("no export jobs here".into()))?;
    let stored = owned(engine, gate, request).await?;
    match request.method {
        Method::Delete => {
            engine.store.delete_job(&stored.id).await?;
            settings.output.remove(&stored.id).await?;
            tracing::info!(job = %stored.id, "export cancelled");
            Ok(Response::empty(202))
        }
        Method::Get | Method::Head => poll(request, &settings.output, &stored),
        _ => Err(Error::MethodNotAllowed("the export status URL takes `GET` and `DELETE`".into())),
    }
}

fn poll(request: &Request, output: &Location, stored: &Stored) -> Result<Response> {
    let job = &stored.job;
    match &job.state {
        State::Running => {
            let progress = format!(
                "part {} of {}, {} resources exported",
                job.cursor.part.min(job.parts()),
                job.parts(),
                job.exported()
            );
            Ok(Response::empty(202).with_header("X-Progress", progress).with_header("Retry-After", RETRY_AFTER))
        }
        State::Failed(message) => Err(Error::Internal(format!("the export failed: {message}"))),
        State::Done => {
            // Blob output: the client reads the blobs with its own Azure credential, not this
            // server's token (Microsoft's FHIR service answers the same).
            let url =
                |file: &str| output.public_url(&stored.id, file).unwrap_or_else(|| file_url(request, &stored.id, file));
            let entries = |list: &[Output]| -> Vec<Value> {
                list.iter().map(|o| json!({"type": o.resource_type, "url": url(&o.file), "count": o.count})).collect()
            };
            let manifest = json!({
                "transactionTime": job.transaction_time,
                "request": job.request,
                "requiresAccessToken": matches!(output, Location::Dir(_)),
                "output": entries(&job.outputs),
                "error": entries(&job.errors),
            });
            let mut response = Response::rendered(200, "application/json", manifest.to_string().into_bytes());
            if let Some(expires) = job.expires.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok()) {
                response = response.with_header("Expires", crate::resource::format_http_date(expires));
            }
            Ok(response)
        }
    }
}

/// `$export-file`: one file of a finished job of the client's.
pub(crate) async fn file(engine: &Engine, gate: &Gate<'_>, request: &Request) -> Result<Response> {
    let settings = engine.config.export.as_ref().ok_or_else(|| Error::NotFound("no export files here".into()))?;
    if !matches!(request.method, Method::Get | Method::Head) {
        return Err(Error::MethodNotAllowed("export files are read with `GET`".into()));
    }
    let stored = owned(engine, gate, request).await?;
    let name = request.param("_file").unwrap_or_default();
    let output = match stored.job.state {
        State::Done => stored.job.outputs.iter().chain(&stored.job.errors).find(|o| o.file == name),
        _ => None,
    };
    let output = output.ok_or_else(|| Error::NotFound(format!("no file `{name}` in export job `{}`", stored.id)))?;
    settings.output.ndjson(&stored.id, &output.file, output.bytes).await
}
