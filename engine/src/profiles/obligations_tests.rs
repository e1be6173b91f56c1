//! Inherited obligations: each profile named by `inherit-obligations` must be a known
//! obligation profile of the same base; unknown ones are not checked.

use serde_json::{Value, json};

use super::{Conformance, check_structure_definition};
use crate::outcome::Severity;

const INHERIT: &str = "http://hl7.org/fhir/StructureDefinition/inherit-obligations";
const MARK: &str = "http://hl7.org/fhir/StructureDefinition/obligation-profile";
const BASE: &str = "http://example.org/StructureDefinition/base-patient";

fn profile(url: &str, base: &str, marked: bool, inherits: &[&str]) -> Value {
    let mut extensions: Vec<Value> = inherits.iter().map(|u| json!({"url": INHERIT, "valueCanonical": u})).collect();
    if marked {
        extensions.push(json!({"url": MARK, "valueBoolean": true}));
    }
    json!({"resourceType": "StructureDefinition", "url": url, "name": "P", "status": "draft", "kind": "resource",
        "abstract": false, "type": "Patient", "baseDefinition": base, "derivation": "constraint",
        "extension": extensions,
        "differential": {"element": [{"id": "Patient.active", "path": "Patient.active", "min": 1}]}})
}

fn errors(c: &Conformance, sd: &Value) -> Vec<String> {
    check_structure_definition(c, sd)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
}

#[test]
fn inherited_obligations_come_from_marked_profiles_of_the_same_base() {
    let mut c = Conformance::new();
    c.add(profile(BASE, "http://hl7.org/fhir/StructureDefinition/Patient", false, &[]));
    c.add(profile("http://example.org/op/good", BASE, true, &[]));
    c.add(profile("http://example.org/op/unmarked", BASE, false, &[]));
    c.add(profile("http://example.org/op/other-base", "http://hl7.org/fhir/StructureDefinition/Patient", true, &[]));
    let inheriting = |from: &[&str]| profile("http://example.org/inheriting", BASE, false, from);
    assert_eq!(
        errors(&c, &inheriting(&["http://example.org/op/good", "http://example.org/op/unknown"])),
        Vec::<String>::new()
    );
    let found = errors(&c, &inheriting(&["http://example.org/op/good", "http://example.org/op/unmarked"]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("StructureDefinition.extension[1]:") && found[0].contains("not marked"), "{found:?}");
    let found = errors(&c, &inheriting(&["http://example.org/op/other-base"]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("StructureDefinition.extension[0]:") && found[0].contains(BASE), "{found:?}");
}
