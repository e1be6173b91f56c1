//! transaction: all or nothing (http.html#transaction, bundle.html#transaction).
//!
//! Entries are planned in the order the spec gives (DELETE, POST, PUT, then GET): each write's
//! target is decided (new ids for creates, conditional URLs and `ifNoneExist` resolved), every
//! reference to another entry's `fullUrl` or a conditional reference is rewritten to the
//! resource it names, versions and `ifMatch` are checked, and all writes go to the store as one
//! atomic batch, with the guards of conditional creates. If another writer gets in between
//! (a version conflict, a guard that now matches), the whole plan is made again, a few times.
//! Reads run after the commit, so they see it. Any failure fails the transaction with an
//! OperationOutcome naming the entry, and nothing of it is stored.
//!
//! Every entry's interaction is decided at type level before anything is planned; then each
//! write on its data like the request it stands for: the resource as it will be stored
//! (references rewritten), the stored version it replaces or deletes, a patch's result.
//! Conditional urls, `ifNoneExist` and conditional references match only what the client may
//! read ([`Criteria::matches`]).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::batch::dispatch;
use super::references;
use super::{Entry, response_entry};
use crate::access::{Access, Target as Asked};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::conditional::Criteria;
use crate::interaction::gate::Gate;
use crate::interaction::route::{logical_id, resource_type};
use crate::interaction::write::{conflict_backoff, prepare, respond};
use crate::interaction::{Engine, Method, Request, Response, read};
use crate::patch::Patch;
use crate::resource::{etag, format_instant, parse_etag, without_server_meta};
use crate::storage::{Guard, ResourceVersion, StoreError, Write, WriteKind};
use crate::validation::validate;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;

/// How often a transaction is planned again after losing a race with another writer.
const ATTEMPTS: u32 = 5;

pub(super) async fn run(
    engine: &Engine,
    access: &dyn Access,
    request: &Request,
    entries: Vec<Entry>,
) -> Result<Response> {
    let mut gates = Vec::with_capacity(entries.len());
    for entry in &entries {
        let mut named = Request::new(entry.method.clone(), &entry.path, &request.base_url);
        named.query.clone_from(&entry.query);
        let asked = Asked::of(&named).map_err(|e| e.context(&entry.label()))?;
        let gate = Gate::open(access, asked)
            .map_err(|e| e.context(&format!("{}; nothing of the transaction ran", entry.label())))?;
        gates.push(gate);
    }
    for entry in &entries {
        entry.validate()?;
    }
    let mut attempt = 0;
    loop {
        match attempt_once(engine, access, &gates, request, &entries).await {
            Err(Attempt::Raced(_)) if attempt + 1 < ATTEMPTS => {
                conflict_backoff(attempt).await;
                attempt += 1;
            }
            Err(Attempt::Raced(e) | Attempt::Failed(e)) => return Err(e),
            Ok(response) => return Ok(response),
        }
    }
}

/// Why an attempt did not commit.
enum Attempt {
    /// Another writer got in between: planning again may succeed.
    Raced(Error),
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// What an entry does, once planned.
#[derive(Debug, Clone)]
enum Target {
    /// Write `Type/id` (create, update or delete).
    Write { resource_type: String, id: String, kind: WriteKind },
    /// Patch `Type/id` (an update whose content is the patched current version).
    Patch { resource_type: String, id: String },
    /// Nothing to write: `ifNoneExist` found its match (200), or a delete found nothing (204).
    Nothing { existing: Option<(String, String)> },
    /// A read, run after the commit.
    Read,
}

/// The rank of a method in the processing order.
fn rank(method: &Method) -> u8 {
    match method {
        Method::Delete => 0,
        Method::Post => 1,
        Method::Put | Method::Patch => 2,
        _ => 3,
    }
}

async fn attempt_once(
    engine: &Engine,
    access: &dyn Access,
    gates: &[Gate<'_>],
    request: &Request,
    entries: &[Entry],
) -> Result<Response, Attempt> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| rank(&entries[i].method));

    // 1. Targets and ids.
    let mut targets: Vec<Target> = vec![Target::Read; entries.len()];
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut written: HashSet<(String, String)> = HashSet::new();
    let mut guards: Vec<Guard> = Vec::new();
    for &i in &order {
        let entry = &entries[i];
        let target = plan(engine, &gates[i], entry, &mut guards).await.map_err(|e| e.context(&entry.label()))?;
        let named = match &target {
            Target::Write { resource_type, id, .. } | Target::Patch { resource_type, id } => {
                if !written.insert((resource_type.clone(), id.clone())) {
                    let message =
                        format!("`{resource_type}/{id}` is written by more than one entry of the transaction");
                    return Err(Error::bad_request(message).context(&entry.label()).into());
                }
                Some(format!("{resource_type}/{id}"))
            }
            Target::Nothing { existing: Some((t, id)) } => Some(format!("{t}/{id}")),
            _ => None,
        };
        if let (Some(full_url), Some(named)) = (&entry.full_url, named) {
            ids.insert(full_url.clone(), named);
        }
        targets[i] = target;
    }

    // 2. References to other entries and conditional references.
    let mut replacements = ids.clone();
    for &i in &order {
        let (entry, Target::Write { kind: WriteKind::Create | WriteKind::Update, .. }) = (&entries[i], &targets[i])
        else {
            continue;
        };
        let Some(resource) = &entry.resource else { continue };
        for reference in references::collect(resource) {
            if replacements.contains_key(&reference) {
                continue;
            }
            if references::is_urn(&reference) {
                let message = format!("reference `{reference}` names no entry's fullUrl in this transaction");
                return Err(Error::bad_request(message).context(&entry.label()).into());
            }
            if let Some((resource_type, criteria)) = references::conditional(&reference) {
                let resolved = resolve_reference(engine, &gates[i], resource_type, criteria).await;
                let resolved = resolved.map_err(|e| e.context(&entry.label()))?;
                replacements.insert(reference, resolved);
            }
        }
    }

    // 3. The writes.
    let mut writes: Vec<(usize, Write)> = Vec::new();
    let mut responses: Vec<Option<Response>> = vec![None; entries.len()];
    for &i in &order {
        let entry = &entries[i];
        let outcome = write(engine, &gates[i], request, entry, &targets[i], &replacements).await;
        match outcome.map_err(|e| e.context(&entry.label()))? {
            Planned::Write(w, status) => {
                responses[i] = Some(Response::empty(status));
                writes.push((i, *w));
            }
            Planned::Respond(r) => responses[i] = Some(r),
            Planned::Later => {}
        }
    }
    let stored: Vec<ResourceVersion> = writes.iter().map(|(_, w)| w.version.clone()).collect();
    let writers: Vec<usize> = writes.iter().map(|(i, _)| *i).collect();
    match engine.store.transact_guarded(writes.into_iter().map(|(_, w)| w).collect(), &guards).await {
        Ok(()) => {
            writers.iter().zip(&stored).for_each(|(&i, version)| gates[i].written(version));
            for version in &stored {
                crate::interaction::validate::written(engine, version).await;
            }
        }
        Err(e @ (StoreError::VersionConflict { .. } | StoreError::GuardMatched(_))) => {
            return Err(Attempt::Raced(Error::Conflict(format!(
                "the transaction kept losing races with other writers ({e}); nothing was stored, retry"
            ))));
        }
        Err(e) => return Err(Error::from(e).into()),
    }

    // 4. Responses, reads last.
    let mut versions = stored.into_iter();
    let mut out = Vec::with_capacity(entries.len());
    for &i in &order {
        let entry = &entries[i];
        let response = match responses[i].take() {
            Some(placeholder) if matches!(targets[i], Target::Write { .. } | Target::Patch { .. }) => {
                let version = versions.next().ok_or_else(|| Error::Internal("a planned write went missing".into()))?;
                written_response(&entry.head(request), &version, placeholder.status)?
            }
            Some(response) => response,
            None => dispatch(engine, access, &entry.request(request)).await.unwrap_or_else(|e| {
                let e = e.context(&entry.label());
                Response::json(e.status(), e.outcome_json())
            }),
        };
        out.push((i, response_entry(&response, entry_full_url(entry, &response))));
    }
    out.sort_by_key(|(i, _)| *i);
    let bundle = json!({
        "resourceType": "Bundle",
        "id": (engine.config.ids)(),
        "meta": { "lastUpdated": format_instant(engine.now()) },
        "type": "transaction-response",
        "entry": out.into_iter().map(|(_, e)| e).collect::<Vec<Value>>(),
    });
    Ok(Response::json(200, bundle))
}

/// Decides what `entry` writes (and its id), adding the guards of conditional creates.
async fn plan(engine: &Engine, gate: &Gate<'_>, entry: &Entry, guards: &mut Vec<Guard>) -> Result<Target> {
    let segments: Vec<&str> = entry.path.split('/').filter(|s| !s.is_empty()).collect();
    let conditional = !entry.query.is_empty();
    match (&entry.method, segments.as_slice()) {
        (Method::Get | Method::Head, _) => Ok(Target::Read),
        (Method::Post, [t]) => {
            let resource_type = resource_type_of(entry, t)?;
            if let Some(criteria) = &entry.if_none_exist {
                let criteria = Criteria::parse(engine, &resource_type, criteria)?;
                let found = criteria.matches(engine, gate, 2).await?;
                match found.visible.as_slice() {
                    [] => guards.extend(found.guards(&criteria)),
                    [one] => return Ok(Target::Nothing { existing: Some((resource_type, one.id.clone())) }),
                    _ => return Err(criteria.ambiguous("nothing was created")),
                }
            }
            Ok(Target::Write { resource_type, id: (engine.config.ids)(), kind: WriteKind::Create })
        }
        (Method::Put, [t]) if conditional => {
            let resource_type = resource_type_of(entry, t)?;
            let criteria = Criteria::from_params(engine, &resource_type, &entry.query)?;
            let body_id = entry.resource.as_ref().and_then(|r| r.get("id")).and_then(Value::as_str).map(str::to_owned);
            let found = criteria.matches(engine, gate, 2).await?;
            let id = match found.visible.as_slice() {
                [] => {
                    guards.extend(found.guards(&criteria));
                    body_id.unwrap_or_else(|| (engine.config.ids)())
                }
                [one] => one.id.clone(),
                _ => return Err(criteria.ambiguous("nothing was updated")),
            };
            Ok(Target::Write { resource_type, id, kind: WriteKind::Update })
        }
        (Method::Put, [t, id]) => {
            let resource_type = resource_type_of(entry, t)?;
            Ok(Target::Write { resource_type, id: logical_id(id)?, kind: WriteKind::Update })
        }
        (Method::Delete, [t]) if conditional => {
            let criteria = Criteria::from_params(engine, t, &entry.query)?;
            match criteria.matches(engine, gate, 2).await?.visible.as_slice() {
                [] => Ok(Target::Nothing { existing: None }),
                [one] => {
                    Ok(Target::Write { resource_type: (*t).to_owned(), id: one.id.clone(), kind: WriteKind::Delete })
                }
                _ => Err(criteria.ambiguous("nothing was deleted")),
            }
        }
        (Method::Delete, [t, id]) => {
            Ok(Target::Write { resource_type: resource_type(t)?, id: logical_id(id)?, kind: WriteKind::Delete })
        }
        (Method::Patch, [t, id]) => Ok(Target::Patch { resource_type: resource_type(t)?, id: logical_id(id)? }),
        (Method::Patch, [t]) if conditional => {
            let criteria = Criteria::from_params(engine, t, &entry.query)?;
            match criteria.matches(engine, gate, 2).await?.visible.as_slice() {
                [one] => Ok(Target::Patch { resource_type: (*t).to_owned(), id: one.id.clone() }),
                [] => Err(Error::NotFound(format!("`{}` matches no resource to patch", criteria.text))),
                _ => Err(criteria.ambiguous("nothing was patched")),
            }
        }
        (method, _) => {
            Err(Error::bad_request(format!("`{} {}` is not a transaction interaction", method.as_str(), entry.url)))
        }
    }
}

/// What planning an entry's write produced.
enum Planned {
    /// A version to store, and the status its entry answers with.
    Write(Box<Write>, u16),
    /// The entry's response, with nothing to store.
    Respond(Response),
    /// A read: answered after the commit.
    Later,
}

/// The write of one planned entry (its resource with references rewritten), after checking the
/// current version against `ifMatch`.
async fn write(
    engine: &Engine,
    gate: &Gate<'_>,
    outer: &Request,
    entry: &Entry,
    target: &Target,
    replacements: &HashMap<String, String>,
) -> Result<Planned> {
    let (resource_type, id, kind) = match target {
        Target::Read => return Ok(Planned::Later),
        Target::Patch { resource_type, id } => {
            return patched(engine, gate, entry, resource_type, id, replacements).await;
        }
        Target::Nothing { existing: None } => return Ok(Planned::Respond(Response::empty(204))),
        Target::Nothing { existing: Some((t, id)) } => {
            let current = read::live_version(engine.store.read(t, id).await?, t, id)?;
            return Ok(Planned::Respond(read::representation(&entry.head(outer), &current, 200)?));
        }
        Target::Write { resource_type, id, kind } => (resource_type, id, *kind),
    };
    // A create's id is new (the server assigned it): nothing to read. Were it taken, the store's
    // version check would refuse the batch.
    let current = match kind {
        WriteKind::Create => None,
        _ => engine.store.read(resource_type, id).await?,
    };
    let live = current.as_ref().filter(|c| !c.is_deleted());
    if let Some(live) = live {
        gate.check_stored(engine, live).await?;
    }
    if let Some(tag) = &entry.if_match {
        let expected = parse_etag(tag).ok_or_else(|| Error::bad_request(format!("invalid `ifMatch` `{tag}`")))?;
        if live.map(|c| c.version) != Some(expected) {
            return Err(Error::PreconditionFailed(format!(
                "`ifMatch` version {expected} is not the current version of `{resource_type}/{id}`"
            )));
        }
    }
    let next = current.as_ref().map_or(1, |c| c.version + 1);
    if kind == WriteKind::Delete {
        if live.is_none() {
            return Ok(Planned::Respond(Response::empty(204)));
        }
        return Ok(Planned::Write(Box::new(prepare(engine, resource_type, id, next, kind, None)?), 204));
    }
    let mut resource: Map<String, Value> = entry.resource.clone().unwrap_or_default();
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if kind == WriteKind::Update && body_id != id => {
            return Err(Error::bad_request(format!("the resource's id `{body_id}` is not `{id}` of its url")));
        }
        _ => {}
    }
    resource.insert("id".into(), Value::String(id.clone()));
    references::rewrite(&mut resource, replacements);
    gate.check_incoming_loaded(engine, &resource).await?;
    if kind == WriteKind::Update {
        if current.is_none() && !engine.config.update_create {
            return Err(Error::MethodNotAllowed(format!(
                "`{resource_type}/{id}` does not exist and cannot be created by PUT"
            )));
        }
        if let Some(live) = live.filter(|_| !engine.config.version_unchanged_updates) {
            let unchanged =
                live.json.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()).is_some_and(|stored| {
                    stored.as_object().is_some_and(|s| without_server_meta(s) == without_server_meta(&resource))
                });
            if unchanged {
                return Ok(Planned::Respond(respond(&entry.head(outer), live, 200)?));
            }
        }
    }
    let status = if live.is_some() { 200 } else { 201 };
    crate::interaction::validate::enforce(engine, &resource).await?;
    Ok(Planned::Write(Box::new(prepare(engine, resource_type, id, next, kind, Some(&mut resource))?), status))
}

/// The write of a PATCH entry: its patch applied to the current version, then references
/// rewritten and the result validated.
async fn patched(
    engine: &Engine,
    gate: &Gate<'_>,
    entry: &Entry,
    resource_type: &str,
    id: &str,
    replacements: &HashMap<String, String>,
) -> Result<Planned> {
    let current = read::live_version(engine.store.read(resource_type, id).await?, resource_type, id)?;
    gate.check_stored(engine, &current).await?;
    if let Some(tag) = &entry.if_match {
        if parse_etag(tag) != Some(current.version) {
            return Err(Error::PreconditionFailed(format!(
                "`ifMatch` `{tag}` is not the current version of `{resource_type}/{id}`"
            )));
        }
    }
    let patch = entry_patch(entry)?;
    let stored: Value = serde_json::from_str(current.json.as_deref().unwrap_or("{}"))
        .map_err(|e| Error::Internal(format!("stored `{resource_type}/{id}` is not JSON: {e}")))?;
    let Value::Object(mut resource) = patch.apply_within(&stored, crate::fhirpath::Budget::from(&engine.config))?
    else {
        return Err(Error::unprocessable("the patch did not leave a resource"));
    };
    references::rewrite(&mut resource, replacements);
    let issues = validate(Definitions::r4(), &Value::Object(resource.clone()));
    if !issues.is_empty() {
        return Err(Error::Unprocessable(issues));
    }
    gate.check_incoming_loaded(engine, &resource).await?;
    crate::interaction::validate::enforce(engine, &resource).await?;
    let write = prepare(engine, resource_type, id, current.version + 1, WriteKind::Update, Some(&mut resource))?;
    Ok(Planned::Write(Box::new(write), 200))
}

/// A PATCH entry's patch: a `Parameters` resource (FHIRPath Patch) or a `Binary` holding a JSON
/// Patch document (http.html#patch: how a transaction carries one).
fn entry_patch(entry: &Entry) -> Result<Patch> {
    let resource = entry.resource.as_ref().ok_or_else(|| Error::bad_request("a PATCH entry needs a `resource`"))?;
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => Ok(Patch::FhirPath(Value::Object(resource.clone()))),
        Some("Binary") => {
            let content_type = resource.get("contentType").and_then(Value::as_str).unwrap_or_default();
            let data = resource.get("data").and_then(Value::as_str).unwrap_or_default();
            let bytes = BASE64_STANDARD
                .decode(data)
                .map_err(|e| Error::bad_request(format!("the Binary's `data` is not base64: {e}")))?;
            Patch::from_body(content_type, &bytes)
        }
        _ => Err(Error::bad_request(
            "a PATCH entry's resource must be a `Parameters` (FHIRPath Patch) or a `Binary` with a JSON Patch",
        )),
    }
}

/// The response of a stored write.
fn written_response(request: &Request, version: &ResourceVersion, status: u16) -> Result<Response> {
    if version.is_deleted() {
        return Ok(Response::empty(204).with_header("ETag", etag(version.version)));
    }
    respond(request, version, status)
}

/// `fullUrl` of a response entry: the resource's URL on this server.
fn entry_full_url(entry: &Entry, response: &Response) -> Option<String> {
    let location = response.header("Location")?;
    let base = location.split("/_history/").next()?;
    Some(base.to_owned()).filter(|_| entry.method != Method::Delete)
}

/// A conditional reference's one match, as `Type/id`.
async fn resolve_reference(engine: &Engine, gate: &Gate<'_>, resource_type: &str, criteria: &str) -> Result<String> {
    let criteria = Criteria::parse(engine, resource_type, criteria)?;
    match criteria.matches(engine, gate, 2).await?.visible.as_slice() {
        [one] => Ok(format!("{}/{}", one.resource_type, one.id)),
        [] => Err(Error::PreconditionFailed(format!("conditional reference `{}` matches no resource", criteria.text))),
        _ => Err(criteria.ambiguous("a conditional reference must name one")),
    }
}

/// The type of a `POST`/`PUT` url, which the resource must have too.
fn resource_type_of(entry: &Entry, segment: &str) -> Result<String> {
    let resource_type = resource_type(segment)?;
    let body_type = entry.resource.as_ref().and_then(|r| r.get("resourceType")).and_then(Value::as_str);
    if body_type != Some(resource_type.as_str()) {
        return Err(Error::bad_request(format!(
            "the resource is a `{}`, the url names `{resource_type}`",
            body_type.unwrap_or("(no resourceType)")
        )));
    }
    Ok(resource_type)
}
