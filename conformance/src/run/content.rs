//! Assertions on the content of a resource as a whole: `minimumId` (every element of a fixture
//! is there), `navigationLinks` (a Bundle with `first` and `last` links) and `validateProfileId`
//! (valid against the base R4 definitions, with the engine's validator).

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::validate;
use serde_json::Value;

/// Whether `actual` has every element of `minimum` with the same values: objects by key (the
/// top-level `id` and `meta` left out), arrays item by item in any order.
pub(super) fn contains_minimum(actual: &Value, minimum: &Value, top: bool) -> bool {
    match (actual, minimum) {
        (Value::Object(a), Value::Object(m)) => m
            .iter()
            .filter(|(k, _)| !(top && (k.as_str() == "id" || k.as_str() == "meta")))
            .all(|(k, v)| a.get(k).is_some_and(|av| contains_minimum(av, v, false))),
        (Value::Array(a), Value::Array(m)) => m.iter().all(|mv| a.iter().any(|av| contains_minimum(av, mv, false))),
        (a, m) => a == m,
    }
}

/// `minimumId`: the resource holds every element of fixture `id`.
pub(super) fn minimum(id: &str, minimum: Option<&Value>, actual: Option<&Value>) -> Result<String, String> {
    match (minimum, actual) {
        (Some(minimum), Some(actual)) if contains_minimum(actual, minimum, true) => {
            Ok(format!("holds every element of `{id}`"))
        }
        (Some(_), Some(_)) => Err(format!("misses elements of `{id}`")),
        (None, _) => Err(format!("no fixture `{id}`")),
        (_, None) => Err("no resource to compare".to_owned()),
    }
}

/// `navigationLinks`: whether the Bundle has (`wanted`) or lacks `first` and `last` links.
pub(super) fn navigation_links(wanted: bool, bundle: Option<&Value>) -> Result<String, String> {
    let relations: Vec<&str> = bundle
        .and_then(|r| r.get("link"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("relation").and_then(Value::as_str))
        .collect();
    let has = ["first", "last"].iter().all(|r| relations.contains(r));
    if has == wanted {
        Ok(format!("navigation links {relations:?}"))
    } else {
        let want = if wanted { "present" } else { "absent" };
        Err(format!("navigation links: wanted first and last {want}, found {relations:?}"))
    }
}

/// `validateProfileId`: valid against the base R4 definitions (the profile itself is not
/// checked).
pub(super) fn valid(profile: &str, resource: Option<&Value>) -> Result<String, String> {
    let resource = resource.ok_or("no resource to validate")?;
    let issues = validate(Definitions::r4(), resource);
    if issues.is_empty() {
        return Ok(format!("valid against the base R4 definitions (profile `{profile}` checked structurally)"));
    }
    let shown: Vec<String> = issues
        .iter()
        .take(3)
        .map(|i| match &i.expression {
            Some(at) => format!("{at}: {}", i.diagnostics),
            None => i.diagnostics.clone(),
        })
        .collect();
    Err(format!("{} validation issue(s): {}", issues.len(), shown.join("; ")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{contains_minimum, navigation_links, valid};

    #[test]
    fn minimum_content() {
        let actual = json!({"resourceType": "Patient", "id": "9", "name": [{"family": "A", "given": ["B", "C"]}, {"family": "D"}], "active": true});
        let minimum = json!({"resourceType": "Patient", "id": "other", "name": [{"family": "D"}, {"given": ["C"]}]});
        assert!(contains_minimum(&actual, &minimum, true));
        assert!(!contains_minimum(&actual, &json!({"resourceType": "Patient", "active": false}), true));
        assert!(!contains_minimum(&actual, &json!({"resourceType": "Patient", "gender": "male"}), true));
        assert!(!contains_minimum(&actual, &json!({"id": "other"}), false));
    }

    #[test]
    fn navigation_links_and_validation() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "self", "url": "u"}, {"relation": "first", "url": "u"}, {"relation": "last", "url": "u"}]});
        assert!(navigation_links(true, Some(&bundle)).is_ok());
        assert!(navigation_links(false, Some(&bundle)).is_err());
        assert!(navigation_links(true, Some(&json!({"resourceType": "Bundle"}))).is_err());
        assert!(valid("p", Some(&bundle)).is_ok());
        let invalid = json!({"resourceType": "Patient", "gender": 3});
        let message = valid("p", Some(&invalid)).err().unwrap_or_default();
        assert!(message.starts_with("1 validation issue(s): Patient.gender"), "{message}");
        assert!(valid("p", None).is_err());
    }
}
