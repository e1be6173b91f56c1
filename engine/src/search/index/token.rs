//! `token` parameters: `Coding`, `CodeableConcept` (each coding, plus its text), `Identifier`
//! (`system|value`, plus its type for `:of-type`), `ContactPoint` (its value, with `use` as the
//! system) and primitives (`code`, `boolean`, `string`, `id`, `uri`...) as a code, with the code
//! system of its required binding for a bound `code` (`Patient.gender` is
//! `http://hl7.org/fhir/administrative-gender|male`), without a system otherwise.

use serde_json::Value;

use super::string::normalize;
use super::{field, primitive_text};
use crate::fhirpath::Item;
use crate::storage::IndexValue;

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    if item.is_primitive() {
        let system = item.node().and_then(|n| n.code_system).map(str::to_owned);
        return primitive_text(item).map(|code| vec![token(system, Some(code), None)]).unwrap_or_default();
    }
    let Some(json) = item.to_json() else { return Vec::new() };
    let json = json.as_ref();
    match item.type_name() {
        Some("Coding") => coding(json).into_iter().collect(),
        Some("CodeableConcept") => codeable_concept(json),
        Some("Identifier") => identifier(json),
        Some("ContactPoint") => match field(json, "value") {
            Some(value) => vec![token(field(json, "use"), Some(value), None)],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn token(system: Option<String>, code: Option<String>, text: Option<String>) -> IndexValue {
    IndexValue::Token { system, code, text }
}

fn coding(json: &Value) -> Option<IndexValue> {
    let (system, code) = (field(json, "system"), field(json, "code"));
    let text = field(json, "display").map(|d| normalize(&d));
    (system.is_some() || code.is_some() || text.is_some()).then(|| token(system, code, text))
}

fn codeable_concept(json: &Value) -> Vec<IndexValue> {
    let mut out: Vec<IndexValue> =
        json.get("coding").and_then(Value::as_array).into_iter().flatten().filter_map(coding).collect();
    if let Some(text) = field(json, "text") {
        out.push(token(None, None, Some(normalize(&text))));
    }
    out
}

fn identifier(json: &Value) -> Vec<IndexValue> {
    let value = field(json, "value");
    let mut out = Vec::new();
    let type_text = json.get("type").and_then(|t| field(t, "text")).map(|t| normalize(&t));
    if field(json, "system").is_some() || value.is_some() {
        out.push(token(field(json, "system"), value.clone(), type_text));
    }
    let Some(value) = value else { return out };
    let type_codings = json.get("type").and_then(|t| t.get("coding")).and_then(Value::as_array);
    for coding in type_codings.into_iter().flatten() {
        out.push(IndexValue::OfType {
            type_system: field(coding, "system"),
            type_code: field(coding, "code"),
            value: value.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhirpath::Node;

    fn of(value: &Value, type_name: &str) -> Vec<IndexValue> {
        values(&Item::Node(Node::typed(value, type_name)))
    }

    #[test]
    fn codeable_concept_gives_each_coding_and_its_text() {
        let cc = json!({"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose"}], "text": "Glucose [Moles]"});
        assert_eq!(
            of(&cc, "CodeableConcept"),
            [
                token(Some("http://loinc.org".into()), Some("15074-8".into()), Some("glucose".into())),
                token(None, None, Some("glucose [moles]".into())),
            ]
        );
    }

    #[test]
    fn identifier_gives_system_value_and_of_type() {
        let id = json!({"system": "urn:s", "value": "1", "type": {"coding": [{"system": "http://t", "code": "MR"}]}});
        assert_eq!(
            of(&id, "Identifier"),
            [
                token(Some("urn:s".into()), Some("1".into()), None),
                IndexValue::OfType {
                    type_system: Some("http://t".into()),
                    type_code: Some("MR".into()),
                    value: "1".into()
                },
            ]
        );
    }

    #[test]
    fn primitives_and_contact_points() {
        assert_eq!(of(&json!(true), "boolean"), [token(None, Some("true".into()), None)]);
        assert_eq!(
            of(&json!({"system": "phone", "value": "555", "use": "home"}), "ContactPoint"),
            [token(Some("home".into()), Some("555".into()), None)]
        );
    }
}
