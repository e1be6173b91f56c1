//! Fuzz target: FHIR XML both ways. Arbitrary bytes and soups of FHIR XML pieces (elements,
//! attributes, entities, DTDs, narratives, comments) are read into JSON or refused with a 400;
//! what is read goes back to XML and reads the same. Generated FHIR JSON (primitives with
//! extensions, arrays with nulls, decimals, awkward strings) goes JSON → XML → JSON unchanged.
//! Nothing panics, overflows the stack or expands an entity.

mod fuzz;

use fhirgate_engine::{json_to_xml, xml_to_json};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

/// Reads `xml`: a resource or a 400; a resource read goes to XML and back unchanged.
fn read(xml: &[u8]) -> Result<(), TestCaseError> {
    match xml_to_json(xml) {
        Ok(json) => {
            let again = json_to_xml(&json, false).and_then(|x| xml_to_json(&x));
            prop_assert_eq!(again.ok(), Some(json));
        }
        Err(e) => prop_assert_eq!(e.status(), 400, "{}", e),
    }
    Ok(())
}

/// Pieces of FHIR XML documents, hostile ones among them.
const PIECES: &[&str] = &[
    "<Patient xmlns=\"http://hl7.org/fhir\">",
    "</Patient>",
    "<Bundle xmlns=\"http://hl7.org/fhir\">",
    "<entry>",
    "</entry>",
    "<resource>",
    "</resource>",
    "<contained>",
    "</contained>",
    "<Observation>",
    "</Observation>",
    "<name>",
    "</name>",
    "<given value=\"a\"/>",
    "<given id=\"g\">",
    "</given>",
    "<family value=\"&lt;&amp;&#10;\"/>",
    "<extension url=\"http://x\">",
    "</extension>",
    "<valueDecimal value=\"1.50\"/>",
    "<valueInteger value=\"-0\"/>",
    "<active value=\"true\"/>",
    "<id value=\"x\"/>",
    "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">",
    "</div></text>",
    "<p>",
    "</p>",
    "<br/>",
    "&lol;",
    "&amp;",
    "<!DOCTYPE x [<!ENTITY lol \"lol\">]>",
    "<?xml version=\"1.0\"?>",
    "<!-- c -->",
    "<![CDATA[x]]>",
    "<?pi x?>",
    " ",
    "text",
    "\"",
    ">",
    "<",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|pieces| pieces.concat().into_bytes())
}

/// A well-formed start: a Patient whose children are drawn from the pieces.
fn patient_soup() -> impl Strategy<Value = Vec<u8>> {
    soup().prop_map(|inner| {
        let mut doc = b"<Patient xmlns=\"http://hl7.org/fhir\">".to_vec();
        doc.extend(inner);
        doc.extend(b"</Patient>");
        doc
    })
}

#[test]
fn arbitrary_and_soup_documents_are_resources_or_400() {
    let strategy = prop_oneof![prop::collection::vec(any::<u8>(), 0..200), soup(), patient_soup()];
    fuzz::run("xml documents", fuzz::CASES * 4, strategy, |doc| read(&doc));
}

#[test]
fn deeply_nested_documents_are_refused_with_400() {
    let strategy = (1usize..100_000).prop_map(|depth| {
        format!(
            "<Questionnaire xmlns=\"http://hl7.org/fhir\">{}{}</Questionnaire>",
            "<item>".repeat(depth),
            "</item>".repeat(depth)
        )
    });
    fuzz::run("deep xml", 16, strategy, |doc| {
        let depth = doc.matches("<item>").count();
        match xml_to_json(doc.as_bytes()) {
            Ok(_) => prop_assert!(depth <= 128, "{depth} levels read"),
            Err(e) => prop_assert_eq!(e.status(), 400),
        }
        Ok(())
    });
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{1,12}",
        Just("a & b < c > \"d\" 'e'".to_string()),
        Just("line\nbreak\ttab\r".to_string()),
        Just("ünïcödé ✓ 𝄞".to_string()),
        Just("]]>".to_string()),
    ]
}

fn decimal() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just("1.50"),
        Just("-0.000"),
        Just("1e-7"),
        Just("12345678901234567890.123456789"),
        Just("0"),
        Just("3.0E+2"),
    ]
    .prop_map(|s| serde_json::from_str(s).unwrap_or(Value::Null))
}

/// A primitive's `_name` object: an id and extensions.
fn element() -> impl Strategy<Value = Value> {
    (proptest::option::of("[a-z]{1,4}"), prop::collection::vec(text(), 0..2)).prop_map(|(id, values)| {
        let mut o = Map::new();
        if let Some(id) = id {
            o.insert("id".into(), json!(id));
        }
        if !values.is_empty() {
            let ext: Vec<Value> = values.into_iter().map(|v| json!({"url": "http://e", "valueString": v})).collect();
            o.insert("extension".into(), json!(ext));
        }
        if o.is_empty() { json!({"id": "z"}) } else { Value::Object(o) }
    })
}

/// Given names: values and elements, aligned, with nulls where only one of them is.
fn given() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec((proptest::option::of(text()), proptest::option::of(element())), 1..4).prop_map(|items| {
        items
            .into_iter()
            .map(|(v, e)| match (v, e) {
                (None, None) => (json!("n"), Value::Null),
                (v, e) => (v.map_or(Value::Null, Value::String), e.unwrap_or(Value::Null)),
            })
            .unzip()
    })
}

fn observation() -> impl Strategy<Value = Value> {
    (text(), decimal(), given(), proptest::option::of(element()), any::<bool>(), -5i64..5).prop_map(
        |(code, value, (names, elements), status_element, flag, count)| {
            let mut name = Map::new();
            if names.iter().any(|v| !v.is_null()) {
                name.insert("given".into(), Value::Array(names));
            }
            if elements.iter().any(|v| !v.is_null()) {
                name.insert("_given".into(), Value::Array(elements));
            }
            let mut o = json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": code},
                "valueQuantity": {"value": value, "unit": "mg"},
                "contained": [{"resourceType": "Patient", "active": flag, "name": [Value::Object(name)],
                    "multipleBirthInteger": count}],
            });
            if let (Some(e), Some(map)) = (status_element, o.as_object_mut()) {
                map.insert("_status".into(), e);
            }
            o
        },
    )
}

#[test]
fn generated_resources_round_trip_json_xml_json() {
    fuzz::run("json xml json", fuzz::CASES, (observation(), any::<bool>()), |(resource, pretty)| {
        let xml = json_to_xml(&resource, pretty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back =
            xml_to_json(&xml).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&xml))))?;
        prop_assert_eq!(back, resource);
        Ok(())
    });
}
