//! Additional bindings (R5's, stated on an R4 profile's binding by extension): `required` and
//! `maximum` ones refuse a value outside their value set, `extensible` ones warn, documenting
//! purposes and bindings limited by usage contexts check nothing.

use serde_json::{Value, json};

use super::{Conformance, validate};
use crate::outcome::Severity;

const R5_ADDITIONAL: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional";
const TOOLS_ADDITIONAL: &str = "http://hl7.org/fhir/tools/StructureDefinition/additional-binding";
const PROFILE: &str = "http://example.org/StructureDefinition/additionally-bound";

fn additional(url: &str, purpose: &str, usage: bool) -> Value {
    let mut parts = vec![
        json!({"url": "purpose", "valueCode": purpose}),
        json!({"url": "valueSet", "valueCanonical": "http://example.org/vs/internal"}),
    ];
    if usage {
        parts.push(json!({"url": "usage", "valueUsageContext": {
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
            "valueCodeableConcept": {"text": "x"}}}));
    }
    json!({"url": url, "extension": parts})
}

/// A profile whose Observation.code has an example binding and `extension` as its additional one.
fn conformance(extension: Value) -> Conformance {
    let mut c = Conformance::new();
    c.add(json!({"resourceType": "ValueSet", "url": "http://example.org/vs/internal", "status": "active",
        "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "100065-2"}]}]}}));
    c.add(json!({
        "resourceType": "StructureDefinition", "url": PROFILE,
        "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
        "differential": {"element": [{"id": "Observation.code", "path": "Observation.code", "binding": {
            "strength": "example", "valueSet": "http://hl7.org/fhir/ValueSet/observation-codes",
            "extension": [extension]}}]}
    }));
    c
}

fn observation(code: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]}})
}

/// The issues of `severity` on Observation.code.
fn found(c: &Conformance, code: &str, severity: Severity) -> Vec<String> {
    validate(c, &observation(code), &[PROFILE])
        .into_iter()
        .filter(|i| i.severity == severity && i.expression.as_deref() == Some("Observation.code"))
        .map(|i| i.diagnostics)
        .collect()
}

#[test]
fn required_and_maximum_additional_bindings_refuse_a_code_outside_their_value_set() {
    for url in [R5_ADDITIONAL, TOOLS_ADDITIONAL] {
        for purpose in ["required", "maximum"] {
            let c = conformance(additional(url, purpose, false));
            assert_eq!(found(&c, "100065-2", Severity::Error), Vec::<String>::new(), "{url} {purpose}");
            let errors = found(&c, "100066-0", Severity::Error);
            assert_eq!(errors.len(), 1, "{url} {purpose}: {errors:?}");
            assert!(errors[0].contains("http://example.org/vs/internal"), "{errors:?}");
            assert!(errors[0].contains(&format!("additional binding, {purpose}")), "{errors:?}");
        }
    }
}

#[test]
fn an_extensible_additional_binding_warns_and_documenting_or_usage_limited_ones_check_nothing() {
    let c = conformance(additional(R5_ADDITIONAL, "extensible", false));
    assert_eq!(found(&c, "100066-0", Severity::Error), Vec::<String>::new());
    assert_eq!(found(&c, "100066-0", Severity::Warning).len(), 1);
    for c in [
        conformance(additional(R5_ADDITIONAL, "preferred", false)),
        conformance(additional(R5_ADDITIONAL, "required", true)),
    ] {
        assert_eq!(found(&c, "100066-0", Severity::Error), Vec::<String>::new());
        assert_eq!(found(&c, "100066-0", Severity::Warning), Vec::<String>::new());
    }
}

/// A profile binding Patient.maritalStatus (required) to a ValueSet it contains, which gives
/// code `M` another display and a designation.
fn married_profile() -> Conformance {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/wed",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "contained": [{"resourceType": "ValueSet", "id": "wed", "url": "http://example.org/vs/wed", "status": "draft",
            "expansion": {"timestamp": "2024-01-01T00:00:00Z", "contains": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Wed",
                 "designation": [{"value": "Verheiratet"}]}]}}],
        "differential": {"element": [{"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
            "binding": {"strength": "required", "valueSet": "#wed"}}]}
    }));
    c
}

#[test]
fn a_bound_value_sets_own_displays_stand_and_its_stored_expansion_binds() {
    let c = married_profile();
    let patient = |code: &str, display: &str| {
        json!({"resourceType": "Patient", "maritalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": code, "display": display}]}})
    };
    let display_errors = |p: &Value, profiles: &[&str]| -> Vec<String> {
        let displays = crate::validation::check_displays(crate::definitions::Definitions::r4(), p);
        let checked = super::validate_checked(&c, p, profiles, None);
        checked.keep_displays(displays).into_iter().map(|i| i.expression.unwrap_or_default()).collect()
    };
    let at = "Patient.maritalStatus.coding[0].display";
    for display in ["Wed", "Verheiratet"] {
        assert_eq!(display_errors(&patient("M", display), &[]), [at], "the code system's displays without the profile");
        assert_eq!(
            display_errors(&patient("M", display), &["http://example.org/StructureDefinition/wed"]),
            Vec::<String>::new()
        );
    }
    assert_eq!(display_errors(&patient("M", "Spliced"), &["http://example.org/StructureDefinition/wed"]), [at]);
    let errors = |p: &Value| -> Vec<String> {
        validate(&c, p, &["http://example.org/StructureDefinition/wed"])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.diagnostics)
            .collect()
    };
    assert_eq!(errors(&patient("M", "Wed")), Vec::<String>::new());
    let outside = errors(&patient("S", "Never Married"));
    assert_eq!(outside.len(), 1, "{outside:?}");
    assert!(outside[0].contains("#wed") || outside[0].contains("v3-MaritalStatus|S"), "{outside:?}");
}
