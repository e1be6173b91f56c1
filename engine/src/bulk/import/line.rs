//! One NDJSON line of an import: parsed, checked as a resource of the input's type and
//! validated as any write is, with the id it is imported under; or the OperationOutcome that
//! reports why the line failed (its input and line number in `diagnostics` and `expression`).

use serde_json::{Map, Value, json};

use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType, OperationOutcome};
use crate::validation::validate;

/// A line ready to be written.
pub(super) struct Parsed {
    pub(super) resource_type: String,
    pub(super) id: String,
    /// A JSON object (checked by [`parse`]).
    pub(super) resource: Value,
}

/// The resource on `text`, the input's `expected` type if it has one; `fallback_id` when the
/// line has no id.
pub(super) fn parse(
    text: &[u8],
    expected: Option<&str>,
    fallback_id: impl FnOnce() -> String,
) -> Result<Parsed, Vec<Issue>> {
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| vec![Issue::error(IssueType::Structure, format!("the line is not valid JSON: {e}"))])?;
    let Value::Object(mut resource) = value else {
        return Err(vec![Issue::error(IssueType::Structure, "the line is not a JSON object")]);
    };
    let resource_type = match resource.get("resourceType").and_then(Value::as_str) {
        None => return Err(vec![Issue::error(IssueType::Required, "the line has no `resourceType`")]),
        Some(t) if !Definitions::r4().is_resource_type(t) => {
            return Err(vec![Issue::error(IssueType::NotSupported, format!("unknown resource type `{t}`"))]);
        }
        Some(t) if expected.is_some_and(|e| e != t) => {
            return Err(vec![Issue::error(
                IssueType::Invalid,
                format!("a `{t}` in an input of `{}`", expected.unwrap_or_default()),
            )]);
        }
        Some(t) => t.to_owned(),
    };
    if resource.get("meta").is_some_and(|m| m.as_object().is_some_and(Map::is_empty)) {
        resource.remove("meta");
    }
    let id = match resource.get("id") {
        None => {
            let id = fallback_id();
            resource.insert("id".into(), Value::String(id.clone()));
            id
        }
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err(vec![Issue::error(IssueType::Invalid, "`id` is not a string")]),
    };
    let resource = Value::Object(resource);
    let issues = validate(Definitions::r4(), &resource);
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Parsed { resource_type, id, resource })
}

/// The OperationOutcome line reporting line `line` of input `input` (`url`).
pub(super) fn failure(url: &str, line: u64, issues: Vec<Issue>) -> String {
    let mut outcome = OperationOutcome { issues }.to_json();
    let place = format!("{url} line {line}");
    if let Some(issues) = outcome.get_mut("issue").and_then(Value::as_array_mut) {
        for issue in issues {
            let said = issue.get("diagnostics").and_then(Value::as_str).unwrap_or_default().to_owned();
            issue["diagnostics"] = json!(format!("{place}: {said}"));
        }
    }
    outcome.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, expected: Option<&str>) -> Result<(String, String), String> {
        parse(text.as_bytes(), expected, || "made-up".into())
            .map(|p| (p.resource_type, p.id))
            .map_err(|issues| issues.iter().map(|i| i.diagnostics.clone()).collect::<Vec<_>>().join("; "))
    }

    #[test]
    fn lines_are_checked_like_writes() {
        assert_eq!(
            parsed(r#"{"resourceType":"Patient","id":"a"}"#, Some("Patient")),
            Ok(("Patient".into(), "a".into()))
        );
        assert_eq!(parsed(r#"{"resourceType":"Patient"}"#, None), Ok(("Patient".into(), "made-up".into())));
        assert!(parsed("{not json", None).is_err_and(|e| e.contains("not valid JSON")));
        assert!(parsed(r#"{"resourceType":"Nope"}"#, None).is_err_and(|e| e.contains("unknown resource type")));
        assert!(parsed(r#"{"resourceType":"Observation"}"#, Some("Patient")).is_err());
        assert!(parsed(r#"{"resourceType":"Patient","gender":42}"#, None).is_err());
        assert!(parsed(r#"{"resourceType":"Patient","id":"bad id!"}"#, None).is_err());
        assert!(parsed("[1]", None).is_err());
    }
}
