//! Invariants as the reference validator evaluates them: an empty result fails, R4's `ref-1` as
//! corrected, and `as` with a type name in either case of its first letter.

use serde_json::{Value, json};

use super::{Conformance, validate};
use crate::outcome::Severity;

/// The keys of the invariants `resource` fails (errors only), against `profiles` in `conformance`.
fn failed(conformance: &Conformance, resource: &Value, profiles: &[&str]) -> Vec<String> {
    validate(conformance, resource, profiles)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .filter_map(|i| i.diagnostics.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// A profile of `resource_type` with one invariant, `key`: `expression` on element `path`.
fn profile(resource_type: &str, path: &str, key: &str, expression: &str) -> Conformance {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": format!("http://example.org/StructureDefinition/{key}"),
        "name": "Invariant", "status": "active", "kind": "resource", "abstract": false, "type": resource_type,
        "baseDefinition": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
        "derivation": "constraint",
        "differential": {"element": [{"id": path, "path": path, "constraint": [{"key": key,
            "severity": "error", "human": key, "expression": expression}]}]}
    }));
    c
}

#[test]
fn an_empty_result_fails_like_a_false_one() {
    // R4's per-1, on the Encounter's period.
    let expression = "start.hasValue().not() or end.hasValue().not() or (start <= end)";
    let c = profile("Encounter", "Encounter.period", "per-1", expression);
    let encounter = |start: &str, end: &str| {
        json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "period": {"start": start, "end": end}})
    };
    let url = ["http://example.org/StructureDefinition/per-1"];
    // A date and a dateTime of the same day: `start <= end` is empty (unknown), so per-1 fails.
    assert_eq!(failed(&c, &encounter("2023-06-21", "2023-06-21T06:20:00Z"), &url), ["per-1"]);
    assert_eq!(failed(&c, &encounter("2023-06-20", "2023-06-21T06:20:00Z"), &url), Vec::<String>::new());
    assert_eq!(failed(&c, &encounter("2023-06-22", "2023-06-21T06:20:00Z"), &url), ["per-1"]);
}

#[test]
fn ref_1_is_evaluated_as_corrected() {
    let published = "reference.startsWith('#').not() or \
        (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))";
    let c = profile("Patient", "Patient.generalPractitioner", "ref-1", published);
    let url = ["http://example.org/StructureDefinition/ref-1"];
    let display_only = json!({"resourceType": "Patient", "generalPractitioner": [{"display": "Dr Who"}]});
    assert_eq!(failed(&c, &display_only, &url), Vec::<String>::new(), "no `reference`: nothing to check");
    let dangling = json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "#nowhere"}]});
    assert_eq!(failed(&c, &dangling, &url), ["ref-1"]);
    let contained = json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "#gp"}],
        "contained": [{"resourceType": "Practitioner", "id": "gp"}]});
    assert_eq!(failed(&c, &contained, &url), Vec::<String>::new());
    // Any other expression is evaluated as written: the same text with a guard of its own.
    let other = profile("Patient", "Patient.generalPractitioner", "gp-1", "reference.startsWith('#')");
    let url = ["http://example.org/StructureDefinition/gp-1"];
    assert_eq!(failed(&other, &display_only, &url), ["gp-1"], "empty: fails");
}

#[test]
fn as_takes_a_type_name_in_either_case() {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/street",
        "name": "Street", "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": "Patient", "path": "Patient", "constraint": [{"key": "street-1",
            "severity": "error", "human": "Main street",
            "expression": "(address.line[0].extension('http://example.org/street').value as String) = 'Main'"}]}]}
    }));
    let patient = |street: &str| {
        json!({"resourceType": "Patient", "address": [{"line": ["Main 1"],
            "_line": [{"extension": [{"url": "http://example.org/street", "valueString": street}]}]}]})
    };
    let profile = ["http://example.org/StructureDefinition/street"];
    assert_eq!(failed(&c, &patient("Main"), &profile), Vec::<String>::new());
    assert_eq!(failed(&c, &patient("Side"), &profile), ["street-1"]);
}
