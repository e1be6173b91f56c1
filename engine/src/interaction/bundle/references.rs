//! References inside a transaction (bundle.html#references): references to another entry's
//! `fullUrl` (`urn:uuid:...`, `urn:oid:...`, or an absolute URL) become that entry's
//! `Type/id`; conditional references (`Patient?identifier=x|y`) become the one resource they
//! match. Only `Reference.reference` values are rewritten.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::definitions::Definitions;

/// Every `reference` string in `resource`, in document order.
pub(super) fn collect(resource: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    walk(resource, &mut |reference: &str| out.push(reference.to_owned()));
    out
}

/// Replaces every `reference` found in `map` by its value.
pub(super) fn rewrite(resource: &mut Map<String, Value>, map: &HashMap<String, String>) {
    let mut resource_value = std::mem::take(resource);
    walk_mut(&mut resource_value, map);
    *resource = resource_value;
}

/// `Type?criteria`: a conditional reference, split into its type and criteria.
pub(super) fn conditional(reference: &str) -> Option<(&str, &str)> {
    let (resource_type, criteria) = reference.split_once('?')?;
    Definitions::r4().is_resource_type(resource_type).then_some((resource_type, criteria))
}

/// A reference to another entry by a URN, which must be resolved within the bundle.
pub(super) fn is_urn(reference: &str) -> bool {
    reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:")
}

fn walk(map: &Map<String, Value>, visit: &mut impl FnMut(&str)) {
    for (key, value) in map {
        match value {
            Value::String(s) if key == "reference" => visit(s),
            Value::Object(inner) => walk(inner, visit),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        walk(inner, visit);
                    }
                }
            }
            _ => {}
        }
    }
}

fn walk_mut(map: &mut Map<String, Value>, replacements: &HashMap<String, String>) {
    for (key, value) in map.iter_mut() {
        match value {
            Value::String(s) if key == "reference" => {
                if let Some(new) = replacements.get(s.as_str()) {
                    *s = new.clone();
                }
            }
            Value::Object(inner) => walk_mut(inner, replacements),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        walk_mut(inner, replacements);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrites_references_at_any_depth_only() {
        let mut resource = json!({
            "resourceType": "Observation",
            "subject": { "reference": "urn:uuid:1" },
            "performer": [{ "reference": "urn:uuid:2" }, { "reference": "Practitioner/x" }],
            "note": [{ "text": "urn:uuid:1" }],
            "contained": [{ "resourceType": "Provenance", "target": [{ "reference": "urn:uuid:1" }] }],
        });
        let map = HashMap::from([("urn:uuid:1".to_owned(), "Patient/a".to_owned())]);
        if let Some(r) = resource.as_object_mut() {
            assert_eq!(collect(r), ["urn:uuid:1", "urn:uuid:2", "Practitioner/x", "urn:uuid:1"]);
            rewrite(r, &map);
        }
        assert_eq!(resource["subject"]["reference"], "Patient/a");
        assert_eq!(resource["performer"][0]["reference"], "urn:uuid:2", "unknown ones stay");
        assert_eq!(resource["note"][0]["text"], "urn:uuid:1", "only references are rewritten");
        assert_eq!(resource["contained"][0]["target"][0]["reference"], "Patient/a");
        assert_eq!(conditional("Patient?identifier=a|b"), Some(("Patient", "identifier=a|b")));
        assert_eq!(conditional("Nope?x=1"), None);
    }
}
