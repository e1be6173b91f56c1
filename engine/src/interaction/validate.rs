//! `$validate` (<https://hl7.org/fhir/R4/resource-operation-validate.html>) at type and instance
//! level, and the profile checks every write makes.
//!
//! `POST [type]/$validate` and `POST [type]/[id]/$validate` take the resource as the body or as
//! the `resource` parameter of a Parameters body; `GET [type]/[id]/$validate` validates the
//! stored resource. `profile` (query or parameter) adds a profile to check against; `mode` is
//! `create` (the default), `update` (the instance's id must be the resource's) or `delete` (the
//! resource must exist: this server keeps no referential integrity that would refuse a delete).
//! The answer is 200 with the OperationOutcome the write would produce: the base checks, then
//! the profiles (those declared in `meta.profile`, the one its type requires, the one asked),
//! with the targets of references whose elements name target profiles read as the caller may
//! read them and checked against those profiles (a write does not read them).
//!
//! Decided by the policies as a read of the type (`policies::Action::from`); what is read from
//! the store (the instance of `GET`, or the one `mode=delete` names) is decided as a read of it,
//! so a hidden resource is a 404 as for a read.
//!
//! Writes (create, update, patch, conditional ones, transaction entries) call [`enforce`]: a
//! profile the resource declares is enforced when this server knows it (from the packages or a
//! StructureDefinition written through the API); one it does not know is a warning only, as in
//! HAPI's and Microsoft's default. The required profile of a type (`fhir.required_profiles`)
//! always is.

use serde_json::{Map, Value, json};

use super::gate::Gate;
use super::read::{live_version, not_found};
use super::{Engine, Method, Request, Response};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType, OperationOutcome, Severity};
use crate::profiles::registry::base_of;
use crate::search::query;

/// The operation's name (without `$`).
pub(super) const NAME: &str = "validate";

/// Most StructureDefinitions one validation looks up in the store (profiles and their bases).
const MAX_LOOKUPS: usize = 16;

/// The CapabilityStatement's `rest.resource.operation` entry.
pub(super) fn declared() -> Value {
    json!({"name": NAME, "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"})
}

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Response> {
    let Some(resource_type) = resource_type else {
        return Err(Error::bad_request("`$validate` is an operation on a resource type: `POST [type]/$validate`"));
    };
    let body = match request.method {
        Method::Post => Some(body_json(request)?),
        Method::Get | Method::Head => None,
        _ => return Err(Error::bad_request("`$validate` takes `GET` (a stored instance) or `POST`")),
    };
    let parameters = body.as_ref().filter(|b| is_parameters(b, resource_type));
    let mode = parameter_code(parameters, "mode").or_else(|| request.param("mode").map(str::to_owned));
    let profile = parameter_code(parameters, "profile").or_else(|| request.param("profile").map(str::to_owned));
    let mode = mode.as_deref().unwrap_or("create");
    if !matches!(mode, "create" | "update" | "delete") {
        return Err(Error::bad_request(format!("unknown `mode` `{mode}`: expected create, update or delete")));
    }
    if mode == "delete" {
        let Some(id) = id else {
            return Err(Error::bad_request("`mode=delete` needs an instance: `POST [type]/[id]/$validate`"));
        };
        stored(engine, gate, resource_type, id).await?;
        return Ok(outcome(Vec::new()));
    }
    let in_parameters = parameters.is_some();
    let resource = match (body, in_parameters) {
        (Some(body), true) => resource_parameter(&body)?,
        (Some(body), false) => body,
        (None, _) => {
            let Some(id) = id else {
                return Err(Error::bad_request("`GET [type]/$validate` has nothing to validate: POST the resource"));
            };
            stored(engine, gate, resource_type, id).await?
        }
    };
    let mut issues = Vec::new();
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == resource_type => {}
        Some(t) => issues.push(Issue::error(
            IssueType::Invalid,
            format!("resource type `{t}` does not match `{resource_type}` in the URL"),
        )),
        None => {}
    }
    if mode == "update" {
        match (id, resource.get("id").and_then(Value::as_str)) {
            (_, None) => issues.push(Issue::error(IssueType::Required, "an update needs the resource's `id`")),
            (Some(url_id), Some(body_id)) if url_id != body_id => issues.push(Issue::error(
                IssueType::Invalid,
                format!("the resource's id `{body_id}` is not `{url_id}` of the URL"),
            )),
            _ => {}
        }
    }
    issues.extend(crate::validation::validate(Definitions::r4(), &resource));
    issues.extend(crate::validation::check_hyperlinks(&resource));
    let displays = crate::validation::check_displays(Definitions::r4(), &resource);
    if issues.iter().all(|i| i.severity != Severity::Fatal) && resource.is_object() {
        // A display the value set a profile binds gives the code stands, whatever the code
        // system's are.
        let checked = profile_issues(engine, &resource, profile.as_deref(), Some(gate)).await?;
        issues.extend(checked.keep_displays(displays));
        issues.extend(checked.issues);
    } else {
        issues.extend(displays);
    }
    Ok(outcome(issues))
}

/// 200 with the issues, or one saying there are none.
fn outcome(mut issues: Vec<Issue>) -> Response {
    if issues.is_empty() {
        issues.push(Issue::information("no issues found"));
    }
    Response::json(200, OperationOutcome { issues }.to_json())
}

fn body_json(request: &Request) -> Result<Value> {
    crate::format::check_body_content_type(request.headers.content_type.as_deref())?;
    serde_json::from_slice(&request.body).map_err(|e| {
        Error::BadRequest(vec![Issue::error(IssueType::Structure, format!("the body is not valid JSON: {e}"))])
    })
}

/// Whether the body is the operation's Parameters rather than the resource to validate.
fn is_parameters(body: &Value, resource_type: &str) -> bool {
    body.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && (resource_type != "Parameters"
            || body
                .get("parameter")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p.get("name").and_then(Value::as_str) == Some("resource"))))
}

/// A parameter's primitive value (`valueCode`, `valueUri`, `valueCanonical`...).
fn parameter_code(parameters: Option<&Value>, name: &str) -> Option<String> {
    let parameter = parameters?
        .get("parameter")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?;
    parameter.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn resource_parameter(parameters: &Value) -> Result<Value> {
    parameters
        .get("parameter")
        .and_then(Value::as_array)
        .and_then(|ps| ps.iter().find(|p| p.get("name").and_then(Value::as_str) == Some("resource")))
        .and_then(|p| p.get("resource"))
        .cloned()
        .ok_or_else(|| Error::bad_request("the Parameters body has no `resource` parameter to validate"))
}

/// The stored instance, decided as a read of it (hidden or missing: 404).
async fn stored(engine: &Engine, gate: &Gate<'_>, resource_type: &str, id: &str) -> Result<Value> {
    let current = engine.store.read(resource_type, id).await?;
    if let Some(current) = &current {
        gate.check_outgoing(engine, current, || not_found(resource_type, id)).await?;
    }
    let current = live_version(current, resource_type, id)?;
    let json = current.json.as_deref().unwrap_or("{}");
    serde_json::from_str(json).map_err(|e| Error::Internal(format!("stored `{resource_type}/{id}` is not JSON: {e}")))
}

/// The profile checks of a write: an error found is a 422 with every issue.
pub(crate) async fn enforce(engine: &Engine, resource: &Map<String, Value>) -> Result<()> {
    crate::search::custom::check(resource)?;
    let registry = &engine.config.profiles;
    let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let declares = resource.get("meta").and_then(|m| m.get("profile")).is_some();
    if !registry.applies(resource_type, declares) {
        return Ok(());
    }
    let issues = profile_issues(engine, &Value::Object(resource.clone()), None, None).await?.issues;
    if issues.iter().any(|i| matches!(i.severity, Severity::Error | Severity::Fatal)) {
        return Err(Error::Unprocessable(issues));
    }
    Ok(())
}

/// The issues of `resource` against its profiles: declared, required by its type, and `asked`.
/// With the `$validate` request's gate, reference targets are read as the caller may read them
/// and checked against their target profiles ([`super::validate_targets`]); writes do not.
async fn profile_issues(
    engine: &Engine,
    resource: &Value,
    asked: Option<&str>,
    reader: Option<&Gate<'_>>,
) -> Result<crate::profiles::Checked> {
    let registry = &engine.config.profiles;
    let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let mut enforced: Vec<&str> = registry.required(resource_type).into_iter().collect();
    enforced.extend(asked);
    let declared = resource.get("meta").and_then(|m| m.get("profile")).and_then(Value::as_array);
    let urls: Vec<&str> =
        enforced.iter().copied().chain(declared.into_iter().flatten().filter_map(Value::as_str)).collect();
    let stored = stored_definitions(engine, &urls).await?;
    let from_store = !stored.is_empty();
    let conformance = registry.with_stored(stored);
    let checked = match reader {
        Some(gate) => super::validate_targets::validate(engine, gate, &conformance, resource, &enforced).await?,
        None => crate::profiles::validate_checked(&conformance, resource, &enforced, None),
    };
    if from_store {
        registry.keep_generated(&conformance);
    }
    Ok(checked)
}

/// The StructureDefinitions of `urls` (and their bases) that only the store has.
async fn stored_definitions(engine: &Engine, urls: &[&str]) -> Result<Vec<Value>> {
    let registry = &engine.config.profiles;
    let mut queue: Vec<String> = urls.iter().filter(|u| registry.needs_lookup(u)).map(|u| (*u).to_owned()).collect();
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while let Some(url) = queue.pop() {
        if seen.contains(&url) || seen.len() >= MAX_LOOKUPS {
            continue;
        }
        seen.push(url.clone());
        let definition = match registry.cached(&url) {
            Some(cached) => cached.map(|d| (*d).clone()),
            None => {
                let found = lookup(engine, &url).await?;
                registry.remember(&url, found.clone());
                found
            }
        };
        if let Some(definition) = definition {
            if let Some(base) = base_of(&definition).filter(|b| registry.needs_lookup(b)) {
                queue.push(base);
            }
            out.push(definition);
        }
    }
    Ok(out)
}

/// The current StructureDefinition with canonical URL `url` (`url|version` too) in the store.
async fn lookup(engine: &Engine, url: &str) -> Result<Option<Value>> {
    let (bare, version) = match url.split_once('|') {
        Some((u, v)) => (u, Some(v)),
        None => (url, None),
    };
    let mut params = vec![("url".to_owned(), bare.to_owned())];
    if let Some(v) = version {
        params.push(("version".to_owned(), v.to_owned()));
    }
    let limits = query::Limits::from(&engine.config);
    let parsed = query::parse_within(Definitions::r4(), Some("StructureDefinition"), &params, true, &limits)?;
    let matches = engine.store.search(&parsed.query, 1).await?;
    let versions = engine.store.vread_many(&matches).await?;
    Ok(versions.first().and_then(|v| v.json.as_deref()).and_then(|json| serde_json::from_str(json).ok()))
}

/// A StructureDefinition was written: forget the ones read from the store.
pub(crate) async fn written(engine: &Engine, version: &crate::storage::ResourceVersion) {
    if version.resource_type == "StructureDefinition" {
        engine.config.profiles.forget_stored();
    }
    crate::search::custom::written(engine, version).await;
}
