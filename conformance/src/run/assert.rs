//! `TestScript…action.assert`: every check an assertion names must hold (response,
//! responseCode, contentType, headerField, resource, expression, path, minimumId,
//! compareToSourceId, navigationLinks, requestURL, requestMethod, validateProfileId), compared
//! with its operator; the checks of the resource's content are in `content.rs`. A failed assertion is a failure, or a warning when `warningOnly`.
//! `operator: eval` is reported as skipped.

use serde_json::Value;

use super::content;
use super::fixture::Fixture;
use super::operation::mime;
use super::operator::compare;
use super::result::{ActionKind, ActionResult, Outcome};
use super::variables::evaluate_text;
use super::{State, text};
use crate::http::{Request, Response};

/// The HTTP status of an R4 `assert-response-code-types` code.
pub(super) fn response_code(name: &str) -> Option<u16> {
    Some(match name {
        "okay" => 200,
        "created" => 201,
        "noContent" => 204,
        "notModified" => 304,
        "bad" => 400,
        "forbidden" => 403,
        "notFound" => 404,
        "methodNotAllowed" => 405,
        "conflict" => 409,
        "gone" => 410,
        "preconditionFailed" => 412,
        "unprocessable" => 422,
        _ => return None,
    })
}

/// What an assertion looks at.
struct Subject {
    request: Option<Request>,
    response: Option<Response>,
    resource: Option<Value>,
}

impl State<'_> {
    /// Checks one assertion.
    pub(super) fn assert(&mut self, assert: &Value) -> ActionResult {
        let label = text(assert, "description")
            .or_else(|| text(assert, "label"))
            .map_or_else(|| summary(assert), str::to_owned);
        let warning_only = assert.get("warningOnly").and_then(Value::as_bool) == Some(true);
        let operator = text(assert, "operator").unwrap_or("equals");
        if operator == "eval" {
            return ActionResult::new(ActionKind::Assert, label, Outcome::Skip, "operator `eval` is not supported");
        }
        let checks = self.checks(assert, operator);
        if checks.is_empty() {
            // `rule`, `ruleset` and elements of other FHIR versions: said, not an error.
            const PLAIN: [&str; 7] =
                ["description", "label", "direction", "operator", "warningOnly", "value", "sourceId"];
            let others: Vec<String> = assert
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .filter(|k| !PLAIN.contains(&k.as_str()))
                .map(|k| format!("`{k}`"))
                .collect();
            let named = if others.is_empty() { "nothing".to_owned() } else { others.join(", ") };
            return ActionResult::new(
                ActionKind::Assert,
                label,
                Outcome::Warning,
                format!("not checked: the assertion names no check the runner knows (it has {named})"),
            );
        }
        let failures: Vec<&String> = checks.iter().filter_map(|c| c.as_ref().err()).collect();
        let (outcome, message) = if failures.is_empty() {
            let passed: Vec<&String> = checks.iter().filter_map(|c| c.as_ref().ok()).collect();
            (Outcome::Pass, join(&passed))
        } else {
            (if warning_only { Outcome::Warning } else { Outcome::Fail }, join(&failures))
        };
        ActionResult::new(ActionKind::Assert, label, outcome, message)
    }

    /// The subject: the `sourceId` fixture, or the last exchange (its request for
    /// `direction: request`).
    fn subject(&self, assert: &Value) -> Result<Subject, String> {
        if let Some(id) = text(assert, "sourceId") {
            let fixture = self.fixtures.get(id).ok_or_else(|| format!("no fixture `{id}`"))?;
            return Ok(Subject {
                request: fixture.request.clone(),
                response: fixture.response.clone(),
                resource: fixture.body(),
            });
        }
        let exchange = self.last.as_ref().ok_or("no operation ran before this assertion")?;
        let to_request = text(assert, "direction") == Some("request");
        let resource = if to_request {
            exchange.request.resource()
        } else {
            exchange.response.as_ref().and_then(|r| r.resource.clone())
        };
        Ok(Subject { request: Some(exchange.request.clone()), response: exchange.response.clone(), resource })
    }

    /// Runs every check the assertion names.
    fn checks(&self, assert: &Value, operator: &str) -> Vec<Result<String, String>> {
        let subject = match self.subject(assert) {
            Ok(subject) => subject,
            Err(e) => return vec![Err(e)],
        };
        let value = text(assert, "value").map(|v| self.substitute(v));
        let value = value.as_deref();
        let to_request = text(assert, "direction") == Some("request");
        let status = subject.response.as_ref().map(|r| r.status.to_string());
        let mut checks = Vec::new();

        if let Some(code) = text(assert, "responseCode") {
            checks.push(compare(operator, "status", status.as_slice(), Some(code)));
        }
        if let Some(name) = text(assert, "response") {
            checks.push(match response_code(name) {
                Some(code) => compare(operator, "status", status.as_slice(), Some(&code.to_string())),
                None => Err(format!("unknown response code `{name}`")),
            });
        }
        if let Some(expected) = text(assert, "contentType") {
            let actual = if to_request {
                subject.request.as_ref().and_then(|r| r.header("Content-Type"))
            } else {
                subject.response.as_ref().and_then(|r| r.header("Content-Type"))
            };
            let format_of = |m: &str| {
                let base = m.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                if base.ends_with("json") {
                    "json".to_owned()
                } else if base.ends_with("xml") {
                    "xml".to_owned()
                } else {
                    base
                }
            };
            let expected = mime(expected).map(|m| format_of(&m));
            let actual: Vec<String> = actual.map(format_of).into_iter().collect();
            checks.push(compare(operator, "content type", &actual, expected.as_deref()));
        }
        if let Some(field) = text(assert, "headerField") {
            let header = if to_request {
                subject.request.as_ref().and_then(|r| r.header(field))
            } else {
                subject.response.as_ref().and_then(|r| r.header(field))
            };
            let actual: Vec<String> = header.map(str::to_owned).into_iter().collect();
            checks.push(compare(operator, &format!("header `{field}`"), &actual, value));
        }
        if let Some(expected) = text(assert, "resource").map(type_name) {
            let actual: Vec<String> = subject
                .resource
                .as_ref()
                .and_then(|r| text(r, "resourceType"))
                .map(str::to_owned)
                .into_iter()
                .collect();
            checks.push(compare(operator, "resource type", &actual, Some(expected)));
        }
        let expression = match (text(assert, "expression"), text(assert, "path")) {
            (Some(e), _) => Some(Ok(self.substitute(e))),
            (None, Some(path)) => Some(crate::xpath::to_fhirpath(&self.substitute(path)).map_err(|e| e.to_string())),
            (None, None) => None,
        };
        let compare_id = text(assert, "compareToSourceId");
        if let Some(expression) = expression {
            checks.push(
                expression.and_then(|e| self.expression_check(&e, &subject, assert, operator, value, compare_id)),
            );
        } else if compare_id.is_some() {
            checks.push(self.expression_check("", &subject, assert, operator, value, compare_id));
        }
        if let Some(id) = text(assert, "minimumId") {
            checks.push(content::minimum(
                id,
                self.fixtures.get(id).and_then(Fixture::body).as_ref(),
                subject.resource.as_ref(),
            ));
        }
        if let Some(wanted) = assert.get("navigationLinks").and_then(Value::as_bool) {
            checks.push(content::navigation_links(wanted, subject.resource.as_ref()));
        }
        if let Some(expected) = text(assert, "requestURL") {
            let expected = self.substitute(expected);
            let base = &self.options().base_url;
            let actual = subject.request.as_ref().map(|r| {
                if expected.contains("://") {
                    r.url.clone()
                } else {
                    r.url.strip_prefix(base.as_str()).unwrap_or(&r.url).trim_start_matches('/').to_owned()
                }
            });
            let expected =
                if expected.contains("://") { expected } else { expected.trim_start_matches('/').to_owned() };
            checks.push(compare(operator, "request URL", actual.as_slice(), Some(&expected)));
        }
        if let Some(expected) = text(assert, "requestMethod") {
            let actual: Vec<String> =
                subject.request.as_ref().map(|r| r.method.to_ascii_lowercase()).into_iter().collect();
            checks.push(compare(operator, "request method", &actual, Some(&expected.to_ascii_lowercase())));
        }
        if let Some(profile) = text(assert, "validateProfileId") {
            checks.push(content::valid(profile, subject.resource.as_ref()));
        }
        checks
    }

    /// `expression`/`path`, alone (a value and operator, or a boolean), or compared with the
    /// same or another expression on the `compareToSourceId` fixture.
    fn expression_check(
        &self,
        expression: &str,
        subject: &Subject,
        assert: &Value,
        operator: &str,
        value: Option<&str>,
        compare_id: Option<&str>,
    ) -> Result<String, String> {
        let source_expression = match (text(assert, "compareToSourceExpression"), text(assert, "compareToSourcePath")) {
            (Some(e), _) => Some(self.substitute(e)),
            (None, Some(p)) => Some(crate::xpath::to_fhirpath(&self.substitute(p)).map_err(|e| e.to_string())?),
            (None, None) => None,
        };
        let expression =
            if expression.is_empty() { source_expression.clone().unwrap_or_default() } else { expression.to_owned() };
        if expression.is_empty() {
            return Err("`compareToSourceId` without an expression or path".to_owned());
        }
        let resource = subject.resource.as_ref().ok_or("no resource to evaluate on")?;
        let actual = evaluate_text(&expression, resource).map_err(|e| e.to_string())?;
        if let Some(id) = compare_id {
            let source = self.fixtures.get(id).and_then(Fixture::body).ok_or_else(|| format!("no fixture `{id}`"))?;
            let expected = evaluate_text(source_expression.as_deref().unwrap_or(&expression), &source)
                .map_err(|e| e.to_string())?;
            let expected = expected.first().map(String::as_str);
            return compare(operator, &format!("`{expression}`"), &actual, expected.or(value));
        }
        if value.is_none() && operator == "equals" {
            // A boolean expression: it passes when it is true.
            let holds = !actual.is_empty() && actual.iter().all(|a| a != "false");
            return if holds {
                Ok(format!("`{expression}` is true"))
            } else {
                Err(format!("expected `{expression}` to be true, got {actual:?}"))
            };
        }
        compare(operator, &format!("`{expression}`"), &actual, value)
    }
}

/// A resource type named by code (`Patient`, R4) or by StructureDefinition URL (R5).
pub(super) fn type_name(resource: &str) -> &str {
    resource.rsplit('/').next().unwrap_or(resource)
}

/// Joins check messages.
fn join(messages: &[&String]) -> String {
    messages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
}

/// A label for an assertion without a description.
fn summary(assert: &Value) -> String {
    const KEYS: [&str; 10] = [
        "responseCode",
        "response",
        "contentType",
        "headerField",
        "resource",
        "expression",
        "path",
        "minimumId",
        "requestURL",
        "validateProfileId",
    ];
    KEYS.iter().find_map(|k| text(assert, k).map(|v| format!("assert {k} {v}"))).unwrap_or_else(|| "assert".to_owned())
}

#[cfg(test)]
mod tests {
    use super::response_code;

    #[test]
    fn resource_types_by_code_or_url() {
        assert_eq!(super::type_name("Patient"), "Patient");
        assert_eq!(super::type_name("http://hl7.org/fhir/StructureDefinition/Patient"), "Patient");
    }

    #[test]
    fn response_codes() {
        assert_eq!(response_code("okay"), Some(200));
        assert_eq!(response_code("preconditionFailed"), Some(412));
        assert_eq!(response_code("teapot"), None);
    }
}
