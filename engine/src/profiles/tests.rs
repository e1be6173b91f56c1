//! Profiles on small hand-made definitions: generation from differentials, cardinality,
//! fixed/pattern, slicing, extensions, invariants, packages.

use serde_json::{Value, json};

use super::{Conformance, package, validate};
use crate::outcome::Severity;

fn patient_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/mrn-patient",
        "name": "MrnPatient", "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Patient", "path": "Patient", "constraint": [{"key": "mrn-1", "severity": "error",
                "human": "a name or an identifier", "expression": "name.exists() or identifier.exists()"}]},
            {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1,
             "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
            {"id": "Patient.identifier:mrn", "path": "Patient.identifier", "sliceName": "mrn", "min": 1, "max": "1"},
            {"id": "Patient.identifier:mrn.system", "path": "Patient.identifier.system", "min": 1,
             "fixedUri": "http://example.org/mrn"},
            {"id": "Patient.gender", "path": "Patient.gender", "patternCode": "female"},
            {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
             "binding": {"strength": "required", "valueSet": "http://hl7.org/fhir/ValueSet/marital-status|4.0.1"}},
            {"id": "Patient.extension:colour", "path": "Patient.extension", "sliceName": "colour", "max": "1",
             "type": [{"code": "Extension", "profile": ["http://example.org/StructureDefinition/colour"]}]}
        ]}
    })
}

fn colour_extension() -> Value {
    json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/colour",
        "name": "Colour", "status": "active", "kind": "complex-type", "abstract": false, "type": "Extension",
        "context": [{"type": "element", "expression": "Patient"}],
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension", "max": "1"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://example.org/StructureDefinition/colour"},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": "string"}]}
        ]}
    })
}

fn conformance() -> Conformance {
    let mut c = Conformance::new();
    c.add(patient_profile());
    c.add(colour_extension());
    c
}

const PROFILE: &str = "http://example.org/StructureDefinition/mrn-patient";

fn errors(resource: &Value, profiles: &[&str]) -> Vec<String> {
    validate(&conformance(), resource, profiles)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
}

#[test]
fn a_conforming_patient_has_no_error() {
    let patient = json!({"resourceType": "Patient", "gender": "female",
        "identifier": [{"system": "http://other"}, {"system": "http://example.org/mrn", "value": "1"}],
        "extension": [{"url": "http://example.org/StructureDefinition/colour", "valueString": "red"}]});
    assert_eq!(errors(&patient, &[PROFILE]), Vec::<String>::new());
}

#[test]
fn cardinality_slices_fixed_and_pattern_are_enforced() {
    let patient = json!({"resourceType": "Patient", "gender": "male"});
    let found = errors(&patient, &[PROFILE]);
    assert!(found.iter().any(|e| e.starts_with("Patient.identifier: `identifier`: at least 1")), "{found:?}");
    assert!(found.iter().any(|e| e.contains("`identifier:mrn`: at least 1")), "{found:?}");
    assert!(found.iter().any(|e| e.starts_with("Patient.gender: value must match")), "{found:?}");
    assert!(found.iter().any(|e| e.contains("mrn-1")), "{found:?}");

    let two = json!({"resourceType": "Patient", "identifier": [
        {"system": "http://example.org/mrn"}, {"system": "http://example.org/mrn"}]});
    let found = errors(&two, &[PROFILE]);
    assert!(found.iter().any(|e| e.contains("`identifier:mrn`: at most 1")), "{found:?}");
}

#[test]
fn a_required_binding_the_profile_adds_is_enforced() {
    let marital = |code: &str| {
        json!({"resourceType": "Patient", "gender": "female",
            "identifier": [{"system": "http://example.org/mrn", "value": "1"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": code}]}})
    };
    assert_eq!(errors(&marital("M"), &[PROFILE]), Vec::<String>::new());
    let found = errors(&marital("Q"), &[PROFILE]);
    assert!(found.iter().any(|e| e.starts_with("Patient.maritalStatus") && e.contains("marital-status")), "{found:?}");
}

#[test]
fn declared_profiles_are_checked_and_unknown_ones_only_warn() {
    let patient = json!({"resourceType": "Patient", "meta": {"profile": [PROFILE, "http://example.org/unknown"]}});
    let issues = validate(&conformance(), &patient, &[]);
    assert!(issues.iter().any(|i| i.severity == Severity::Error), "{issues:?}");
    assert!(issues.iter().any(|i| i.severity == Severity::Warning && i.diagnostics.contains("unknown")));
    let asked = errors(&json!({"resourceType": "Patient"}), &["http://example.org/unknown"]);
    assert_eq!(asked.len(), 1, "{asked:?}");
}

#[test]
fn extensions_are_checked_against_their_definitions_and_contexts() {
    let wrong_type = json!({"resourceType": "Patient", "identifier": [{"system": "http://example.org/mrn"}],
        "extension": [{"url": "http://example.org/StructureDefinition/colour", "valueInteger": 1}]});
    let found = errors(&wrong_type, &[]);
    assert!(found.iter().any(|e| e.contains("type `integer` is not allowed")), "{found:?}");
    let wrong_place = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "extension": [{"url": "http://example.org/StructureDefinition/colour", "valueString": "red"}]});
    let found = errors(&wrong_place, &[]);
    assert!(found.iter().any(|e| e.contains("not allowed on `Observation`")), "{found:?}");
}

#[test]
fn a_profile_for_another_type_is_refused() {
    let found = errors(&json!({"resourceType": "Observation"}), &[PROFILE]);
    assert!(found.iter().any(|e| e.contains("is for `Patient`")), "{found:?}");
}

#[test]
fn packages_load_from_tgz_and_bad_ones_say_why() {
    let profile = serde_json::to_vec(&patient_profile()).unwrap_or_default();
    let tgz = package::build_tgz(&[("package.json", b"{}"), ("StructureDefinition-mrn.json", &profile)]);
    let mut c = Conformance::new();
    assert_eq!(package::load_tgz(&tgz, &mut c), Ok(()));
    assert!(c.structure_definition(PROFILE).is_some());
    assert_eq!(c.counts(), vec![("StructureDefinition".to_owned(), 1)]);

    let bad = package::build_tgz(&[("StructureDefinition-bad.json", b"{not json")]);
    let err = package::load_tgz(&bad, &mut Conformance::new()).err().unwrap_or_default();
    assert!(err.contains("StructureDefinition-bad.json") && err.contains("not JSON"), "{err}");
    assert!(package::load_tgz(b"not gzip", &mut Conformance::new()).is_err());
}

#[test]
fn required_bindings_to_value_sets_only_a_package_holds_are_enforced() {
    let mut c = Conformance::new();
    c.add(json!({"resourceType": "CodeSystem", "url": "http://example.org/cs/flavour", "status": "active",
        "content": "complete", "concept": [{"code": "sweet"}, {"code": "sour"}]}));
    c.add(json!({"resourceType": "ValueSet", "url": "http://example.org/vs/flavour", "status": "active",
        "compose": {"include": [{"system": "http://example.org/cs/flavour"}]}}));
    c.add(json!({"resourceType": "ValueSet", "url": "http://example.org/vs/ages", "status": "active",
        "compose": {"include": [{"system": "http://unitsofmeasure.org", "concept": [{"code": "a"}, {"code": "mo"}]}]}}));
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/flavoured",
        "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Observation.code", "path": "Observation.code",
             "binding": {"strength": "required", "valueSet": "http://example.org/vs/flavour"}},
            {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}],
             "binding": {"strength": "required", "valueSet": "http://example.org/vs/ages"}}
        ]}
    }));
    let observation = |code: &str, unit: &str| {
        json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://example.org/cs/flavour", "code": code}]},
            "valueQuantity": {"value": 3, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    let found = |r: &Value| -> Vec<String> {
        validate(&c, r, &["http://example.org/StructureDefinition/flavoured"])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
            .collect()
    };
    assert_eq!(found(&observation("sweet", "mo")), Vec::<String>::new());
    let bad = found(&observation("bitter", "m"));
    assert!(bad.iter().any(|e| e.starts_with("Observation.code:") && e.contains("vs/flavour")), "{bad:?}");
    assert!(bad.iter().any(|e| e.starts_with("Observation.valueQuantity:") && e.contains("vs/ages")), "{bad:?}");
}

#[test]
fn invariants_can_ask_member_of_a_loaded_value_set() {
    let mut c = Conformance::new();
    c.add(json!({"resourceType": "ValueSet", "url": "http://example.org/vs/low", "status": "active",
        "compose": {"include": [{"system": "http://hl7.org/fhir/allergy-intolerance-criticality",
            "concept": [{"code": "low"}]}]}}));
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/low-basic",
        "status": "active", "kind": "resource", "abstract": false, "type": "Basic",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Basic", "derivation": "constraint",
        "differential": {"element": [{"id": "Basic.code", "path": "Basic.code", "constraint": [{"key": "low-1",
            "severity": "error", "human": "a low code", "expression": "memberOf('http://example.org/vs/low')"}]}]}
    }));
    let basic = |code: &str| {
        json!({"resourceType": "Basic", "code": {"coding": [
            {"system": "http://hl7.org/fhir/allergy-intolerance-criticality", "code": code}]}})
    };
    let errors = |r: &Value| -> usize {
        validate(&c, r, &["http://example.org/StructureDefinition/low-basic"])
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    };
    assert_eq!(errors(&basic("low")), 0);
    assert_eq!(errors(&basic("high")), 1);
}

#[test]
fn an_implementation_guides_global_profiles_apply_to_every_resource_of_the_type() {
    let mut c = conformance();
    c.add(json!({"resourceType": "ImplementationGuide", "url": "http://example.org/ImplementationGuide/ig",
        "status": "active", "global": [{"type": "Patient", "profile": PROFILE}]}));
    let issues = validate(&c, &json!({"resourceType": "Patient"}), &[]);
    assert!(issues.iter().any(|i| i.severity == Severity::Error && i.diagnostics.contains("identifier")), "{issues:?}");
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    assert!(validate(&c, &observation, &[]).iter().all(|i| i.severity != Severity::Error));
}

#[test]
fn a_structure_definition_is_checked_against_the_rules_of_profiling() {
    let c = conformance();
    let derived = |path: &str, fixed_url: &str| {
        json!({"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/colour2",
        "name": "Colour2", "status": "active", "kind": "complex-type", "abstract": false, "type": "Extension",
        "baseDefinition": "http://example.org/StructureDefinition/colour", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": fixed_url},
            {"id": "Extension.value[x]", "path": path}
        ]}})
    };
    let same = "http://example.org/StructureDefinition/colour";
    assert_eq!(super::check_structure_definition(&c, &derived("Extension.value[x]", same)), vec![]);
    assert_eq!(super::check_structure_definition(&c, &derived("Extension.valueString", same)), vec![]);
    let found = super::check_structure_definition(&c, &derived("Extension.valueBla", "http://example.org/other"));
    let messages: Vec<&str> = found.iter().map(|i| i.diagnostics.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("names no element") && m.contains("valueBla")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("fixed to") && m.contains("colour")), "{messages:?}");
}

#[test]
fn must_have_value_refuses_a_primitive_with_only_extensions_and_unknown_paths_constrain_nothing() {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/active",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [
            {"path": "Patient.active", "extension": [{"url":
                "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.mustHaveValue",
                "valueBoolean": true}]},
            {"path": "Patient.dateOfBirth", "min": 1}
        ]}
    }));
    let errors = |r: &Value| -> Vec<String> {
        validate(&c, r, &["http://example.org/StructureDefinition/active"])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
            .collect()
    };
    assert_eq!(errors(&json!({"resourceType": "Patient", "active": true})), Vec::<String>::new());
    let absent = json!({"resourceType": "Patient", "_active": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}});
    let found = errors(&absent);
    assert!(found.len() == 1 && found[0].contains("must have a value"), "{found:?}");
}

#[test]
fn complex_extension_parts_are_checked_without_a_declared_base_element() {
    // Like R4's patient-animal: the differential names `Extension.extension:species` only.
    let animal = json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/animal",
        "name": "Animal", "status": "active", "kind": "complex-type", "abstract": false, "type": "Extension",
        "context": [{"type": "element", "expression": "Patient"}],
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension"},
            {"id": "Extension.extension:species", "path": "Extension.extension", "sliceName": "species", "min": 1, "max": "1"},
            {"id": "Extension.extension:species.url", "path": "Extension.extension.url", "fixedUri": "species"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://example.org/StructureDefinition/animal"},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}
        ]}
    });
    let mut c = Conformance::new();
    c.add(animal);
    let check = |parts: Value| -> Vec<String> {
        let patient = json!({"resourceType": "Patient",
            "extension": [{"url": "http://example.org/StructureDefinition/animal", "extension": parts}]});
        validate(&c, &patient, &[])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.diagnostics)
            .collect()
    };
    assert_eq!(check(json!([{"url": "species", "valueString": "dog"}])), Vec::<String>::new());
    let missing = check(json!([{"url": "http://example.org/other", "valueString": "x"}]));
    assert!(missing.iter().any(|e| e.contains("species") && e.contains("at least 1")), "{missing:?}");
    let unknown = check(json!([{"url": "species", "valueString": "dog"}, {"url": "species-x", "valueString": "x"}]));
    assert!(unknown.iter().any(|e| e.contains("`species-x` is not defined")), "{unknown:?}");
}

#[test]
fn extension_contexts_mean_what_they_name_and_context_invariants_hold() {
    let definition = |url: &str, context: Value, invariants: Value| {
        json!({
            "resourceType": "StructureDefinition", "url": url, "name": "X", "status": "active",
            "kind": "complex-type", "abstract": false, "type": "Extension", "context": context,
            "contextInvariant": invariants,
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
            "differential": {"element": [{"id": "Extension", "path": "Extension"},
                {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "string"}]}]}
        })
    };
    let mut c = Conformance::new();
    c.add(definition(
        "http://example.org/on-resource",
        json!([{"type": "element", "expression": "DomainResource"}]),
        json!([]),
    ));
    c.add(definition(
        "http://example.org/inactive-only",
        json!([{"type": "element", "expression": "Patient"}]),
        json!(["Patient.active.not()"]),
    ));
    let errors = |patient: Value| -> usize {
        validate(&c, &patient, &[]).into_iter().filter(|i| i.severity == Severity::Error).count()
    };
    let ext = |url: &str| json!([{"url": url, "valueString": "x"}]);
    assert_eq!(errors(json!({"resourceType": "Patient", "extension": ext("http://example.org/on-resource")})), 0);
    assert_eq!(
        errors(
            json!({"resourceType": "Patient", "name": [{"family": "F", "extension": ext("http://example.org/on-resource")}]})
        ),
        1
    );
    let inactive =
        json!({"resourceType": "Patient", "active": false, "extension": ext("http://example.org/inactive-only")});
    assert_eq!(errors(inactive), 0);
    let active =
        json!({"resourceType": "Patient", "active": true, "extension": ext("http://example.org/inactive-only")});
    assert_eq!(errors(active), 1);
}

#[test]
fn slicing_by_the_type_of_a_resolved_reference() {
    let list = json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/typed-list",
        "name": "TypedList", "status": "active", "kind": "resource", "abstract": false, "type": "List",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/List", "derivation": "constraint",
        "differential": {"element": [
            {"id": "List.entry", "path": "List.entry",
             "slicing": {"discriminator": [{"type": "type", "path": "item.resolve()"}], "rules": "closed"}},
            {"id": "List.entry:condition", "path": "List.entry", "sliceName": "condition", "min": 1, "max": "1"},
            {"id": "List.entry:condition.item", "path": "List.entry.item", "type": [{"code": "Reference",
                "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Condition"]}]},
            {"id": "List.entry:observation", "path": "List.entry", "sliceName": "observation", "min": 1, "max": "1"},
            {"id": "List.entry:observation.item", "path": "List.entry.item", "type": [{"code": "Reference",
                "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Observation"]}]}
        ]}
    });
    let mut c = Conformance::new();
    c.add(list);
    let errors = |items: [&str; 2]| -> usize {
        let resource = json!({"resourceType": "List", "status": "current", "mode": "working",
            "contained": [{"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}],
            "entry": [{"item": {"reference": items[0]}}, {"item": {"reference": items[1]}}]});
        validate(&c, &resource, &["http://example.org/StructureDefinition/typed-list"])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    };
    assert_eq!(errors(["Condition/c", "#o"]), 0);
    assert!(errors(["Condition/c", "Condition/d"]) > 0);
}

#[test]
fn an_invariant_on_an_element_the_profile_does_not_type_sees_the_core_type() {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/gp-typed",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": "Patient.generalPractitioner", "path": "Patient.generalPractitioner",
            "constraint": [{"key": "gp-1", "severity": "error", "human": "a Reference",
                "expression": "%context.type().name = 'Reference'"}]}]}
    }));
    let patient = json!({"resourceType": "Patient", "generalPractitioner": [{"reference": "Practitioner/1"}]});
    let issues = validate(&c, &patient, &["http://example.org/StructureDefinition/gp-typed"]);
    assert!(issues.iter().all(|i| i.severity != Severity::Error), "{issues:?}");
}

#[test]
fn a_discriminator_path_must_name_an_element_of_the_sliced_element() {
    let sliced = |path: &str, discriminator: &str| {
        json!({"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/sliced",
        "name": "Sliced", "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": path, "path": path,
            "slicing": {"discriminator": [{"type": "value", "path": discriminator}], "rules": "open"}}]}})
    };
    let c = Conformance::new();
    for (path, discriminator) in [
        ("Patient.identifier", "system"),
        ("Patient.extension", "url"),
        ("Patient.contact", "relationship.coding.code"),
        ("Patient.extension", "value"),
        ("Patient.identifier", "$this"),
        ("Patient.generalPractitioner", "resolve()"),
    ] {
        assert_eq!(
            super::check_structure_definition(&c, &sliced(path, discriminator)),
            vec![],
            "{path} {discriminator}"
        );
    }
    let found = super::check_structure_definition(&c, &sliced("Patient.extension", "type"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].diagnostics.contains("discriminator path `type`"), "{found:?}");
}

#[test]
fn a_slice_typed_with_an_element_of_a_library_profile_is_told_and_checked_by_that_element() {
    let library = "http://example.org/StructureDefinition/sections";
    let section = |name: &str, code: &str| {
        json!([
            {"id": format!("Composition.section:{name}"), "path": "Composition.section", "sliceName": name},
            {"id": format!("Composition.section:{name}.title"), "path": "Composition.section.title", "min": 1},
            {"id": format!("Composition.section:{name}.code"), "path": "Composition.section.code",
             "patternCodeableConcept": {"coding": [{"system": "http://example.org/cs", "code": code}]}}
        ])
    };
    let mut elements = vec![json!({"id": "Composition.section", "path": "Composition.section",
        "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}})];
    elements.extend(section("a", "code-a").as_array().cloned().unwrap_or_default());
    elements.extend(section("b", "code-b").as_array().cloned().unwrap_or_default());
    let mut c = Conformance::new();
    c.add(json!({"resourceType": "StructureDefinition", "url": library, "status": "active", "kind": "resource",
        "abstract": false, "type": "Composition", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Composition", "differential": {"element": elements}}));
    let slice = |name: &str, element: &str| {
        json!({"id": format!("Composition.section:{name}"), "path": "Composition.section", "sliceName": name, "min": 1,
            "type": [{"code": "BackboneElement", "profile": [library], "_profile": [{"extension": [{"url":
                "http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element", "valueString": element}]}]}]})
    };
    c.add(json!({"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/document",
        "status": "active", "kind": "resource", "abstract": false, "type": "Composition", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Composition", "differential": {"element": [
            {"id": "Composition.section", "path": "Composition.section",
             "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}},
            slice("first", "Composition.section:a"), slice("second", "Composition.section:b")]}}));
    let composition = |sections: Value| {
        json!({"resourceType": "Composition", "status": "final", "type": {"text": "x"}, "date": "2020-01-01",
            "author": [{"display": "x"}], "title": "x", "section": sections})
    };
    let errors = |r: &Value| -> Vec<String> {
        validate(&c, r, &["http://example.org/StructureDefinition/document"])
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
            .collect()
    };
    let a = json!({"title": "A", "code": {"coding": [{"system": "http://example.org/cs", "code": "code-a"}]}});
    let b = json!({"title": "B", "code": {"coding": [{"system": "http://example.org/cs", "code": "code-b"}]}});
    assert_eq!(errors(&composition(json!([a, b]))), Vec::<String>::new());
    let only_a = errors(&composition(json!([a])));
    assert!(only_a.len() == 1 && only_a[0].contains("section:second"), "{only_a:?}");
    let untitled = json!({"code": {"coding": [{"system": "http://example.org/cs", "code": "code-b"}]}});
    let found = errors(&composition(json!([a, untitled])));
    assert!(found.iter().any(|e| e.contains("title")), "the library element's rules apply: {found:?}");
}

#[test]
fn value_alternatives_name_the_only_extensions_that_may_stand_in_for_a_missing_value() {
    let mut c = Conformance::new();
    c.add(json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/alternatives",
        "status": "active", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"path": "Patient.active", "extension": [{"url":
            "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives",
            "valueCanonical": "http://hl7.org/fhir/StructureDefinition/data-absent-reason"}]}]}
    }));
    let errors = |r: &Value| -> usize {
        validate(&c, r, &["http://example.org/StructureDefinition/alternatives"])
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    };
    let standing_in =
        |url: &str| json!({"resourceType": "Patient", "_active": {"extension": [{"url": url, "valueCode": "masked"}]}});
    assert_eq!(errors(&json!({"resourceType": "Patient", "active": true})), 0);
    assert_eq!(errors(&standing_in("http://hl7.org/fhir/StructureDefinition/data-absent-reason")), 0);
    assert_eq!(errors(&standing_in("http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor")), 1);
}
