//! Search index extraction with known answers on R4 examples, and a run over every example of
//! the official package (`FHIR_R4_PACKAGE`, or `scripts/fetch-r4-package.sh`) that must not panic.

#![expect(clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::time::Instant;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::index::extract;
use fhirgate_engine::storage::{IndexEntry, IndexValue};
use serde_json::Value;

fn example(name: &str) -> Value {
    let path = common::manifest_dir().join("tests/data/fhirpath").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("example JSON")
}

/// The values of `param`; strings by their normalised form only (`exact` is checked apart).
fn of(entries: &[IndexEntry], param: &str) -> Vec<IndexValue> {
    let normalised = |value: &IndexValue| match value {
        IndexValue::String { value, .. } => string(value),
        other => other.clone(),
    };
    entries.iter().filter(|e| e.param == param).map(|e| normalised(&e.value)).collect()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn string(value: &str) -> IndexValue {
    IndexValue::String { value: value.into(), exact: String::new() }
}

#[test]
fn patient_example() {
    let entries = extract(Definitions::r4(), &example("patient-example.json"));
    let family = of(&entries, "family");
    assert!(family.contains(&string("chalmers")), "{family:?}");
    let given = of(&entries, "given");
    assert!(given.contains(&string("peter")) && given.contains(&string("james")), "{given:?}");
    assert!(of(&entries, "name").contains(&string("chalmers")));
    assert_eq!(
        of(&entries, "birthdate"),
        [IndexValue::Date { start: "1974-12-25T00:00:00.000Z".into(), end: "1974-12-25T23:59:59.999Z".into() }]
    );
    let identifier = of(&entries, "identifier");
    assert!(
        identifier.contains(&IndexValue::Token {
            system: s("urn:oid:1.2.36.146.595.217.0.1"),
            code: s("12345"),
            text: None
        }),
        "{identifier:?}"
    );
    assert!(identifier.contains(&IndexValue::OfType {
        type_system: s("http://terminology.hl7.org/CodeSystem/v2-0203"),
        type_code: s("MR"),
        value: "12345".into(),
    }));
    assert_eq!(
        of(&entries, "organization"),
        [IndexValue::Reference { reference: "Organization/1".into(), resource_type: s("Organization"), id: s("1") }]
    );
    // The definitions carry no value set bindings yet, so a `code` has no system.
    let gender =
        IndexValue::Token { system: s("http://hl7.org/fhir/administrative-gender"), code: s("male"), text: None };
    assert_eq!(of(&entries, "gender"), [gender], "a bound code carries its code system");
}

fn body_weight() -> IndexValue {
    IndexValue::Quantity {
        value: "185".into(),
        low: "184.5".into(),
        high: "185.5".into(),
        system: s("http://unitsofmeasure.org"),
        code: s("[lb_av]"),
        unit: s("lbs"),
    }
}

#[test]
fn observation_value_quantity_and_composite() {
    let observation = example("observation-example.json");
    assert_eq!(observation["valueQuantity"]["value"].to_string(), "185", "the example changed");
    let entries = extract(Definitions::r4(), &observation);
    assert_eq!(of(&entries, "value-quantity"), [body_weight()]);
    let loinc = IndexValue::Token { system: s("http://loinc.org"), code: s("29463-7"), text: s("body weight") };
    let composite = of(&entries, "code-value-quantity");
    assert_eq!(composite.len(), 4, "one per coding: {composite:?}");
    assert!(composite.contains(&IndexValue::Composite { components: vec![loinc, body_weight()] }), "{composite:?}");
}

#[test]
fn accents_are_folded() {
    let patient = serde_json::json!({"resourceType": "Patient", "name": [{"family": "Müller", "given": ["Zoë"]}]});
    let entries = extract(Definitions::r4(), &patient);
    assert_eq!(of(&entries, "family"), [string("muller")]);
    assert_eq!(of(&entries, "given"), [string("zoe")]);
}

#[test]
fn every_r4_example_extracts() {
    let dir = common::package_dir();
    let mut resources = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|x| x != "json") || path.file_name().is_some_and(|n| n == "package.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            resources.push(value);
        }
    }
    let defs = Definitions::r4();
    let started = Instant::now();
    let total: usize = resources.iter().map(|r| extract(defs, r).len()).sum();
    let elapsed = started.elapsed();
    println!("{total} index entries from {} resources in {elapsed:?}", resources.len());
    assert!(total > resources.len(), "suspiciously few entries: {total}");
}
