//! `reference` parameters: `Reference.reference` (a local reference as relative `Type/id`, with
//! any `_history` part dropped; absolute URLs and `#contained` kept as written),
//! `Reference.identifier` for `:identifier`, and `canonical`/`uri` values.

use super::{field, primitive_text};
use crate::definitions::Definitions;
use crate::fhirpath::Item;
use crate::storage::IndexValue;

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    if item.is_primitive() {
        return primitive_text(item).map(|r| vec![reference(&r)]).unwrap_or_default();
    }
    let Some(json) = item.to_json() else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(r) = field(&json, "reference") {
        out.push(reference(&r));
    }
    if let Some(identifier) = json.get("identifier") {
        let (system, value) = (field(identifier, "system"), field(identifier, "value"));
        if system.is_some() || value.is_some() {
            out.push(IndexValue::ReferenceIdentifier { system, value });
        }
    }
    out
}

/// A reference as written, split into type and id when it is (or ends in) `Type/id[/_history/v]`.
fn reference(text: &str) -> IndexValue {
    let segments: Vec<&str> = text.split('/').collect();
    let tail = match segments.iter().rposition(|s| *s == "_history") {
        Some(i) => &segments[..i],
        None => &segments[..],
    };
    let split = match tail {
        [.., t, id] if Definitions::r4().is_resource_type(t) && !id.is_empty() => Some((*t, *id)),
        _ => None,
    };
    let absolute = text.contains("://") || text.starts_with("urn:");
    match split {
        Some((t, id)) => IndexValue::Reference {
            reference: if absolute { text.to_owned() } else { format!("{t}/{id}") },
            resource_type: Some(t.to_owned()),
            id: Some(id.to_owned()),
        },
        None => IndexValue::Reference { reference: text.to_owned(), resource_type: None, id: None },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhirpath::Node;

    fn parts(v: &IndexValue) -> (String, Option<String>, Option<String>) {
        match v {
            IndexValue::Reference { reference, resource_type, id } => {
                (reference.clone(), resource_type.clone(), id.clone())
            }
            _ => (String::new(), None, None),
        }
    }

    #[test]
    fn splits_local_and_keeps_absolute() {
        let local = parts(&reference("Patient/1/_history/2"));
        assert_eq!(local, ("Patient/1".into(), Some("Patient".into()), Some("1".into())));
        let absolute = parts(&reference("http://x.org/fhir/Patient/1"));
        assert_eq!(absolute, ("http://x.org/fhir/Patient/1".into(), Some("Patient".into()), Some("1".into())));
        assert_eq!(parts(&reference("#p1")), ("#p1".into(), None, None));
    }

    #[test]
    fn reference_identifier() {
        let r = json!({"identifier": {"system": "urn:s", "value": "9"}});
        assert_eq!(
            values(&Item::Node(Node::typed(&r, "Reference"))),
            [IndexValue::ReferenceIdentifier { system: Some("urn:s".into()), value: Some("9".into()) }]
        );
    }
}
