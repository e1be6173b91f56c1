//! `$viewdefinition-run` (SQL on FHIR v2, <https://sql-on-fhir.org/ig/OperationDefinition-ViewDefinitionRun.html>):
//! runs a ViewDefinition over the store's resources (or over resources sent with the request)
//! and answers the rows as CSV, NDJSON, JSON or Parquet (`_format`).
//!
//! - `POST [base]/$viewdefinition-run` with a Parameters body: `viewResource` (the view inline)
//!   or `viewReference` (`Binary/[id]`), `_format`, `header`, `_limit`, `_since`, `patient`
//!   (only that patient's compartment), `resource` (these instead of the store's); `group` and
//!   `source` are refused as not supported;
//!   `GET [base]/$viewdefinition-run?viewReference=Binary/[id]&_format=csv` likewise.
//! - `GET|POST [base]/Binary/[id]/$viewdefinition-run`: the view stored in that Binary.
//!
//! ViewDefinition is no R4 resource type, so a stored view is a `Binary` whose `data` is the
//! ViewDefinition's JSON; it is read as a `read` of that Binary by the same client would be.
//!
//! Who sees what: the rows come from the resources a search of the view's type by the same
//! client would show. The operation itself is decided first (the dispatch's gate), then the
//! search of the view's type at type level, then every resource of every page on its data, as
//! a search decides its matches; nothing a search hides reaches a row. Resources are read from
//! the store a chunk at a time (the search's own continuation), so memory holds one chunk and the
//! output; the output is capped at `view_max_rows` rows (or `_limit`), and the whole run at the
//! search timeout. Every FHIRPath of one resource spends the request's FHIRPath budget.

use std::io::Write;
use std::time::Instant;

use serde_json::Value;

use super::gate::Gate;
use super::{Engine, Method, Request, Response};
use crate::access::{Access, Interaction, Phase, Target};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::fhirpath::Budget;
use crate::outcome::{Issue, IssueType};
use crate::search::query;
use crate::views::View;
use crate::views::output::{Format, Sink};

/// The operation's name, without `$`.
pub(crate) const NAME: &str = "viewdefinition-run";

/// Resources read from the store per chunk.
const CHUNK: u32 = 500;

/// The operation's entry in the CapabilityStatement (`rest.operation`).
pub(super) fn capability() -> Value {
    serde_json::json!({
        "name": NAME,
        "definition": "http://sql-on-fhir.org/OperationDefinition/$viewdefinition-run",
        "documentation": "SQL on FHIR v2 views: `viewResource` inline or `viewReference` to a `Binary` holding the \
                          ViewDefinition's JSON; `_format` csv, ndjson, json or parquet. Rows come only from resources \
                          a search by the same client would show."
    })
}

/// Whether `request` runs this operation (its `_format` is the rows' format, not the FHIR one).
pub(crate) fn is_run(request: &Request) -> bool {
    request.path.trim_end_matches('/').rsplit('/').next() == Some(&format!("${NAME}"))
}

/// The operation's inputs, from the query string and the Parameters body.
#[derive(Default)]
struct Inputs {
    view: Option<Value>,
    reference: Option<String>,
    format: Option<String>,
    header: Option<bool>,
    limit: Option<u64>,
    since: Option<String>,
    /// `Patient/[id]`: only resources in that patient's compartment.
    patient: Option<String>,
    resources: Option<Vec<Value>>,
}

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Response> {
    let inputs = inputs(request)?;
    let reference = match (resource_type, id) {
        (Some("Binary"), Some(id)) => Some(format!("Binary/{id}")),
        (None, None) => inputs.reference.clone(),
        _ => {
            return Err(Error::NotFound(format!(
                "`${NAME}` runs at `[base]/${NAME}` or on a stored view, `Binary/[id]/${NAME}`"
            )));
        }
    };
    let definition = match (&inputs.view, reference) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request("give either `viewResource` or `viewReference`, not both"));
        }
        (Some(view), None) => view.clone(),
        (None, Some(reference)) => stored_view(engine, gate, &reference).await?,
        (None, None) => return Err(Error::bad_request(format!("`${NAME}` needs `viewResource` or `viewReference`"))),
    };
    let view = View::parse(&definition)?;
    let format = format(request, &inputs)?;
    let cap = engine.config.view_max_rows;
    let limit = inputs.limit.map_or(cap, |l| l.min(cap));
    let budget = Budget::from(&engine.config);
    let mut sink = Sink::new(format, view.columns(), Vec::new())?;
    let complete = match &inputs.resources {
        Some(resources) => {
            let deadline = Instant::now() + engine.config.search_timeout;
            let mut complete = true;
            for resource in resources {
                if Instant::now() > deadline {
                    return Err(Error::Timeout("the view did not finish within the search timeout".into()));
                }
                if !emit(&view, resource, budget, &mut sink, limit)? {
                    complete = false;
                    break;
                }
            }
            complete
        }
        None => {
            // Checked between resources too: evaluating a page does not wait on the store.
            let within = engine.config.search_timeout;
            let deadline = Instant::now() + within;
            let source = Source { since: inputs.since.as_deref(), patient: inputs.patient.as_deref() };
            let run = from_store(engine, gate, &view, source, (budget, Some(deadline)), &mut sink, limit);
            match tokio::time::timeout(within, run).await {
                Ok(Err(Error::Timeout(_))) | Err(_) => {
                    return Err(Error::Timeout(format!(
                        "the view did not finish within {} s: narrow it with `_since` or `_limit`, or export it \
                         with `fhirgate views export`",
                        within.as_secs_f32()
                    )));
                }
                Ok(result) => result?,
            }
        }
    };
    if !complete && inputs.limit.is_none_or(|l| l > cap) {
        return Err(Error::Unprocessable(vec![Issue::error(
            IssueType::TooCostly,
            format!(
                "the view gives more than {cap} rows (`view_max_rows`): ask for fewer with `_limit`, or export it with \
                 `fhirgate views export`"
            ),
        )]));
    }
    let body = sink.finish()?;
    Ok(Response::rendered(200, format.content_type(), body))
}

impl Engine {
    /// Writes the rows of `view` over every resource of its type that `access` may search, as
    /// `$viewdefinition-run` does but without a row cap or timeout: the bulk form (`fhirgate
    /// views export`, one Parquet file per view). Memory holds one chunk of resources and what
    /// `sink` buffers.
    pub async fn export_view<W: Write + Send>(
        &self,
        access: &dyn Access,
        view: &View,
        sink: &mut Sink<W>,
    ) -> Result<()> {
        let gate = Gate::open(access, Target::new(Interaction::SearchType, &view.resource, ""))?;
        let source = Source::default();
        from_store(self, &gate, view, source, (Budget::from(&self.config), None), sink, u64::MAX).await.map(|_| ())
    }
}

/// Which of the store's resources a run reads.
#[derive(Default)]
struct Source<'a> {
    /// Only those changed after this instant (`_lastUpdated=gt`).
    since: Option<&'a str>,
    /// Only those in this patient's compartment (`Patient/[id]`).
    patient: Option<&'a str>,
}

/// Runs the view on the store's resources of its type that the client may see; `false` when the
/// row limit was reached first.
async fn from_store<W: Write + Send>(
    engine: &Engine,
    gate: &Gate<'_>,
    view: &View,
    source: Source<'_>,
    (budget, deadline): (Budget, Option<Instant>),
    sink: &mut Sink<W>,
    limit: u64,
) -> Result<bool> {
    // The same decisions as `GET [view.resource]` by this client.
    let search = gate.other(Target::new(Interaction::SearchType, &view.resource, ""))?;
    let mut params = Vec::new();
    if let Some(since) = source.since {
        params.push(("_lastUpdated".to_owned(), format!("gt{since}")));
    }
    let limits = query::Limits::from(&engine.config);
    let defs = Definitions::r4();
    let mut query = query::parse_within(defs, Some(&view.resource), &params, true, &limits)?.query;
    if let Some(patient) = source.patient {
        let id = patient
            .strip_prefix("Patient/")
            .filter(|id| crate::resource::is_valid_id(id))
            .ok_or_else(|| Error::bad_request(format!("`patient` `{patient}` is not `Patient/[id]`")))?;
        query.compartment = Some(super::search::compartment(defs, "Patient", id, |t| t == view.resource)?);
    }
    loop {
        let mut matches = engine.store.search(&query, CHUNK + 1).await?;
        let more = matches.len() > CHUNK as usize;
        matches.truncate(CHUNK as usize);
        let versions = engine.store.vread_many(&matches).await?;
        let resources: Vec<Value> =
            versions.iter().filter_map(|v| serde_json::from_str(v.json.as_deref()?).ok()).collect();
        search.load_consents(engine, &resources.iter().collect::<Vec<_>>()).await?;
        for resource in resources.iter().filter(|r| search.allows(r, Phase::Outgoing)) {
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(Error::Timeout("the view ran out of time".into()));
            }
            if !emit(view, resource, budget, sink, limit)? {
                return Ok(false);
            }
        }
        match matches.last().filter(|_| more) {
            Some(last) => query.after = Some((last.resource_type.clone(), last.id.clone())),
            None => return Ok(true),
        }
    }
}

/// Writes the rows of one resource; `false` when the limit is reached.
fn emit<W: Write + Send>(
    view: &View,
    resource: &Value,
    budget: Budget,
    sink: &mut Sink<W>,
    limit: u64,
) -> Result<bool> {
    for row in view.rows(resource, budget)? {
        if sink.rows() >= limit {
            return Ok(false);
        }
        sink.push(&row)?;
    }
    Ok(true)
}

/// The ViewDefinition stored in `Binary/[id]`, read as a `read` of it by this client would be.
async fn stored_view(engine: &Engine, gate: &Gate<'_>, reference: &str) -> Result<Value> {
    let id = reference
        .trim_start_matches('/')
        .strip_prefix("Binary/")
        .filter(|id| crate::resource::is_valid_id(id))
        .ok_or_else(|| Error::bad_request(format!("`viewReference` `{reference}` is not `Binary/[id]`")))?;
    let reader = gate.other(Target::new(Interaction::Read, "Binary", id)).map_err(|e| match e {
        Error::Forbidden(_) | Error::NotFound(_) => super::read::not_found("Binary", id),
        other => other,
    })?;
    let current = engine.store.read("Binary", id).await?;
    if let Some(current) = &current {
        reader.check_outgoing(engine, current, || super::read::not_found("Binary", id)).await?;
    }
    let version = super::read::live_version(current, "Binary", id)?;
    let binary: Value = serde_json::from_str(version.json.as_deref().unwrap_or("null"))
        .map_err(|e| Error::Internal(format!("stored `Binary/{id}` is not JSON: {e}")))?;
    let data = binary.get("data").and_then(Value::as_str).unwrap_or_default();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
        .map_err(|_| Error::bad_request(format!("`Binary/{id}` holds no base64 `data`")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("`Binary/{id}` does not hold a ViewDefinition's JSON: {e}")))
}

/// The output format: `_format` (query or parameter), else `Accept`, else NDJSON (the default
/// of the operation's definition).
fn format(request: &Request, inputs: &Inputs) -> Result<Format> {
    let header = inputs.header.unwrap_or(true);
    if let Some(code) = &inputs.format {
        return Format::parse(code, header);
    }
    let accept = request.headers.accept.as_deref().unwrap_or_default();
    for range in accept.split(',') {
        if let Ok(format) = Format::parse(range, header) {
            return Ok(format);
        }
    }
    Ok(Format::Ndjson)
}

/// The inputs from the query string, then the Parameters body (which wins).
fn inputs(request: &Request) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for (name, value) in &request.query {
        match name.as_str() {
            "_format" => inputs.format = Some(value.clone()),
            "header" => inputs.header = Some(boolean(value)?),
            "_limit" => inputs.limit = Some(limit(value)?),
            "_since" => inputs.since = Some(value.clone()),
            "viewReference" => inputs.reference = Some(value.clone()),
            "patient" => inputs.patient = Some(value.clone()),
            "group" | "source" => return Err(unsupported(name)),
            _ => {}
        }
    }
    if request.method != Method::Post || request.body.is_empty() {
        return Ok(inputs);
    }
    crate::format::check_body_content_type(request.headers.content_type.as_deref())?;
    let body: Value =
        serde_json::from_slice(&request.body).map_err(|e| Error::bad_request(format!("the body is not JSON: {e}")))?;
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::bad_request(format!("`${NAME}` takes a `Parameters` body")));
    }
    for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let text = || {
            ["valueCode", "valueString", "valueInstant", "valueDateTime", "valueUri"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
                .ok_or_else(|| Error::bad_request(format!("the parameter `{name}` has no usable value")))
        };
        match name {
            "viewResource" => inputs.view = Some(p.get("resource").cloned().ok_or_else(|| missing(name))?),
            "viewReference" => {
                let reference = p.pointer("/valueReference/reference").and_then(Value::as_str);
                inputs.reference = Some(reference.ok_or_else(|| missing(name))?.to_owned());
            }
            "_format" => inputs.format = Some(text()?),
            "header" => {
                inputs.header = Some(p.get("valueBoolean").and_then(Value::as_bool).ok_or_else(|| missing(name))?)
            }
            "_limit" => {
                let n = p.get("valueInteger").and_then(Value::as_u64).filter(|n| *n > 0);
                inputs.limit = Some(n.ok_or_else(|| Error::bad_request("`_limit` is a positive integer"))?);
            }
            "_since" => inputs.since = Some(text()?),
            "patient" => {
                let reference = p.pointer("/valueReference/reference").and_then(Value::as_str);
                inputs.patient = Some(reference.ok_or_else(|| missing(name))?.to_owned());
            }
            "resource" => {
                let resource = p.get("resource").cloned().ok_or_else(|| missing(name))?;
                inputs.resources.get_or_insert_with(Vec::new).push(resource);
            }
            "group" | "source" => return Err(unsupported(name)),
            other => return Err(Error::bad_request(format!("`${NAME}` has no parameter `{other}`"))),
        }
    }
    Ok(inputs)
}

fn boolean(value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::bad_request(format!("`header={value}` is not `true` or `false`"))),
    }
}

fn limit(value: &str) -> Result<u64> {
    value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::bad_request(format!("`_limit={value}` is not a positive integer")))
}

fn missing(name: &str) -> Error {
    Error::bad_request(format!("the parameter `{name}` has no value of the expected type"))
}

fn unsupported(name: &str) -> Error {
    Error::BadRequest(vec![Issue::error(
        IssueType::NotSupported,
        format!("the `{name}` parameter of `${NAME}` is not supported by this server"),
    )])
}
