use serde_json::json;

use super::check;
use crate::definitions::Definitions;

fn messages(resource: serde_json::Value) -> Vec<String> {
    check(Definitions::r4(), &resource)
        .into_iter()
        .map(|i| format!("{} {}", i.expression.unwrap_or_default(), i.diagnostics))
        .collect()
}

#[test]
fn codes_outside_a_required_value_set_are_reported() {
    assert_eq!(messages(json!({"resourceType": "Patient", "gender": "female"})), Vec::<String>::new());
    let found = messages(json!({"resourceType": "Patient", "gender": "robot", "contact": [{"gender": "x"}]}));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("Patient.gender `robot` is not in the value set"), "{found:?}");
    assert!(found[1].starts_with("Patient.contact[0].gender `x`"), "{found:?}");
    // A data type's binding (HumanName.use), inside a contained resource.
    let found = messages(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "name": [{"use": "nickname"}, {"use": "everyday"}]}]}));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("Observation.contained[0].name[1].use `everyday`"), "{found:?}");
}

#[test]
fn codings_and_concepts_need_one_code_of_the_value_set() {
    let status = |coding: serde_json::Value| {
        messages(json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"},
            "clinicalStatus": {"coding": [coding]}}))
    };
    let system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
    assert!(status(json!({"system": system, "code": "active"})).is_empty());
    assert_eq!(status(json!({"system": system, "code": "sleeping"})).len(), 1);
    assert_eq!(status(json!({"system": "http://other", "code": "active"})).len(), 1);
    assert!(status(json!({"code": "whatever"})).is_empty(), "no system: nothing to check");
}

#[test]
fn value_sets_that_cannot_be_expanded_are_not_checked() {
    // Attachment.contentType is bound (required) to MIME types (urn:ietf:bcp:13), not loaded.
    let doc = json!({"resourceType": "DocumentReference", "status": "current",
        "content": [{"attachment": {"contentType": "application/x-made-up"}}]});
    assert!(messages(doc).is_empty());
}

#[test]
fn displays_are_checked_against_loaded_code_systems() {
    let contact = |display: &str| {
        json!({"resourceType": "Patient", "contact": [{"relationship": [{"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": display}]}]}],
            "maritalStatus": {"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "anything"}]}})
    };
    let displays = |r: &serde_json::Value| super::displays(Definitions::r4(), r);
    assert!(displays(&contact("Emergency Contact")).is_empty());
    assert!(displays(&contact("emergency  contact")).is_empty(), "case and spaces do not matter");
    let wrong = displays(&contact("alt-display"));
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert_eq!(wrong[0].expression.as_deref(), Some("Patient.contact[0].relationship[0].coding[0].display"));
    // Never on writes: the base validation does not report it.
    assert!(check(Definitions::r4(), &contact("alt-display")).is_empty());
}
