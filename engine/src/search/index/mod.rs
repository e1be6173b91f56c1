//! Search index extraction: evaluates the spec's own `SearchParameter` expressions on a resource
//! and turns each value into typed [`IndexEntry`]s, one file per parameter type. `special`
//! parameters are skipped; a parameter whose expression fails is skipped and logged, never
//! failing the write. Equal values of one parameter are stored once.

mod composite;
mod date;
mod number;
mod quantity;
mod reference;
mod string;
mod token;
mod uri;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::definitions::{Definitions, SearchParam, SearchParamType};
use crate::fhirpath::{Budget, Env, Expr, Item, evaluate, parse};
use crate::storage::{IndexEntry, IndexValue};

pub(crate) use string::normalize;
// The query parser reads search values exactly as index values are extracted.
pub(crate) use date::range as date_range;
pub(crate) use number::precise as number_range;

/// Index entries for every (non-special) search parameter of the resource's type.
pub fn extract(defs: &Definitions, resource: &Value) -> Vec<IndexEntry> {
    extract_where(defs, resource, |_| true)
}

/// Index entries of the parameters named `codes` only (a federated search's `_sort` keys, the
/// resource attributes a Cedar policy set reads).
pub fn extract_only(defs: &Definitions, resource: &Value, codes: &[&str]) -> Vec<IndexEntry> {
    extract_where(defs, resource, |code| codes.contains(&code))
}

fn extract_where(defs: &Definitions, resource: &Value, wanted: impl Fn(&str) -> bool) -> Vec<IndexEntry> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let r4_env = Env::new().with_budget(Budget::INDEXING);
    let custom_env = Env::new().with_budget(Budget::CUSTOM_INDEXING);
    let mut entries = Vec::new();
    for param in defs.search_params(resource_type) {
        if param.kind == SearchParamType::Special || !wanted(&param.code) {
            continue;
        }
        let Some(compiled) = compiled(defs, resource_type, param) else { continue };
        let env = if defs.is_r4_param(param) { &r4_env } else { &custom_env };
        let items = match evaluate(&compiled.expr, resource, env) {
            Ok(items) => items,
            Err(error) => {
                tracing::debug!(param = %param.code, %resource_type, %error, "search parameter skipped");
                continue;
            }
        };
        let values = match param.kind {
            SearchParamType::Composite => composite::values(&compiled.components, resource, &items, env),
            kind => items.iter().flat_map(|item| values(kind, item)).collect(),
        };
        let mut kept: Vec<IndexValue> = Vec::with_capacity(values.len());
        for value in values {
            // The same value twice (two names with one family) matches nothing more.
            if !kept.contains(&value) {
                kept.push(value);
            }
        }
        entries.extend(kept.into_iter().map(|value| IndexEntry { param: param.code.clone(), value }));
    }
    entries
}

/// The index values of one item for a parameter of type `kind` (not composite).
pub(crate) fn values(kind: SearchParamType, item: &Item<'_>) -> Vec<IndexValue> {
    match kind {
        SearchParamType::String => string::values(item),
        SearchParamType::Token => token::values(item),
        SearchParamType::Reference => reference::values(item),
        SearchParamType::Date => date::values(item),
        SearchParamType::Number => number::values(item),
        SearchParamType::Quantity => quantity::values(item),
        SearchParamType::Uri => uri::values(item),
        SearchParamType::Composite | SearchParamType::Special => Vec::new(),
    }
}

/// A parameter's parsed expression for one resource type, with its composite components.
struct Compiled {
    expr: Expr,
    components: Vec<composite::Component>,
}

/// Keyed by resource type, parameter URL and expression: a custom parameter may change.
type Cache = Mutex<HashMap<(String, String, Option<String>), Option<Arc<Compiled>>>>;

/// The parsed expression of `param` for `resource_type`, parsed once per process.
fn compiled(defs: &Definitions, resource_type: &str, param: &SearchParam) -> Option<Arc<Compiled>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let key = (resource_type.to_owned(), param.url.clone(), param.expression.clone());
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return found;
    }
    let built = compile(defs, resource_type, param).map(Arc::new);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, built.clone());
    }
    built
}

fn compile(defs: &Definitions, resource_type: &str, param: &SearchParam) -> Option<Compiled> {
    let text = param.expression_for(resource_type)?;
    let expr = parse_logged(&text, &param.code)?;
    let mut components = Vec::new();
    for component in &param.component {
        let kind = defs.search_param_by_url(&component.definition)?.kind;
        components.push(composite::Component { kind, expr: parse_logged(&component.expression, &param.code)? });
    }
    Some(Compiled { expr, components })
}

fn parse_logged(text: &str, code: &str) -> Option<Expr> {
    parse(text)
        .map_err(|error| tracing::debug!(param = %code, %error, "search parameter expression does not parse"))
        .ok()
}

/// The string value of a primitive item (a JSON string, number or boolean as text).
pub(crate) fn primitive_text(item: &Item<'_>) -> Option<String> {
    match item.to_json()?.as_ref() {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `value[key]` as a string.
pub(crate) fn field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests;
