//! Custom search parameters: SearchParameter resources from `fhir.packages` and written through
//! the API join the search definitions of their `base` types (`definitions::custom`).
//!
//! - A write of a SearchParameter is checked first ([`check`]): a known `type` other than
//!   `special`, R4 resource types as `base`, a `code` no R4 parameter of those types has, an
//!   `expression` that parses, has a branch for every base and runs on an empty resource, and no
//!   costly functions. Anything else is a 400 with an OperationOutcome.
//! - Once stored ([`written`]) it is registered *pending*: writes index it at once, searches
//!   treat it as not usable yet (ignored with a warning, 400 under `Prefer: handling=strict`),
//!   and the resources it covers are reindexed (`reindex.rs`: a few hundred before the write
//!   answers, the rest in the background); then it is ready. A deleted or retired SearchParameter stops applying.
//! - On an engine's first request ([`load`]) the packages' SearchParameters and the store's are
//!   registered the same way; a reindex already completed (a store job record) is not redone.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value};

use super::reindex;
use crate::definitions::{Definitions, SearchParam, SearchParamType};
use crate::error::{Error, Result};
use crate::fhirpath::{Budget, Env, evaluate, parse};
use crate::interaction::Engine;
use crate::outcome::{Issue, IssueType};
use crate::search::query::{ResultParams, SearchQuery};
use crate::storage::ResourceVersion;

/// The resource type this module is about.
pub const RESOURCE_TYPE: &str = "SearchParameter";

/// Longest `expression` taken, in bytes.
const MAX_EXPRESSION: usize = 2048;

/// Functions whose cost grows with the whole resource tree, refused in an expression.
const COSTLY: &[&str] = &["descendants(", "repeat(", "trace("];

/// SearchParameters read from the store per page at start.
const LOAD_PAGE: u32 = 200;

/// The definition `resource` gives, checked; the message says what is wrong.
pub fn definition(resource: &Value) -> std::result::Result<SearchParam, String> {
    let param = crate::definitions::search_param_of(resource)?;
    let code = &param.code;
    let well_formed = code.len() <= 64
        && code.starts_with(|c: char| c.is_ascii_alphabetic())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !well_formed {
        return Err(format!(
            "`code` `{code}` is not a search parameter name (a letter, then letters, digits, `-` or `_`; at most 64)"
        ));
    }
    if param.kind == SearchParamType::Special {
        return Err("`type` `special` cannot be defined here: its matching is not an expression".to_owned());
    }
    if param.base.is_empty() {
        return Err("`base` is missing: the resource types the parameter applies to".to_owned());
    }
    let defs = Definitions::r4();
    if let Some(bad) = param.base.iter().find(|b| !defs.is_resource_type(b)) {
        return Err(format!("`base` `{bad}` is not an R4 resource type"));
    }
    let Some(expression) = param.expression.as_deref() else {
        return Err("`expression` is missing: the FHIRPath that extracts the values".to_owned());
    };
    check_expression(expression, &param.base)?;
    for component in &param.component {
        let part = defs
            .search_param_by_url(&component.definition)
            .ok_or_else(|| format!("component `{}` is not a known search parameter", component.definition))?;
        if matches!(part.kind, SearchParamType::Composite | SearchParamType::Special) {
            return Err(format!("component `{}` is a {} parameter", component.definition, part.kind.code()));
        }
        check_expression(&component.expression, &[])?;
    }
    if param.kind == SearchParamType::Composite && param.component.is_empty() {
        return Err("a composite parameter needs `component`s".to_owned());
    }
    defs.check_custom(&param)?;
    Ok(param)
}

/// Whether `expression` may serve as a custom parameter's for each of `base`.
fn check_expression(expression: &str, base: &[String]) -> std::result::Result<(), String> {
    if expression.len() > MAX_EXPRESSION {
        return Err(format!("`expression` is longer than {MAX_EXPRESSION} bytes"));
    }
    if let Some(costly) = COSTLY.iter().find(|f| expression.contains(**f)) {
        return Err(format!("`expression` uses `{}`, too costly to run on every write", costly.trim_end_matches('(')));
    }
    let parsed = parse(expression).map_err(|e| format!("`expression` is not valid FHIRPath: {e}"))?;
    let probe = SearchParam {
        url: String::new(),
        code: String::new(),
        base: base.to_vec(),
        kind: SearchParamType::String,
        expression: Some(expression.to_owned()),
        target: Vec::new(),
        multiple_or: None,
        multiple_and: None,
        modifier: Vec::new(),
        comparator: Vec::new(),
        component: Vec::new(),
    };
    let env = Env::new().with_budget(Budget::CUSTOM_INDEXING);
    for b in base {
        let Some(text) = probe.expression_for(b) else {
            return Err(format!("`expression` has no part that applies to `{b}`"));
        };
        let expr = parse(&text).map_err(|e| format!("`expression` is not valid FHIRPath for `{b}`: {e}"))?;
        evaluate(&expr, &serde_json::json!({ "resourceType": b }), &env)
            .map_err(|e| format!("`expression` fails on a `{b}`: {e}"))?;
    }
    if base.is_empty() {
        evaluate(&parsed, &serde_json::json!({}), &env).map_err(|e| format!("`expression` fails: {e}"))?;
    }
    Ok(())
}

/// The canonical base of the SearchParameters HL7 publishes in FHIR itself (R4's own, its examples and
/// its extensions' parameters).
const PUBLISHED: &str = "http://hl7.org/fhir/SearchParameter/";

/// Whether `resource` is one of the SearchParameters HL7 publishes with FHIR (its `url`): stored
/// like any conformance resource, never checked or put in force (R4's own are in force already;
/// the others are the specification's content, some without an expression).
fn published(resource: &Value) -> bool {
    resource.get("url").and_then(Value::as_str).is_some_and(|url| url.starts_with(PUBLISHED))
}

/// Why a write of `resource` (a SearchParameter) is refused, if it is: one that could not be put
/// in force. Other types, retired parameters and those HL7 publishes are never refused.
pub fn refusal(resource: &Value) -> Option<String> {
    let object = resource.as_object()?;
    if object.get("resourceType").and_then(Value::as_str) != Some(RESOURCE_TYPE)
        || retired(object)
        || published(resource)
    {
        return None;
    }
    definition(resource).err()
}

/// Refuses a SearchParameter write that could not be put in force (400).
pub(crate) fn check(resource: &Map<String, Value>) -> Result<()> {
    match refusal(&Value::Object(resource.clone())) {
        None => Ok(()),
        Some(m) => Err(Error::BadRequest(vec![Issue::error(IssueType::Invalid, m).at(RESOURCE_TYPE)])),
    }
}

fn retired(resource: &Map<String, Value>) -> bool {
    resource.get("status").and_then(Value::as_str) == Some("retired")
}

/// Which SearchParameter resource put which URL in force, so a deletion takes it out.
fn sources() -> &'static Mutex<HashMap<String, String>> {
    static SOURCES: std::sync::OnceLock<Mutex<HashMap<String, String>>> = std::sync::OnceLock::new();
    SOURCES.get_or_init(Mutex::default)
}

/// After a version of a SearchParameter was stored: its definition put in force (pending, and
/// a reindex started) or, deleted or retired, taken out.
pub(crate) async fn written(engine: &Engine, version: &ResourceVersion) {
    if version.resource_type != RESOURCE_TYPE {
        return;
    }
    let defs = Definitions::r4();
    let previous = sources().lock().unwrap_or_else(PoisonError::into_inner).remove(&version.id);
    if let Some(url) = previous {
        defs.unregister_custom(&url);
    }
    let Some(resource) = version.json.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
        return;
    };
    if resource.as_object().is_some_and(retired) {
        return;
    }
    put_in_force(engine, &version.id, &resource).await;
}

/// Registers `resource`'s definition as pending and starts its reindex.
async fn put_in_force(engine: &Engine, id: &str, resource: &Value) {
    let defs = Definitions::r4();
    if published(resource) {
        return;
    }
    let param = match definition(resource) {
        Ok(param) => param,
        Err(message) => {
            tracing::warn!(%id, %message, "SearchParameter not put in force");
            return;
        }
    };
    let url = param.url.clone();
    if let Err(message) = defs.register_custom(param, false) {
        tracing::warn!(%id, %message, "SearchParameter not put in force");
        return;
    }
    if !id.is_empty() {
        sources().lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), url.clone());
    }
    reindex::start(engine, &url).await;
}

/// Puts the packages' and the store's SearchParameters in force, once per engine (its first
/// request); a failure to read the store is logged and tried again at the next request.
pub(crate) async fn load(engine: &Engine) {
    engine
        .custom_loaded
        .get_or_try_init(|| async {
            for resource in engine.config.profiles.packages().resources() {
                if resource.get("resourceType").and_then(Value::as_str) == Some(RESOURCE_TYPE) {
                    put_in_force(engine, "", resource).await;
                }
            }
            let mut after = None;
            loop {
                let query = SearchQuery {
                    resource_type: Some(RESOURCE_TYPE.to_owned()),
                    clauses: Vec::new(),
                    result: ResultParams::default(),
                    compartment: None,
                    after: after.take(),
                    after_sort: Vec::new(),
                };
                let page = engine.store.search(&query, LOAD_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = Some((last.resource_type.clone(), last.id.clone()));
                for version in engine.store.vread_many(&page).await? {
                    written(engine, &version).await;
                }
            }
            Ok::<_, crate::storage::StoreError>(())
        })
        .await
        .map_or_else(|e| tracing::warn!(error = %e, "custom search parameters not loaded yet"), drop);
}

#[cfg(test)]
mod tests;
