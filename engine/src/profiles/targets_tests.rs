//! Reference targets checked against `targetProfile` through a resolver: a target that does not
//! conform is an error, circles end, depth and count are bounded, and without a resolver (or a
//! target it cannot find) only the type is checked; a found target whose target profile is not
//! known is an error.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Conformance, MAX_TARGET_DEPTH, MAX_TARGETS, ReferenceResolver, validate, validate_resolving};
use crate::outcome::Severity;

const LINKED: &str = "http://example.org/StructureDefinition/linked-patient";

/// Linked patients must be `other` and link only to patients of this same profile.
fn conformance() -> Conformance {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": LINKED, "status": "active", "kind": "resource",
        "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient.gender", "path": "Patient.gender", "fixedCode": "other"},
            {"id": "Patient.link.other", "path": "Patient.link.other",
             "type": [{"code": "Reference", "targetProfile": [LINKED]}]}
        ]}
    }));
    c
}

fn patient(id: &str, gender: &str, links: &[&str]) -> Value {
    let links: Vec<Value> = links.iter().map(|l| json!({"other": {"reference": l}, "type": "seealso"})).collect();
    json!({"resourceType": "Patient", "id": id, "gender": gender, "link": links})
}

/// Resources by `Type/id`, counting the look-ups.
#[derive(Default)]
struct Folder {
    resources: HashMap<String, Value>,
    asked: RefCell<Vec<String>>,
}

impl Folder {
    fn with(resources: &[Value]) -> Self {
        let resources = resources
            .iter()
            .map(|r| {
                (
                    format!(
                        "{}/{}",
                        r["resourceType"].as_str().unwrap_or_default(),
                        r["id"].as_str().unwrap_or_default()
                    ),
                    r.clone(),
                )
            })
            .collect();
        Folder { resources, asked: RefCell::default() }
    }
}

impl ReferenceResolver for Folder {
    fn resolve(&self, reference: &str) -> Option<Value> {
        self.asked.borrow_mut().push(reference.to_owned());
        self.resources.get(reference).cloned()
    }
}

fn errors(resource: &Value, folder: Option<&Folder>) -> Vec<String> {
    validate_resolving(&conformance(), resource, &[LINKED], folder.map(|f| f as &dyn ReferenceResolver))
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
}

#[test]
fn a_target_that_breaks_its_target_profile_is_an_error() {
    let source = patient("a", "other", &["Patient/b"]);
    let bad = Folder::with(&[patient("b", "male", &[])]);
    let found = errors(&source, Some(&bad));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("Patient.link[0].other: `Patient/b` conforms to none of the target profiles"),
        "{found:?}"
    );
    assert!(found[0].contains("Patient.gender"), "the target's own error is shown: {found:?}");
    let good = Folder::with(&[patient("b", "other", &[])]);
    assert_eq!(errors(&source, Some(&good)), Vec::<String>::new());
}

#[test]
fn without_a_resolver_or_a_target_only_the_type_is_checked() {
    let source = patient("a", "other", &["Patient/b"]);
    assert_eq!(errors(&source, None), Vec::<String>::new());
    assert_eq!(errors(&source, Some(&Folder::default())), Vec::<String>::new());
    let plain = validate(&conformance(), &source, &[LINKED]);
    assert!(plain.iter().all(|i| i.severity != Severity::Error), "{plain:?}");
}

#[test]
fn targets_of_targets_are_checked_and_circles_end() {
    // a -> b -> c (bad): b does not conform, so a's link is an error.
    let source = patient("a", "other", &["Patient/b"]);
    let chain = Folder::with(&[patient("b", "other", &["Patient/c"]), patient("c", "male", &[])]);
    assert_eq!(errors(&source, Some(&chain)).len(), 1);
    // a -> b -> a: a circle of conforming patients is valid and each is looked up once.
    let circle = Folder::with(&[patient("b", "other", &["Patient/a"]), source.clone()]);
    assert_eq!(errors(&source, Some(&circle)), Vec::<String>::new());
    assert!(circle.asked.borrow().len() <= 2, "{:?}", circle.asked.borrow());
}

#[test]
fn depth_and_count_are_bounded() {
    // A chain longer than the depth: the bad patient at its end is never reached.
    let long: Vec<Value> = (1..=MAX_TARGET_DEPTH + 2)
        .map(|i| {
            let gender = if i == MAX_TARGET_DEPTH + 2 { "male" } else { "other" };
            patient(&format!("p{i}"), gender, &[&format!("Patient/p{}", i + 1)])
        })
        .collect();
    let folder = Folder::with(&long);
    assert_eq!(errors(&patient("p0", "other", &["Patient/p1"]), Some(&folder)), Vec::<String>::new());
    assert!(folder.asked.borrow().len() <= MAX_TARGET_DEPTH, "{:?}", folder.asked.borrow());
    // Many links, each to a patient linking to many: no more than MAX_TARGETS are checked.
    let ids: Vec<String> = (0..MAX_TARGETS * 2).map(|i| format!("Patient/q{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let many: Vec<Value> = (0..MAX_TARGETS * 2).map(|i| patient(&format!("q{i}"), "other", &refs)).collect();
    let folder = Folder::with(&many);
    assert_eq!(errors(&patient("root", "other", &refs), Some(&folder)), Vec::<String>::new());
    assert!(folder.asked.borrow().len() <= MAX_TARGETS, "{}", folder.asked.borrow().len());
}

#[test]
fn look_ups_of_missing_targets_count_too() {
    let ids: Vec<String> = (0..MAX_TARGETS * 3).map(|i| format!("Patient/missing{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let folder = Folder::default();
    assert_eq!(errors(&patient("root", "other", &refs), Some(&folder)), Vec::<String>::new());
    assert_eq!(folder.asked.borrow().len(), MAX_TARGETS);
}

#[test]
fn a_found_target_whose_target_profile_is_unknown_is_an_error_and_a_missing_one_is_not() {
    const UNKNOWN: &str = "http://example.org/StructureDefinition/not-loaded";
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/pointing",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [{"id": "Patient.link.other", "path": "Patient.link.other",
             "type": [{"code": "Reference", "targetProfile": [UNKNOWN]}]}]}
    }));
    let found = |resource: &Value, folder: Option<&Folder>| -> Vec<String> {
        validate_resolving(
            &c,
            resource,
            &["http://example.org/StructureDefinition/pointing"],
            folder.map(|f| f as &dyn ReferenceResolver),
        )
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
    };
    let source = patient("a", "other", &["Patient/b"]);
    assert_eq!(found(&source, None), Vec::<String>::new(), "no resolver: the target is not found");
    assert_eq!(found(&source, Some(&Folder::default())), Vec::<String>::new(), "not found: type only");
    let folder = Folder::with(&[patient("b", "other", &[])]);
    let errors = found(&source, Some(&folder));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("Patient.link[0].other:") && errors[0].contains(UNKNOWN), "{errors:?}");
    // The first entry validated against the profile (a bundle rule, as the reference's).
    c.bundle_rules.push(("0".to_owned(), "http://example.org/StructureDefinition/pointing".to_owned()));
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Patient/a", "resource": source},
        {"fullUrl": "http://example.org/fhir/Patient/b", "resource": patient("b", "other", &[])}]});
    let in_bundle: Vec<String> = super::validate(&c, &bundle, &[])
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.diagnostics)
        .collect();
    assert_eq!(in_bundle.len(), 1, "the target in the Bundle is found: {in_bundle:?}");
    assert!(in_bundle[0].contains(UNKNOWN), "{in_bundle:?}");
}
