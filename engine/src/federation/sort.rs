//! The `_sort` order of a federated search, computed as the stores compute it: `_sort` parsed
//! by the engine's parser, each key the smallest (ascending) or largest (descending) index value
//! of its parameter extracted from the resource (dates by start, or end when descending; numbers
//! and quantities by value; strings normalised; tokens by code; references as written),
//! resources without a value last in either direction.
//!
//! Each target sorted its own results; merging assumes it sorted them the same way (a remote
//! that sorts differently still has its own order kept, interleaved by these keys).

use std::cmp::Ordering;

use serde_json::Value;

use crate::definitions::{Definitions, SearchParamType};
use crate::error::{Error, Result};
use crate::resource::parse_date_time_start;
use crate::search::index::extract_only;
use crate::search::query::{self, SortKey};
use crate::storage::IndexValue;

/// One key's value on one resource.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum KeyValue {
    Text(String),
    Number(f64),
}

/// The `_sort` keys of a search on `resource_type` (`""`: every type); empty for no `_sort`.
/// Unknown parameters, and composite or special ones no store sorts by, are a 400.
pub(super) fn parse(resource_type: &str, sort: &str) -> Result<Vec<SortKey>> {
    if sort.is_empty() {
        return Ok(Vec::new());
    }
    let defs = Definitions::r4();
    let resource_type = Some(resource_type).filter(|t| !t.is_empty());
    let parsed = query::parse(defs, resource_type, &[("_sort".to_owned(), sort.to_owned())], true)?;
    let keys = parsed.query.result.sort;
    for key in &keys {
        let kind = match resource_type {
            Some(t) => defs.search_param(t, &key.param).map(|p| p.kind),
            None => defs.search_param_in(&[], &key.param).map(|p| p.kind),
        };
        if matches!(kind, Some(SearchParamType::Composite | SearchParamType::Special)) {
            return Err(Error::bad_request(format!(
                "cannot sort by `{}` (a {} parameter)",
                key.param,
                kind_code(kind)
            )));
        }
    }
    Ok(keys)
}

fn kind_code(kind: Option<SearchParamType>) -> &'static str {
    kind.map_or("unknown", SearchParamType::code)
}

/// The key of [`super::merge::Order::Newest`]: a history entry's time, descending.
pub(super) fn newest() -> SortKey {
    SortKey { param: HISTORY_TIME.to_owned(), descending: true }
}

/// The name [`newest`] gives its key: no search parameter has it.
const HISTORY_TIME: &str = "$lastModified";

/// The values of `keys` on a page's `entry`: its resource's, or for [`newest`] the entry's
/// time (`response.lastModified`, else `resource.meta.lastUpdated`) in epoch milliseconds.
pub(super) fn entry_values(keys: &[SortKey], entry: &Value) -> Vec<Option<KeyValue>> {
    if let [key] = keys
        && key.param == HISTORY_TIME
    {
        let time =
            entry["response"]["lastModified"].as_str().or_else(|| entry["resource"]["meta"]["lastUpdated"].as_str());
        let millis = time.and_then(parse_date_time_start).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as f64);
        return vec![millis.map(KeyValue::Number)];
    }
    entry.get("resource").map(|r| values(keys, r)).unwrap_or_default()
}

/// The values of `keys` on `resource`.
fn values(keys: &[SortKey], resource: &Value) -> Vec<Option<KeyValue>> {
    if keys.is_empty() {
        return Vec::new();
    }
    let codes: Vec<&str> = keys.iter().map(|k| k.param.as_str()).collect();
    let entries = extract_only(Definitions::r4(), resource, &codes);
    keys.iter()
        .map(|key| {
            let found = entries.iter().filter(|e| e.param == key.param).filter_map(|e| value(&e.value, key.descending));
            if key.descending { found.max_by(compare_values) } else { found.min_by(compare_values) }
        })
        .collect()
}

/// The sortable value of one index value (the stores' sort columns).
fn value(index: &IndexValue, descending: bool) -> Option<KeyValue> {
    Some(match index {
        IndexValue::String { value, .. } | IndexValue::Uri { value } => KeyValue::Text(value.clone()),
        IndexValue::Token { code: Some(code), .. } => KeyValue::Text(code.clone()),
        IndexValue::Reference { reference, .. } => KeyValue::Text(reference.clone()),
        IndexValue::Date { end, .. } if descending => KeyValue::Text(end.clone()),
        IndexValue::Date { start, .. } => KeyValue::Text(start.clone()),
        IndexValue::Number { value, .. } | IndexValue::Quantity { value, .. } => {
            KeyValue::Number(value.parse::<f64>().ok().filter(|n| n.is_finite())?)
        }
        _ => return None,
    })
}

fn compare_values(a: &KeyValue, b: &KeyValue) -> Ordering {
    match (a, b) {
        (KeyValue::Text(x), KeyValue::Text(y)) => x.cmp(y),
        (KeyValue::Number(x), KeyValue::Number(y)) => x.total_cmp(y),
        _ => Ordering::Equal,
    }
}

/// Orders two resources' key values by `keys`; equal when every key is.
pub(super) fn compare(keys: &[SortKey], a: &[Option<KeyValue>], b: &[Option<KeyValue>]) -> Ordering {
    for (n, key) in keys.iter().enumerate() {
        let ordering = match (a.get(n).and_then(Option::as_ref), b.get(n).and_then(Option::as_ref)) {
            (Some(x), Some(y)) if key.descending => compare_values(y, x),
            (Some(x), Some(y)) => compare_values(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    Ordering::Equal
}
