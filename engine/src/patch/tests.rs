//! Unit tests of the patch module: the facade, error paths and the rules the official cases
//! (`engine/tests/patch_official.rs`) do not reach.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

use serde_json::{Value, json};

use super::{Patch, fhirpath_patch, json_patch};
use crate::error::Error;

/// A FHIRPath Patch of one operation made of `(part name, part JSON)` pairs.
fn fhir_patch(parts: &[Value]) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts}]})
}

fn part(name: &str, key: &str, value: Value) -> Value {
    let mut part = json!({"name": name});
    part[key] = value;
    part
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"given": ["Ann", "Bea"], "_given": [null, {"extension": [{"url": "u", "valueString": "x"}]}]}],
        "identifier": [{"value": "1"}, {"value": "2"}, {"value": "3"}]
    })
}

fn status(result: Result<Value, Error>) -> u16 {
    result.err().map_or(200, |e| e.status())
}

fn message(result: Result<Value, Error>) -> String {
    result.err().map(|e| e.to_string()).unwrap_or_default()
}

// --- the facade ---

#[test]
fn from_body_picks_the_patch_kind_by_content_type() {
    let json = Patch::from_body("application/json-patch+json; charset=utf-8", b"[]").unwrap();
    assert_eq!(json, Patch::Json(json!([])));
    let fhir = Patch::from_body("application/fhir+json", br#"{"resourceType": "Parameters"}"#).unwrap();
    assert!(matches!(fhir, Patch::FhirPath(_)));
}

#[test]
fn every_advertised_content_type_is_read() {
    let body = br#"{"resourceType": "Parameters"}"#;
    for content_type in super::CONTENT_TYPES {
        let body: &[u8] = if content_type.contains("json-patch") { b"[]" } else { body };
        assert!(Patch::from_body(content_type, body).is_ok(), "{content_type}");
    }
}

#[test]
fn from_body_rejects_other_content_types_and_bodies() {
    let xml = Patch::from_body("application/xml-patch+xml", b"<diff/>").unwrap_err();
    assert_eq!(xml.status(), 415);
    assert!(xml.to_string().contains("application/xml-patch+xml"), "{xml}");
    assert_eq!(Patch::from_body("application/json-patch+json", b"[").unwrap_err().status(), 400);
    let patient = Patch::from_body("application/fhir+json", br#"{"resourceType": "Patient"}"#).unwrap_err();
    assert_eq!(patient.status(), 400);
}

#[test]
fn apply_refuses_to_change_the_id() {
    let patch = Patch::Json(json!([{"op": "replace", "path": "/id", "value": "other"}]));
    let error = patch.apply(&patient()).unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("`id`"), "{error}");
}

// --- JSON Patch ---

#[test]
fn json_patch_bad_pointers_are_bad_requests() {
    for path in ["name", "/a~2b"] {
        let result = json_patch::apply(&json!({}), &json!([{"op": "add", "path": path, "value": 1}]));
        assert_eq!(status(result), 400, "{path}");
    }
    let result = json_patch::apply(&json!({"a": [1]}), &json!([{"op": "remove", "path": "/a/01"}]));
    assert_eq!(status(result), 422);
}

#[test]
fn json_patch_failing_test_applies_nothing() {
    let doc = json!({"a": 1, "b": [1, 2]});
    let patch = json!([
        {"op": "remove", "path": "/b/0"},
        {"op": "test", "path": "/a", "value": 2}
    ]);
    let error = json_patch::apply(&doc, &patch).unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("operation 1 (`test` at `/a`)"), "{error}");
    assert_eq!(doc, json!({"a": 1, "b": [1, 2]}));
}

#[test]
fn json_patch_unknown_operation_and_missing_value() {
    let unknown = json_patch::apply(&json!({}), &json!([{"op": "frobnicate", "path": "/a"}]));
    assert!(message(unknown).contains("unknown operation `frobnicate`"));
    assert_eq!(status(json_patch::apply(&json!({}), &json!([{"op": "add", "path": "/a"}]))), 400);
    assert_eq!(status(json_patch::apply(&json!({}), &json!({"op": "add"}))), 400);
}

#[test]
fn json_patch_escapes_end_of_array_copy_and_number_equality() {
    let doc = json!({"a/b": {"m~n": [1]}, "n": 1.0});
    let patch = json!([
        {"op": "add", "path": "/a~1b/m~0n/-", "value": 2},
        {"op": "copy", "from": "/a~1b/m~0n/1", "path": "/c"},
        {"op": "test", "path": "/n", "value": 1}
    ]);
    let out = json_patch::apply(&doc, &patch).unwrap();
    assert_eq!(out, json!({"a/b": {"m~n": [1, 2]}, "n": 1.0, "c": 2}));
}

#[test]
fn json_patch_keeps_member_order_and_refuses_moves_into_a_child() {
    let doc = json!({"a": 1, "b": {"c": 2}, "d": 3});
    let out = json_patch::apply(&doc, &json!([{"op": "remove", "path": "/a"}])).unwrap();
    assert_eq!(out.as_object().unwrap().keys().collect::<Vec<_>>(), ["b", "d"]);
    let into_child = json_patch::apply(&doc, &json!([{"op": "move", "from": "/b", "path": "/b/c"}]));
    assert_eq!(status(into_child), 422);
}

// --- FHIRPath Patch ---

#[test]
fn fhirpath_unknown_type_and_missing_parts_are_bad_requests() {
    let unknown =
        fhir_patch(&[part("type", "valueCode", json!("frobnicate")), part("path", "valueString", json!("Patient"))]);
    let error = fhirpath_patch::apply(&patient(), &unknown).unwrap_err();
    assert_eq!(error.status(), 400);
    assert!(error.to_string().contains("unknown operation type `frobnicate`"), "{error}");
    let no_index = fhir_patch(&[
        part("type", "valueCode", json!("insert")),
        part("path", "valueString", json!("Patient.identifier")),
        part("value", "valueIdentifier", json!({"value": "4"})),
    ]);
    assert!(message(fhirpath_patch::apply(&patient(), &no_index)).contains("needs part `index`"));
    let bad_path =
        fhir_patch(&[part("type", "valueCode", json!("delete")), part("path", "valueString", json!("Patient.("))]);
    assert_eq!(status(fhirpath_patch::apply(&patient(), &bad_path)), 400);
}

#[test]
fn fhirpath_path_matching_several_elements_is_unprocessable() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("replace")),
        part("path", "valueString", json!("Patient.identifier.value")),
        part("value", "valueString", json!("9")),
    ]);
    let error = fhirpath_patch::apply(&patient(), &patch).unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("matches 3 elements"), "{error}");
}

#[test]
fn fhirpath_delete_of_nothing_is_a_no_op() {
    let patch =
        fhir_patch(&[part("type", "valueCode", json!("delete")), part("path", "valueString", json!("Patient.gender"))]);
    assert_eq!(fhirpath_patch::apply(&patient(), &patch).unwrap(), patient());
}

#[test]
fn fhirpath_delete_takes_the_primitive_extension_along() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("delete")),
        part("path", "valueString", json!("Patient.name.given[1]")),
    ]);
    let out = fhirpath_patch::apply(&patient(), &patch).unwrap();
    assert_eq!(out["name"][0], json!({"given": ["Ann"]}));
}

#[test]
fn fhirpath_add_names_a_choice_by_its_value_type() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("add")),
        part("path", "valueString", json!("Patient")),
        part("name", "valueString", json!("deceased")),
        part("value", "valueBoolean", json!(true)),
    ]);
    let out = fhirpath_patch::apply(&patient(), &patch).unwrap();
    assert_eq!(out["deceasedBoolean"], json!(true));
}

#[test]
fn fhirpath_replace_renames_a_choice_whose_type_changes() {
    let observation = json!({"resourceType": "Observation", "status": "final", "valueQuantity": {"value": 1}});
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("replace")),
        part("path", "valueString", json!("Observation.value")),
        part("value", "valueString", json!("high")),
    ]);
    let out = fhirpath_patch::apply(&observation, &patch).unwrap();
    assert_eq!(out, json!({"resourceType": "Observation", "status": "final", "valueString": "high"}));
}

#[test]
fn fhirpath_add_of_an_unknown_element_is_unprocessable() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("add")),
        part("path", "valueString", json!("Patient")),
        part("name", "valueString", json!("colour")),
        part("value", "valueString", json!("blue")),
    ]);
    let error = fhirpath_patch::apply(&patient(), &patch).unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("`Patient` has no element `colour`"), "{error}");
}

#[test]
fn fhirpath_insert_into_an_absent_list_and_out_of_range() {
    let insert = |index: i64| {
        fhir_patch(&[
            part("type", "valueCode", json!("insert")),
            part("path", "valueString", json!("Patient.telecom")),
            part("index", "valueInteger", json!(index)),
            part("value", "valueContactPoint", json!({"system": "phone", "value": "1"})),
        ])
    };
    let out = fhirpath_patch::apply(&patient(), &insert(0)).unwrap();
    assert_eq!(out["telecom"], json!([{"system": "phone", "value": "1"}]));
    let error = fhirpath_patch::apply(&patient(), &insert(1)).unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("out of range"), "{error}");
}

#[test]
fn fhirpath_move_out_of_range_and_on_a_single_element() {
    let moving = |path: &str, source: i64| {
        fhir_patch(&[
            part("type", "valueCode", json!("move")),
            part("path", "valueString", json!(path)),
            part("source", "valueInteger", json!(source)),
            part("destination", "valueInteger", json!(0)),
        ])
    };
    assert_eq!(status(fhirpath_patch::apply(&patient(), &moving("Patient.identifier", 3))), 422);
    assert_eq!(status(fhirpath_patch::apply(&patient(), &moving("Patient.id", 0))), 422);
    let out = fhirpath_patch::apply(&patient(), &moving("Patient.name.given", 1)).unwrap();
    assert_eq!(out["name"][0]["given"], json!(["Bea", "Ann"]));
    assert_eq!(out["name"][0]["_given"][0]["extension"][0]["url"], "u");
}

#[test]
fn fhirpath_failing_operation_leaves_the_input_unchanged() {
    let input = patient();
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            part("type", "valueCode", json!("delete")), part("path", "valueString", json!("Patient.identifier[0]"))]},
        {"name": "operation", "part": [
            part("type", "valueCode", json!("replace")), part("path", "valueString", json!("Patient.gender")),
            part("value", "valueCode", json!("male"))]}
    ]});
    let error = fhirpath_patch::apply(&input, &parameters).unwrap_err();
    assert!(error.to_string().contains("operation 1 (replace at `Patient.gender`): no content found"), "{error}");
    assert_eq!(input, patient());
}

#[test]
fn fhirpath_patch_reaches_into_contained_resources() {
    let input = json!({"resourceType": "Observation", "status": "final",
        "contained": [{"resourceType": "Patient", "id": "c"}]});
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("add")),
        part("path", "valueString", json!("Observation.contained[0]")),
        part("name", "valueString", json!("name")),
        part("value", "valueHumanName", json!({"family": "Doe"})),
    ]);
    let out = fhirpath_patch::apply(&input, &patch).unwrap();
    assert_eq!(out["contained"][0]["name"], json!([{"family": "Doe"}]));
}

#[test]
fn fhirpath_add_extension_to_a_primitive() {
    let patch = |path: &str| {
        fhir_patch(&[
            part("type", "valueCode", json!("add")),
            part("path", "valueString", json!(path)),
            part("name", "valueString", json!("extension")),
            part("value", "valueExtension", json!({"url": "v", "valueCode": "c"})),
        ])
    };
    let out = fhirpath_patch::apply(&patient(), &patch("Patient.name.given[0]")).unwrap();
    assert_eq!(out["name"][0]["_given"][0], json!({"extension": [{"url": "v", "valueCode": "c"}]}));
    let out = fhirpath_patch::apply(&patient(), &patch("Patient.name.given[1]")).unwrap();
    assert_eq!(out["name"][0]["_given"][1]["extension"][1], json!({"url": "v", "valueCode": "c"}));
    let dated = json!({"resourceType": "Patient", "birthDate": "1970"});
    let out = fhirpath_patch::apply(&dated, &patch("Patient.birthDate")).unwrap();
    assert_eq!(out["_birthDate"], json!({"extension": [{"url": "v", "valueCode": "c"}]}));
    let delete = fhir_patch(&[
        part("type", "valueCode", json!("delete")),
        part("path", "valueString", json!("Patient.birthDate.extension")),
    ]);
    assert_eq!(fhirpath_patch::apply(&out, &delete).unwrap(), dated);
}

#[test]
fn fhirpath_add_a_contained_resource() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("add")),
        part("path", "valueString", json!("Patient")),
        part("name", "valueString", json!("contained")),
        part("value", "resource", json!({"resourceType": "Organization", "id": "o"})),
    ]);
    let out = fhirpath_patch::apply(&patient(), &patch).unwrap();
    assert_eq!(out["contained"], json!([{"resourceType": "Organization", "id": "o"}]));
}

#[test]
fn fhirpath_add_replaces_a_single_element_already_present() {
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("add")),
        part("path", "valueString", json!("Patient")),
        part("name", "valueString", json!("id")),
        part("value", "valueId", json!("p1")),
    ]);
    assert_eq!(fhirpath_patch::apply(&patient(), &patch).unwrap(), patient());
}

#[test]
fn fhirpath_delete_leaves_no_empty_object_or_list() {
    let input = json!({"resourceType": "Patient", "contact": [{"telecom": [{"value": "1"}]}]});
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("delete")),
        part("path", "valueString", json!("Patient.contact[0].telecom[0]")),
    ]);
    assert_eq!(fhirpath_patch::apply(&input, &patch).unwrap(), json!({"resourceType": "Patient"}));
}

// --- bounds ---

#[test]
fn a_costly_fhirpath_patch_path_is_a_422_naming_the_budget() {
    let names: Vec<Value> = (0..3_000).map(|i| json!({"family": format!("F{i}")})).collect();
    let resource = json!({"resourceType": "Patient", "id": "p1", "name": names});
    let patch = fhir_patch(&[
        part("type", "valueCode", json!("delete")),
        part("path", "valueString", json!("Patient.name.where(%resource.descendants().count() < 0).family")),
    ]);
    let result = fhirpath_patch::apply(&resource, &patch);
    let error = result.as_ref().err().map(Error::outcome_json).unwrap_or_default();
    assert_eq!(status(result), 422);
    assert_eq!(error["issue"][0]["code"], "too-costly");
    assert!(error["issue"][0]["diagnostics"].as_str().unwrap().contains("work budget"), "{error}");
}

#[test]
fn the_operations_of_one_patch_share_one_budget() {
    let resource = patient();
    let op = json!({"name": "operation", "part": [
        {"name": "type", "valueCode": "delete"},
        {"name": "path", "valueString": "Patient.name.given.where(false)"}
    ]});
    let patch = json!({"resourceType": "Parameters", "parameter": vec![op; 50]});
    let small = crate::fhirpath::Budget { max_steps: 200, max_time: std::time::Duration::from_secs(60) };
    assert!(fhirpath_patch::apply_within(&resource, &patch, crate::fhirpath::Budget::DEFAULT).is_ok());
    assert_eq!(status(fhirpath_patch::apply_within(&resource, &patch, small)), 422);
}

#[test]
fn json_patch_copies_cannot_double_the_resource_without_bound() {
    let mut ops = vec![json!({"op": "add", "path": "/extension", "value": [{"url": "u", "valueString": "x"}]})];
    for _ in 0..40 {
        ops.push(json!({"op": "copy", "from": "/extension", "path": "/extension/0/extension"}));
        ops.push(json!({"op": "copy", "from": "/extension/0", "path": "/extension/-"}));
    }
    let result = json_patch::apply(&patient(), &Value::Array(ops));
    assert_eq!(status(result), 422);
    let copies: Vec<Value> =
        (0..40).map(|i| json!({"op": "copy", "from": "/name", "path": format!("/n{i}")})).collect();
    let result = json_patch::apply_within(&patient(), &Value::Array(copies), 100);
    assert!(message(result).contains("work budget"));
}

#[test]
fn patches_cannot_nest_the_resource_beyond_what_a_body_may_hold() {
    // Each add nests 100 levels inside the previous one: 2 are too deep together.
    let mut deep = json!("x");
    for _ in 0..100 {
        deep = json!({"a": deep});
    }
    let ops = json!([
        {"op": "add", "path": "/deep", "value": deep},
        {"op": "add", "path": format!("/deep{}", "/a".repeat(99)), "value": deep}
    ]);
    let result = json_patch::apply(&patient(), &ops);
    assert!(message(result).contains("deeper than 127"));
    let one = json!([{"op": "add", "path": "/deep", "value": deep}]);
    assert_eq!(status(json_patch::apply(&patient(), &one)), 200);
}
