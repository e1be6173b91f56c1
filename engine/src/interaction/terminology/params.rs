//! The inputs of a terminology operation: the query string of a `GET` (or `POST` with a form
//! query), then the `Parameters` body of a `POST`, whose values are primitives (`valueCode`...),
//! complex values (`valueCoding`, `valueCodeableConcept`) or resources (`valueSet`).

use serde_json::Value;

use super::super::{Method, Request};
use crate::error::{Error, Result};

/// Most parameters one request may give.
const MAX_PARAMS: usize = 100;

/// Parameters that shape the response, not the operation.
const FORMATTING: [&str; 2] = ["_format", "_pretty"];

/// The inputs, in order: `(name, value)` where the value is a JSON string for a primitive or
/// query parameter, an object for a complex value or a resource.
pub(super) struct Params {
    list: Vec<(String, Value)>,
}

impl Params {
    pub(super) fn of(request: &Request) -> Result<Self> {
        let mut list: Vec<(String, Value)> = request
            .query
            .iter()
            .filter(|(k, _)| !FORMATTING.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if request.method == Method::Post && !request.body.iter().all(u8::is_ascii_whitespace) {
            let body: Value = serde_json::from_slice(&request.body)
                .map_err(|e| Error::bad_request(format!("the body is not JSON: {e}")))?;
            if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                return Err(Error::bad_request("the body of a terminology operation must be a `Parameters` resource"));
            }
            for parameter in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
                let Some(name) = parameter.get("name").and_then(Value::as_str) else {
                    return Err(Error::bad_request("a parameter without `name`"));
                };
                let value = parameter.get("resource").cloned().or_else(|| {
                    parameter.as_object()?.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| match v {
                        Value::Bool(_) | Value::Number(_) => Value::String(v.to_string()),
                        other => other.clone(),
                    })
                });
                let Some(value) = value else {
                    return Err(Error::bad_request(format!("parameter `{name}` has no value")));
                };
                list.push((name.to_owned(), value));
            }
        }
        if list.len() > MAX_PARAMS {
            return Err(Error::bad_request(format!("more than {MAX_PARAMS} parameters")));
        }
        Ok(Self { list })
    }

    /// The first value of `name`.
    pub(super) fn value(&self, name: &str) -> Option<&Value> {
        self.list.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The first value of `name` as text (400 when it is not text).
    pub(super) fn text(&self, name: &str) -> Result<Option<&str>> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Error::bad_request(format!("parameter `{name}` must be a primitive value"))),
        }
    }

    /// Every value of `name` as text.
    pub(super) fn texts(&self, name: &str) -> Vec<&str> {
        self.list.iter().filter(|(k, _)| k == name).filter_map(|(_, v)| v.as_str()).collect()
    }

    /// A non-negative integer parameter.
    pub(super) fn count(&self, name: &str) -> Result<Option<usize>> {
        self.text(name)?
            .map(|t| {
                t.parse::<usize>().map_err(|_| Error::bad_request(format!("`{name}` must be a number, not `{t}`")))
            })
            .transpose()
    }
}

/// A coding given to an operation: `system`, `version`, `code`, `display`.
#[derive(Debug, Clone, Default)]
pub(super) struct Coded {
    pub(super) system: Option<String>,
    pub(super) version: Option<String>,
    pub(super) code: String,
    pub(super) display: Option<String>,
}

impl Coded {
    /// A `Coding` value (`None` without a code).
    pub(super) fn of_coding(coding: &Value) -> Option<Self> {
        let text = |k: &str| coding.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self { system: text("system"), version: text("version"), code: text("code")?, display: text("display") })
    }

    /// The codings to check: `code` (with `system`, `version`, `display`), `coding`, and each
    /// coding of `codeableConcept`.
    pub(super) fn given(params: &Params, system_name: &str, version_name: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        if let Some(code) = params.text("code")? {
            out.push(Self {
                system: params.text(system_name)?.map(str::to_owned),
                version: params.text(version_name)?.map(str::to_owned),
                code: code.to_owned(),
                display: params.text("display")?.map(str::to_owned),
            });
        }
        if let Some(coding) = params.value("coding") {
            out.extend(Self::of_coding(coding));
        }
        if let Some(concept) = params.value("codeableConcept") {
            out.extend(
                concept.get("coding").and_then(Value::as_array).into_iter().flatten().filter_map(Self::of_coding),
            );
        }
        if out.is_empty() {
            return Err(Error::bad_request("give `code` (with `system`), `coding` or `codeableConcept`"));
        }
        Ok(out)
    }
}
