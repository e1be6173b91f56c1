//! Unit tests of validation: known-good and known-bad resources and the issues they give.

use serde_json::{Value, json};

use super::validate;
use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType};

fn issues(resource: Value) -> Vec<Issue> {
    validate(Definitions::r4(), &resource)
}

/// `(path, message)` of each issue.
fn found(resource: Value) -> Vec<(String, String)> {
    issues(resource).into_iter().map(|i| (i.expression.unwrap_or_default(), i.diagnostics)).collect()
}

fn one(path: &str, message: &str) -> Vec<(String, String)> {
    vec![(path.to_owned(), message.to_owned())]
}

#[test]
fn a_valid_patient_has_no_issues() {
    let patient = json!({
        "resourceType": "Patient",
        "id": "example-1",
        "meta": {"versionId": "1", "lastUpdated": "2020-01-01T00:00:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "active": true,
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "multipleBirthInteger": 2,
        "contact": [{"name": {"family": "du Marché"}, "telecom": [{"system": "phone", "value": "+33 (237) 998327"}]}],
        "managingOrganization": {"reference": "Organization/1"}
    });
    assert_eq!(found(patient), vec![]);
}

#[test]
fn resource_type_must_be_known_and_concrete() {
    assert_eq!(found(json!({"id": "1"})), one("", "missing `resourceType`"));
    assert_eq!(found(json!({"resourceType": "Patinet"})), one("", "unknown resource type `Patinet`"));
    assert_eq!(found(json!({"resourceType": "DomainResource"})), one("", "resource type `DomainResource` is abstract"));
    assert_eq!(found(json!({"resourceType": "HumanName"})), one("", "unknown resource type `HumanName`"));
    assert_eq!(found(json!({"resourceType": 5})), one("", "`resourceType` must be a string, found a number"));
    assert_eq!(found(json!([1])), one("", "a resource must be a JSON object, found an array"));
    assert_eq!(found(json!({"resourceType": "Patient"})), vec![], "a bare resource is valid");
}

#[test]
fn id_syntax() {
    assert_eq!(found(json!({"resourceType": "Patient", "id": "a_b"})), one("Patient.id", "invalid id `a_b`"));
    assert_eq!(found(json!({"resourceType": "Patient", "id": "x".repeat(65)})).len(), 1);
    assert_eq!(found(json!({"resourceType": "Patient", "id": "A-1.b"})), vec![]);
}

#[test]
fn unknown_elements_are_rejected() {
    assert_eq!(
        found(json!({"resourceType": "Patient", "nmae": [{"family": "x"}]})),
        one("Patient.nmae", "unknown element `nmae`")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"family": "x"}, {"famliy": "y"}]})),
        one("Patient.name[1].famliy", "unknown element `famliy`")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "_name": {}})),
        one("Patient._name", "unknown element `_name`"),
        "no extension sibling for complex elements"
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "deceasedString": "yes"})),
        one("Patient.deceasedString", "unknown element `deceasedString`"),
        "string is not one of deceased[x]'s types"
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"_id": {"extension": []}, "id": "a"}]})),
        one("Patient.name[0]._id", "unknown element `_id`"),
        "Element.id has no extension sibling"
    );
}

#[test]
fn choice_types() {
    let obs = |value: Value| {
        let mut o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
        if let (Some(o), Some(v)) = (o.as_object_mut(), value.as_object()) {
            o.extend(v.clone());
        }
        o
    };
    assert_eq!(found(obs(json!({"valueQuantity": {"value": 1.5, "unit": "mg"}}))), vec![]);
    assert_eq!(found(obs(json!({"valueString": "x", "_valueString": {"id": "a"}}))), vec![]);
    assert_eq!(
        found(obs(json!({"valueQuantity": {"value": "1.5"}}))),
        one("Observation.valueQuantity.value", "a decimal must be a JSON number, found string `1.5`")
    );
    assert_eq!(
        found(obs(json!({"valueString": "x", "valueBoolean": true}))),
        one(
            "Observation.valueBoolean",
            "only one of `valueString` and `valueBoolean` is allowed (`value[x]` is a choice)"
        )
    );
}

#[test]
fn primitive_formats_and_json_types() {
    assert_eq!(
        found(json!({"resourceType": "Patient", "birthDate": "1974-02-30"})),
        one("Patient.birthDate", "invalid date `1974-02-30`")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "active": "true"})),
        one("Patient.active", "a boolean must be a JSON boolean, found string `true`")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"given": ["a", ""]}]})),
        one("Patient.name[0].given[1]", "empty string is not a valid string")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "multipleBirthInteger": 1.5})),
        one("Patient.multipleBirthInteger", "invalid integer `1.5`")
    );
}

#[test]
fn cardinality() {
    assert_eq!(
        found(json!({"resourceType": "Patient", "gender": ["male"]})),
        one("Patient.gender", "`gender` must be a single value, not an array")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": {"family": "x"}})),
        one("Patient.name", "`name` must be an array")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"given": "x"}]})),
        one("Patient.name[0].given", "`given` must be an array")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "managingOrganization": [{"reference": "Organization/1"}]})),
        one("Patient.managingOrganization", "`managingOrganization` must be a single value, not an array")
    );
    assert_eq!(
        found(json!({"resourceType": "Observation", "code": {"text": "x"}})),
        one("Observation.status", "missing required element `status`")
    );
    // Required only when the parent is present.
    assert_eq!(
        found(json!({"resourceType": "Patient", "link": [{"type": "seealso"}]})),
        one("Patient.link[0].other", "missing required element `other`")
    );
    assert_eq!(found(json!({"resourceType": "Patient"})), vec![]);
    // A required primitive may be given by its extension only.
    assert_eq!(
        found(
            json!({"resourceType": "Observation", "code": {"text": "x"}, "_status": {"extension": [{"url": "http://x", "valueCode": "y"}]}})
        ),
        vec![]
    );
    let extension_issues = found(json!({"resourceType": "Patient", "extension": [{"valueString": "x"}]}));
    assert_eq!(extension_issues, one("Patient.extension[0].url", "missing required element `url`"));
}

#[test]
fn empty_values_and_nulls() {
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": []})),
        one("Patient.name", "empty array is not allowed")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{}]})),
        one("Patient.name[0]", "empty object is not allowed")
    );
    assert_eq!(found(json!({"resourceType": "Patient", "gender": null})), one("Patient.gender", "null is not allowed"));
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"given": ["a", null]}]})),
        one("Patient.name[0].given[1]", "null is not allowed without an extension")
    );
}

#[test]
fn primitive_extension_siblings() {
    let ext = json!({"extension": [{"url": "http://example.org/x", "valueString": "y"}]});
    assert_eq!(found(json!({"resourceType": "Patient", "_birthDate": ext})), vec![], "extension without value");
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"given": ["a", null, "c"], "_given": [null, ext, null]}]})),
        vec![]
    );
    assert_eq!(found(json!({"resourceType": "Patient", "name": [{"_given": [ext]}]})), vec![], "extensions only");
    assert_eq!(
        found(json!({"resourceType": "Patient", "name": [{"given": ["a", "b"], "_given": [null]}]})),
        one("Patient.name[0].given", "`_given` has 1 items but `given` has 2: they must align")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "birthDate": "2000", "_birthDate": [ext]})),
        one("Patient.birthDate", "`_birthDate` must be a JSON object, found an array")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "_birthDate": {"extension": [{"url": "http://x", "valueDate": "x"}]}})),
        one("Patient.birthDate.extension[0].valueDate", "invalid date `x`")
    );
    assert_eq!(
        found(json!({"resourceType": "Patient", "_birthDate": {"value": "2000"}})),
        one("Patient.birthDate.value", "unknown element `value`")
    );
}

#[test]
fn nested_resources_are_validated_as_their_own_type() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:8c6c1d62-2b4c-4ac5-a6f5-1d3c2e9e0a01",
             "resource": {"resourceType": "Patient", "birthDate": "1999-99"}},
            {"fullUrl": "urn:uuid:8c6c1d62-2b4c-4ac5-a6f5-1d3c2e9e0a02", "resource": {"resourceType": "Nope"}},
            {"fullUrl": "urn:uuid:8c6c1d62-2b4c-4ac5-a6f5-1d3c2e9e0a03",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "contained": [{"resourceType": "Patient", "gender": ["x"]}]}}
        ]
    });
    assert_eq!(
        found(bundle),
        vec![
            ("Bundle.entry[0].resource.birthDate".to_owned(), "invalid date `1999-99`".to_owned()),
            ("Bundle.entry[1].resource".to_owned(), "unknown resource type `Nope`".to_owned()),
            (
                "Bundle.entry[2].resource.contained[0].gender".to_owned(),
                "`gender` must be a single value, not an array".to_owned()
            ),
        ]
    );
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "x": 1}}]});
    assert_eq!(found(params), one("Parameters.parameter[0].resource.x", "unknown element `x`"));
}

#[test]
fn content_references_are_followed() {
    let questionnaire = json!({
        "resourceType": "Questionnaire", "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"type": "string"}]}]
    });
    assert_eq!(found(questionnaire), one("Questionnaire.item[0].item[0].linkId", "missing required element `linkId`"));
}

#[test]
fn all_problems_are_reported() {
    let all = issues(json!({"resourceType": "Patient", "id": "!", "nmae": [], "gender": 1, "birthDate": "x"}));
    assert_eq!(all.len(), 4);
    assert!(all.iter().any(|i| i.code == IssueType::Structure));
    assert!(all.iter().any(|i| i.code == IssueType::Value));
}

#[test]
fn deep_nesting_is_cut_off() {
    let mut extension = json!({"url": "http://x", "valueString": "leaf"});
    for _ in 0..200 {
        extension = json!({"url": "http://x", "extension": [extension]});
    }
    let found = issues(json!({"resourceType": "Patient", "extension": [extension]}));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].diagnostics, "nesting deeper than 128 levels is not allowed");
    assert_eq!(found[0].code, IssueType::TooCostly);
}

#[test]
fn a_primitive_with_only_an_id_breaks_ele_1() {
    let message = "ele-1: a primitive element must have a value or extensions (an `id` alone is not enough)";
    let only_id = json!({"resourceType": "Patient", "_implicitRules": {"id": "i1"}});
    assert_eq!(found(only_id), one("Patient.implicitRules", message));
    let in_array = json!({"resourceType": "Patient", "name": [{"given": ["a", null], "_given": [null, {"id": "g"}]}]});
    assert_eq!(found(in_array), one("Patient.name[0].given[1]", message));
    let with_value =
        json!({"resourceType": "Patient", "implicitRules": "http://a.example", "_implicitRules": {"id": "i1"}});
    assert_eq!(found(with_value), vec![]);
    let ext = json!({"url": "http://example.org/x", "valueBoolean": true});
    let with_extension = json!({"resourceType": "Patient", "_implicitRules": {"id": "i1", "extension": [ext]}});
    assert_eq!(found(with_extension), vec![]);
}
