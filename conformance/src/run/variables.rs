//! `TestScript.variable`: a value from `--var` first, else from the source fixture (the last
//! response when `sourceId` is absent) by `headerField`, `expression` (FHIRPath) or `path`
//! (XPath, translated), else `defaultValue`. Variables are resolved when used, so a variable
//! on a response saved later is read from that response, and expressions, paths and default
//! values may use other variables.

use fhirgate_engine::fhirpath::{Env, evaluate, parse};
use serde_json::Value;

use super::fixture::Fixture;
use super::{State, text};
use crate::error::{Error, Result};

/// Evaluates a FHIRPath expression on a resource, each item as text: strings as they are,
/// other primitives as JSON writes them, complex values as JSON.
pub(super) fn evaluate_text(expression: &str, resource: &Value) -> Result<Vec<String>> {
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

/// How deep variables may refer to variables.
const MAX_DEPTH: u8 = 8;

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
        // Expressions may use other variables; a cycle ends as an unknown name.
        if self.depth.get() >= MAX_DEPTH {
            return None;
        }
        self.depth.set(self.depth.get() + 1);
        let value = self
            .variable_from_source(definition)
            .or_else(|| text(definition, "defaultValue").map(|d| self.substitute(d)));
        self.depth.set(self.depth.get() - 1);
        value
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
            (Some(e), _) => self.substitute(e),
            (None, Some(path)) => crate::xpath::to_fhirpath(&self.substitute(path)).ok()?,
            (None, None) => return None,
        };
        let body = source.body()?;
        evaluate_text(&expression, &body).ok()?.into_iter().next()
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use std::cell::Cell;
    use std::collections::HashMap;

    use serde_json::json;

    use crate::run::{Options, Runner, State};
    use crate::script::{Format, Script};

    fn script() -> Script {
        let resource = json!({
            "resourceType": "TestScript",
            "contained": [{"resourceType": "Patient", "id": "p", "name": [{"family": "Runner", "given": ["Tess"]}]}],
            "fixture": [{"id": "patient", "resource": {"reference": "#p"}}],
            "variable": [
                {"name": "family", "defaultValue": "Runner"},
                {"name": "label", "defaultValue": "${family}-x"},
                {"name": "given", "expression": "Patient.name.where(family = '${family}').given", "sourceId": "patient"},
                {"name": "byPath", "path": "fhir:Patient/fhir:name/fhir:given/@value", "sourceId": "patient"},
                {"name": "missing", "expression": "Patient.birthDate", "sourceId": "patient", "defaultValue": "none"},
                {"name": "loop1", "defaultValue": "${loop2}"},
                {"name": "loop2", "defaultValue": "${loop1}"}
            ]
        });
        Script { path: "script.json".into(), resource, format: Format::Json }
    }

    fn substitute(options: Options, text: &str) -> String {
        let script = script();
        let runner = Runner::new(options);
        let mut state =
            State { runner: &runner, script: &script, fixtures: HashMap::new(), last: None, depth: Cell::new(0) };
        state.load_fixtures().unwrap();
        state.substitute(text)
    }

    #[test]
    fn variables_by_default_expression_path_and_each_other() {
        let options = Options::new("http://server");
        assert_eq!(substitute(options.clone(), "${label} ${given} ${byPath} ${missing}"), "Runner-x Tess Tess none");
        let mut overridden = options;
        overridden.variables.insert("family".into(), "Other".into());
        assert_eq!(substitute(overridden, "${label} [${given}]"), "Other-x [${given}]", "--var wins, and flows on");
    }

    #[test]
    fn a_cycle_ends() {
        let text = substitute(Options::new("http://server"), "${loop1}");
        assert!(text.starts_with("${loop"), "{text}");
    }
}
