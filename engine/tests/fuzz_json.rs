//! Fuzz target: request bodies through what a create does up to storing (parse with
//! serde_json, the resource checks, validation, search index extraction), through FHIRPath
//! `descendants()`, and through both PATCH formats. Bodies are arbitrary bytes, generated JSON
//! shaped like FHIR, and JSON nested up to 100,000 levels deep. Every one ends in a value or a
//! 4xx error; nothing panics or overflows the stack.

mod fuzz;

use fhirgate_engine::Error;
use fhirgate_engine::Patch;
use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::fhirpath::{Env, evaluate, parse};
use fhirgate_engine::search::index::extract;
use fhirgate_engine::validate;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

/// The steps of a create, up to the write: the body as JSON, an object of the right type,
/// valid, then its index entries; and FHIRPath walking all of it.
fn create(body: &[u8]) -> Result<usize, u16> {
    let value: Value = serde_json::from_slice(body).map_err(|_| 400u16)?;
    let Value::Object(resource) = &value else { return Err(400) };
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(400);
    }
    if !validate(Definitions::r4(), &value).is_empty() {
        return Err(400);
    }
    let entries = extract(Definitions::r4(), &value).len();
    let descendants = parse("descendants().count()").map_err(|_| 500u16)?;
    evaluate(&descendants, &value, &Env::new()).map_err(|_| 422u16)?;
    Ok(entries)
}

/// Applies `body` as each PATCH format to a sample Patient: a patched resource or a 4xx.
fn patch(body: &[u8]) -> Result<(), TestCaseError> {
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "F", "given": ["A"]}]});
    for content_type in ["application/json-patch+json", "application/fhir+json"] {
        let applied = Patch::from_body(content_type, body).and_then(|p| p.apply(&patient));
        if let Err(e) = applied {
            prop_assert!(matches!(e, Error::BadRequest(_) | Error::Unprocessable(_)), "{content_type}: {e:?}");
            prop_assert!((400..500).contains(&e.status()));
        }
    }
    Ok(())
}

/// JSON shaped like FHIR: known keys, nested objects and arrays, primitives.
fn fhir_like() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(Value::String),
        Just(json!("2020-01-01")),
    ];
    let keys = prop::sample::select(
        &["name", "given", "family", "extension", "url", "valueString", "identifier", "value", "_given", "id", "x"][..],
    );
    leaf.prop_recursive(8, 128, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// A Patient around generated content, as body bytes.
fn patient_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (prop::sample::select(&["name", "identifier", "extension", "telecom", "x"][..]), fhir_like()),
        0..4,
    )
    .prop_map(|fields| {
        let mut map = Map::new();
        map.insert("resourceType".into(), json!("Patient"));
        for (k, v) in fields {
            map.insert(k.to_owned(), v);
        }
        serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
    })
}

/// JSON text nested `depth` levels inside a Patient, in one of several shapes.
fn deep_body() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let shapes = prop::sample::select(&["array", "object", "extension", "unclosed"][..]);
    (shapes, 0usize..100_000).prop_map(|(shape, depth)| {
        let (open, close, inner) = match shape {
            "array" => ("[", "]", "1"),
            "object" => ("{\"a\":", "}", "1"),
            _ => ("{\"url\":\"u\",\"extension\":[", "]}", "{\"url\":\"u\",\"valueString\":\"x\"}"),
        };
        let close = if shape == "unclosed" { String::new() } else { close.repeat(depth) };
        let text = format!("{{\"resourceType\":\"Patient\",\"extension\":[{}{inner}{close}]}}", open.repeat(depth));
        (text.into_bytes(), depth)
    })
}

#[test]
fn arbitrary_bodies_are_resources_or_4xx() {
    let strategy = prop_oneof![prop::collection::vec(any::<u8>(), 0..200), patient_body()];
    fuzz::run("json bodies", fuzz::CASES, strategy, |body| {
        if let Err(status) = create(&body) {
            prop_assert!((400..500).contains(&status), "status {status}");
        }
        patch(&body)
    });
}

#[test]
fn deeply_nested_bodies_are_refused_with_400() {
    fuzz::run("deep json", 48, deep_body(), |(body, depth)| {
        let result = create(&body);
        // serde_json reads at most 127 levels of arrays and objects.
        if depth > 130 {
            prop_assert_eq!(result, Err(400));
        } else if let Err(status) = result {
            prop_assert!((400..500).contains(&status));
        }
        patch(&body)
    });
}

#[test]
fn patches_from_generated_operations_apply_or_answer_4xx() {
    let path = prop::sample::select(&["", "/name", "/name/0", "/name/0/given/-", "/x", "/name/9", "/id", "/~1"][..]);
    let op = prop::sample::select(&["add", "remove", "replace", "move", "copy", "test"][..]);
    let operation = (op, path.clone(), path, fhir_like())
        .prop_map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}));
    let strategy = prop::collection::vec(operation, 0..30);
    fuzz::run("json patches", fuzz::CASES, strategy, |ops| patch(&serde_json::to_vec(&ops).unwrap_or_default()));
}
