//! `quantity` parameters: `Quantity` (and its profiles `Age`, `Duration`...) as exact value
//! text with its implicit-precision range, plus `system`, `code` and `unit`; plain numbers and
//! FHIRPath quantities too.

use super::field;
use super::number::precise;
use crate::fhirpath::Item;
use crate::storage::IndexValue;

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    let Some(json) = item.to_json() else { return Vec::new() };
    let (number, system, code, unit) = match json.as_ref() {
        serde_json::Value::Number(n) => (n.to_string(), None, None, None),
        serde_json::Value::Object(_) => {
            let Some(n) = json.get("value").and_then(serde_json::Value::as_number) else { return Vec::new() };
            // A System quantity (from FHIRPath arithmetic) carries a UCUM `unit` only.
            let code = field(&json, "code")
                .or_else(|| matches!(item, Item::Quantity(..)).then(|| field(&json, "unit")).flatten());
            (n.to_string(), field(&json, "system"), code, field(&json, "unit"))
        }
        _ => return Vec::new(),
    };
    let Some((value, low, high)) = precise(&number) else { return Vec::new() };
    vec![IndexValue::Quantity { value, low, high, system, code, unit }]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhirpath::Node;

    #[test]
    fn quantity_with_system_and_precision() {
        let q: serde_json::Value = serde_json::from_str(
            r#"{"value": 6.3, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"}"#,
        )
        .unwrap_or(json!(null));
        assert_eq!(
            values(&Item::Node(Node::typed(&q, "Quantity"))),
            [IndexValue::Quantity {
                value: "6.3".into(),
                low: "6.25".into(),
                high: "6.35".into(),
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mmol/L".into()),
                unit: Some("mmol/l".into()),
            }]
        );
    }
}
