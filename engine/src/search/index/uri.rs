//! `uri` parameters: `uri`, `url` and `canonical` values, kept exactly as written (search.html
//! compares URIs exactly, `:below`/`:above` by prefix).

use super::primitive_text;
use crate::fhirpath::Item;
use crate::storage::IndexValue;

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    primitive_text(item).map(|value| vec![IndexValue::Uri { value }]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_uri_as_written() {
        let url = serde_json::json!("http://hl7.org/fhir/ValueSet/Example");
        let item = Item::Node(crate::fhirpath::Node::typed(&url, "uri"));
        assert_eq!(values(&item), [IndexValue::Uri { value: "http://hl7.org/fhir/ValueSet/Example".into() }]);
    }
}
