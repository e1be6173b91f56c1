//! A ValueSet (<https://hl7.org/fhir/R4/valueset.html>) as the terminology engine reads it: its
//! canonical identity and its `compose`, expanded on demand ([`super::expand`]).

use serde_json::Value;

/// A loaded value set.
#[derive(Debug, Clone)]
pub struct ValueSet {
    pub url: String,
    pub version: Option<String>,
    /// The resource as loaded (or as stored), for the `$expand` answer.
    pub resource: Value,
}

impl ValueSet {
    /// Reads a ValueSet resource; `Err` says why it cannot be used.
    pub fn parse(resource: &Value) -> Result<Self, String> {
        let url = resource.get("url").and_then(Value::as_str).ok_or("a ValueSet without `url`")?.to_owned();
        let version = resource.get("version").and_then(Value::as_str).map(str::to_owned);
        Ok(Self { url, version, resource: resource.clone() })
    }

    /// `compose.include` and `compose.exclude`.
    pub(crate) fn compose(&self, part: &str) -> &[Value] {
        self.resource.pointer(&format!("/compose/{part}")).and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }
}
