//! The documents of a store. In the one-partition layout all of them share the store's partition
//! key (`pk`):
//!
//! - `clock`: the store's write position; every batch replaces it under its etag, which orders
//!   batches (history) and makes a batch fail if anything was written since it read;
//! - `c|Type|id` ([`Current`]): the current version of a resource with its JSON, its index
//!   entries flattened for Cosmos SQL (`x`) and its sort keys (`sk`); reads and searches use it;
//! - `v|Type|id|n` ([`VersionDoc`]): one immutable document per version, for vread and history.
//!
//! The partitioned layout (`crate::partitioned`) keeps the same two kinds per resource in the
//! resource's own partition (ids `c` and `v|n`), with the fields marked "partitioned" below.

use std::collections::BTreeMap;

use fhirgate_engine::storage::{IndexEntry, IndexValue, ResourceVersion, WriteKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::error::Error;

/// The id of the clock document.
pub(crate) const CLOCK: &str = "clock";

/// The id of the current document of a resource.
pub(crate) fn current_id(resource_type: &str, id: &str) -> String {
    format!("c|{resource_type}|{id}")
}

/// The id of the document of one version.
pub(crate) fn version_id(resource_type: &str, id: &str, version: u64) -> String {
    format!("v|{resource_type}|{id}|{version}")
}

/// The clock: the last write position handed out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Clock {
    pub id: String,
    pub pk: String,
    pub seq: u64,
}

/// The current version of a resource (deletions included, so a re-create knows the version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Current {
    pub id: String,
    pub pk: String,
    /// `c`: current documents are what searches select.
    pub k: String,
    pub t: String,
    pub rid: String,
    /// `Type/id`: orders like `(type, id)` (`/` sorts before every letter and digit).
    pub key: String,
    pub v: u64,
    /// `meta.lastUpdated`, in Unix milliseconds.
    pub lu: i64,
    pub op: String,
    pub del: bool,
    pub json: Option<String>,
    /// The index entries, flattened (see [`flatten`]).
    pub x: Vec<Value>,
    /// Per parameter, the ascending and descending sort keys (see [`sort_keys`]).
    pub sk: Map<String, Value>,
    /// Partitioned: the store (every document carries it, for cross-partition queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// Partitioned: the history position of this version (see `partitioned::hlc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Partitioned: the transaction that holds this resource (its staged versions follow `v`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pend: Option<Pend>,
}

/// A transaction's mark on a resource: versions `v + 1 ..= to` are staged by transaction `tx`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Pend {
    pub tx: String,
    pub to: u64,
}

/// One version of a resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionDoc {
    pub id: String,
    pub pk: String,
    /// `v`.
    pub k: String,
    pub t: String,
    pub rid: String,
    pub v: u64,
    pub lu: i64,
    pub op: String,
    pub json: Option<String>,
    /// The write position of the batch that wrote it (history order and snapshots).
    pub seq: u64,
    /// The index entries as the engine gave them.
    pub index: Vec<IndexEntry>,
    /// Partitioned: the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// Partitioned: the transaction that staged this version, until it is applied (a version
    /// with `tx` exists only if that transaction committed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
}

impl VersionDoc {
    pub(crate) fn new(pk: &str, version: &ResourceVersion, index: Vec<IndexEntry>, seq: u64) -> Self {
        Self {
            id: version_id(&version.resource_type, &version.id, version.version),
            pk: pk.to_owned(),
            k: "v".to_owned(),
            t: version.resource_type.clone(),
            rid: version.id.clone(),
            v: version.version,
            lu: millis(version.last_updated),
            op: version.kind.code().to_owned(),
            json: version.json.clone(),
            seq,
            index,
            s: None,
            tx: None,
        }
    }

    pub(crate) fn to_version(&self) -> Result<ResourceVersion, Error> {
        decode(&self.t, &self.rid, self.v, self.lu, &self.op, self.json.clone())
    }
}

impl Current {
    pub(crate) fn new(pk: &str, version: &ResourceVersion, index: &[IndexEntry]) -> Self {
        let (t, rid) = (&version.resource_type, &version.id);
        Self {
            id: current_id(t, rid),
            pk: pk.to_owned(),
            k: "c".to_owned(),
            t: t.clone(),
            rid: rid.clone(),
            key: format!("{t}/{rid}"),
            v: version.version,
            lu: millis(version.last_updated),
            op: version.kind.code().to_owned(),
            del: version.is_deleted(),
            json: version.json.clone(),
            x: index.iter().filter_map(flatten).collect(),
            sk: sort_keys(index),
            s: None,
            seq: None,
            pend: None,
        }
    }

    pub(crate) fn into_version(self) -> Result<ResourceVersion, Error> {
        decode(&self.t, &self.rid, self.v, self.lu, &self.op, self.json)
    }
}

fn decode(t: &str, id: &str, version: u64, lu: i64, op: &str, json: Option<String>) -> Result<ResourceVersion, Error> {
    let kind =
        WriteKind::from_code(op).ok_or_else(|| Error::Corrupt(format!("`{t}/{id}`: unknown write kind `{op}`")))?;
    let last_updated = OffsetDateTime::from_unix_timestamp_nanos(i128::from(lu) * 1_000_000)
        .map_err(|e| Error::Corrupt(format!("`{t}/{id}`: bad instant {lu}: {e}")))?;
    Ok(ResourceVersion { resource_type: t.to_owned(), id: id.to_owned(), version, last_updated, kind, json })
}

/// An instant in Unix milliseconds (the engine gives millisecond instants).
pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// An index entry as one flat object of an array Cosmos SQL can search with `EXISTS`/`JOIN`:
/// `p` the parameter, `k` the kind, and short value fields (absent when the value has none):
/// string `v` (folded) `e` (exact); token `sy` `co` `tx`; identifier type (`k: o`) `sy` `co` `v`;
/// reference identifier (`k: i`) `sy` `co`; reference `r` `rt` `ri`; date `st` `en`; number
/// and quantity `n` `lo` `hi` (+ `sy` `co` `un`); uri `v`; composite `cs` (its components).
pub(crate) fn flatten(entry: &IndexEntry) -> Option<Value> {
    let mut object = value_fields(&entry.value)?;
    object.insert("p".to_owned(), Value::String(entry.param.clone()));
    Some(Value::Object(object))
}

fn value_fields(value: &IndexValue) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    let mut put = |name: &str, v: Option<&String>| {
        if let Some(v) = v {
            m.insert(name.to_owned(), Value::String(v.clone()));
        }
    };
    let kind = match value {
        IndexValue::String { value, exact } => {
            put("v", Some(value));
            put("e", Some(exact));
            "s"
        }
        IndexValue::Token { system, code, text } => {
            put("sy", system.as_ref());
            put("co", code.as_ref());
            put("tx", text.as_ref());
            "t"
        }
        IndexValue::OfType { type_system, type_code, value } => {
            put("sy", type_system.as_ref());
            put("co", type_code.as_ref());
            put("v", Some(value));
            "o"
        }
        IndexValue::ReferenceIdentifier { system, value } => {
            put("sy", system.as_ref());
            put("co", value.as_ref());
            "i"
        }
        IndexValue::Reference { reference, resource_type, id } => {
            put("r", Some(reference));
            put("rt", resource_type.as_ref());
            put("ri", id.as_ref());
            "r"
        }
        IndexValue::Date { start, end } => {
            put("st", Some(start));
            put("en", Some(end));
            "d"
        }
        IndexValue::Number { value, low, high } => {
            numbers(&mut m, value, low, high)?;
            "n"
        }
        IndexValue::Quantity { value, low, high, system, code, unit } => {
            put("sy", system.as_ref());
            put("co", code.as_ref());
            put("un", unit.as_ref());
            numbers(&mut m, value, low, high)?;
            "q"
        }
        IndexValue::Uri { value } => {
            put("v", Some(value));
            "u"
        }
        IndexValue::Composite { components } => {
            let cs = components.iter().map(|c| value_fields(c).map(Value::Object)).collect::<Option<Vec<_>>>()?;
            m.insert("cs".to_owned(), Value::Array(cs));
            "c"
        }
    };
    m.insert("k".to_owned(), Value::String(kind.to_owned()));
    Some(m)
}

/// `n`, `lo`, `hi` as JSON numbers; a value that is not a finite number (never: the engine
/// validated it) leaves the entry out rather than storing it wrong.
fn numbers(m: &mut Map<String, Value>, value: &str, low: &str, high: &str) -> Option<()> {
    for (name, text) in [("n", value), ("lo", low), ("hi", high)] {
        let n = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
        m.insert(name.to_owned(), json!(n));
    }
    Some(())
}

/// Per parameter `[ascending key, descending key]`: the smallest and the largest value of the
/// parameter on the resource (dates: earliest start, latest end; tokens: codes; references: the
/// reference; numbers and quantities: the value), the same keys the relational stores sort by.
pub(crate) fn sort_keys(index: &[IndexEntry]) -> Map<String, Value> {
    let mut keys: BTreeMap<&str, (Value, Value)> = BTreeMap::new();
    for entry in index {
        let (low, high) = match &entry.value {
            IndexValue::String { value, .. } | IndexValue::Uri { value } => (json!(value), json!(value)),
            IndexValue::Token { code: Some(code), .. } => (json!(code), json!(code)),
            IndexValue::Reference { reference, .. } => (json!(reference), json!(reference)),
            IndexValue::Date { start, end } => (json!(start), json!(end)),
            IndexValue::Number { value, .. } | IndexValue::Quantity { value, .. } => {
                let Some(n) = value.parse::<f64>().ok().filter(|n| n.is_finite()) else { continue };
                (json!(n), json!(n))
            }
            _ => continue,
        };
        keys.entry(entry.param.as_str())
            .and_modify(|(lo, hi)| {
                if compare(&low, lo).is_lt() {
                    *lo = low.clone();
                }
                if compare(&high, hi).is_gt() {
                    *hi = high.clone();
                }
            })
            .or_insert((low, high));
    }
    keys.into_iter().map(|(p, (lo, hi))| (p.to_owned(), Value::Array(vec![lo, hi]))).collect()
}

/// Orders two sort key values of one parameter: numbers numerically, text by code point.
pub(crate) fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}
