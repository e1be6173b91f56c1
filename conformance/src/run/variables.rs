//! `TestScript.variable`: a value from `--var` first, else from the source fixture (the last
//! response when `sourceId` is absent) by `headerField`, `expression` (FHIRPath) or `path`
//! (XPath, translated), else `defaultValue`. Variables are resolved when used, so a variable
//! on a response saved later is read from that response.

use fhirgate_engine::fhirpath::{Env, evaluate, parse};
use serde_json::Value;

use super::fixture::Fixture;
use super::{State, text};
use crate::error::{Error, Result};

/// Evaluates a FHIRPath expression on a resource, each item as text: strings as they are,
/// other primitives as JSON writes them, complex values as JSON.
pub fn evaluate_text(expression: &str, resource: &Value) -> Result<Vec<String>> {
    let error = |message: String| Error::FhirPath { expression: expression.to_owned(), message };
    let parsed = parse(expression).map_err(|e| error(e.to_string()))?;
    let items = evaluate(&parsed, resource, &Env::new()).map_err(|e| error(e.to_string()))?;
    Ok(items
        .iter()
        .filter_map(|item| item.to_json())
        .map(|value| match &*value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect())
}

impl State<'_> {
    /// Substitutes `${name}` with variables and built-ins.
    pub(super) fn substitute(&self, text: &str) -> String {
        crate::vars::substitute(text, &mut |name| self.variable(name))
    }

    /// The value of a variable, `None` when it has none (yet).
    pub(super) fn variable(&self, name: &str) -> Option<String> {
        if let Some(value) = self.options().variables.get(name) {
            return Some(value.clone());
        }
        let definition = self
            .script
            .resource
            .get("variable")
            .and_then(Value::as_array)?
            .iter()
            .find(|v| text(v, "name") == Some(name))?;
        self.variable_from_source(definition).or_else(|| text(definition, "defaultValue").map(str::to_owned))
    }

    fn variable_from_source(&self, definition: &Value) -> Option<String> {
        let last;
        let source: &Fixture = match text(definition, "sourceId") {
            Some(id) => self.fixtures.get(id)?,
            None => {
                let exchange = self.last.as_ref()?;
                last = Fixture { response: exchange.response.clone(), ..Fixture::default() };
                &last
            }
        };
        if let Some(field) = text(definition, "headerField") {
            let response = source.response.as_ref().and_then(|r| r.header(field));
            return response.or_else(|| source.request.as_ref().and_then(|r| r.header(field))).map(str::to_owned);
        }
        let expression = match (text(definition, "expression"), text(definition, "path")) {
            (Some(e), _) => e.to_owned(),
            (None, Some(path)) => crate::xpath::to_fhirpath(path).ok()?,
            (None, None) => return None,
        };
        let body = source.body()?;
        evaluate_text(&expression, &body).ok()?.into_iter().next()
    }
}
