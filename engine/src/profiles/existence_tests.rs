//! References whose targets must exist ([`super::unresolved_references`]): what the resource
//! holds (Bundle entries, Parameters resources) and what the resolver finds resolve, the rest is
//! an error; contained and absolute references are not looked up, and look-ups are bounded.

use std::cell::RefCell;

use serde_json::{Value, json};

use super::{MAX_TARGETS, ReferenceResolver, unresolved_references};
use crate::outcome::Severity;

/// Knows `Patient/known` and records every reference asked.
#[derive(Default)]
struct Known {
    asked: RefCell<Vec<String>>,
}

impl ReferenceResolver for Known {
    fn resolve(&self, reference: &str) -> Option<Value> {
        self.asked.borrow_mut().push(reference.to_owned());
        (reference == "Patient/known").then(|| json!({"resourceType": "Patient", "id": "known"}))
    }
}

fn errors(resource: &Value, resolver: &Known) -> Vec<String> {
    unresolved_references(resource, resolver)
        .into_iter()
        .inspect(|i| assert_eq!(i.severity, Severity::Error))
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
}

fn coverage(beneficiary: &str) -> Value {
    json!({"resourceType": "Coverage", "id": "c", "status": "active", "beneficiary": {"reference": beneficiary},
        "payor": [{"reference": "#payer"}], "contained": [{"resourceType": "Organization", "id": "payer",
        "endpoint": [{"reference": "http://example.org/fhir/Endpoint/1"}]}]})
}

#[test]
fn a_parameters_resources_and_what_the_resolver_finds_exist_and_nothing_else_does() {
    let parameters = |beneficiary: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "member", "part": [{"name": "patient", "resource": {"resourceType": "Patient", "id": "1"}}]},
            {"name": "coverage", "resource": coverage(beneficiary)}]})
    };
    let known = Known::default();
    assert_eq!(errors(&parameters("Patient/1"), &known), Vec::<String>::new(), "a part's resource");
    assert_eq!(known.asked.borrow().len(), 0, "what the Parameters hold is not asked for");
    assert_eq!(errors(&parameters("Patient/known"), &known), Vec::<String>::new(), "the resolver's");
    let missing = errors(&parameters("Patient/2"), &known);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].starts_with("Parameters.parameter[1].resource.beneficiary: `Patient/2`"), "{missing:?}");
    assert!(!known.asked.borrow().iter().any(|r| r.starts_with('#') || r.starts_with("http")), "{:?}", known.asked);
}

#[test]
fn a_bundles_entries_resolve_its_references_as_r4_says() {
    let bundle = |beneficiary: &str| {
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "http://example.org/fhir/Coverage/c", "resource": coverage(beneficiary)},
            {"fullUrl": "http://example.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1"}}]})
    };
    let known = Known::default();
    assert_eq!(errors(&bundle("Patient/1"), &known), Vec::<String>::new());
    let missing = errors(&bundle("Patient/3"), &known);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].starts_with("Bundle.entry[0].resource.beneficiary: `Patient/3`"), "{missing:?}");
}

#[test]
fn look_ups_are_bounded_and_each_target_is_asked_once() {
    let mut links: Vec<Value> = (0..MAX_TARGETS * 2)
        .map(|i| json!({"other": {"reference": format!("Patient/p{i}")}, "type": "seealso"}))
        .collect();
    links.push(json!({"other": {"reference": "Patient/p0"}, "type": "seealso"}));
    let patient = json!({"resourceType": "Patient", "id": "x", "link": links});
    let known = Known::default();
    let found = errors(&patient, &known);
    assert_eq!(known.asked.borrow().len(), MAX_TARGETS);
    assert_eq!(found.len(), MAX_TARGETS + 1, "the repeated target is reported where it is made again");
}
