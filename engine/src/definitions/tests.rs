//! Unit tests of the embedded R4 definitions and their lookups.

#![expect(clippy::expect_used, reason = "a test fails by panicking")]

use super::*;

fn defs() -> &'static Definitions {
    Definitions::r4()
}

#[test]
fn resource_types_are_the_concrete_r4_ones() {
    let types: Vec<&str> = defs().resource_types().collect();
    assert_eq!(types.len(), 146);
    assert!(types.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(defs().is_resource_type("Patient"));
    assert!(defs().is_resource_type("Parameters"));
    assert!(!defs().is_resource_type("DomainResource"));
    assert!(!defs().is_resource_type("Resource"));
    assert!(!defs().is_resource_type("HumanName"));
    assert!(!defs().is_resource_type("patient"));
}

#[test]
fn types_have_kind_base_and_regex() {
    let patient = defs().type_def("Patient").expect("Patient");
    assert_eq!(patient.kind, Kind::Resource);
    assert_eq!(patient.base.as_deref(), Some("DomainResource"));
    assert!(defs().type_def("DomainResource").expect("DomainResource").is_abstract);
    let date = defs().type_def("date").expect("date");
    assert_eq!(date.kind, Kind::PrimitiveType);
    assert!(date.regex.as_deref().is_some_and(|r| r.starts_with("([0-9]")));
    assert!(defs().type_def("SimpleQuantity").is_none(), "profiles are left out");
    assert!(defs().elements_of("Patient").iter().any(|e| e.path == "Patient.contact.name"));
}

#[test]
fn element_lookup_crosses_types_choices_and_content_references() {
    let d = defs();
    let given = d.element("Patient", "name.given").expect("given");
    assert_eq!(given.element.path, "HumanName.given");
    assert_eq!(given.type_code, Some("string"));
    assert_eq!(given.element.max, None);

    let vq = d.element("Observation", "valueQuantity").expect("valueQuantity");
    assert_eq!(vq.element.path, "Observation.value[x]");
    assert_eq!(vq.type_code, Some("Quantity"));
    assert_eq!(d.element("Observation", "valueQuantity.unit").expect("unit").element.path, "Quantity.unit");
    assert!(d.element("Observation", "value[x]").is_some_and(|m| m.type_code.is_none()));
    assert!(d.element("Observation", "valueFoo").is_none());

    let nested = d.element("Questionnaire", "item.item.linkId").expect("linkId");
    assert_eq!(nested.element.path, "Questionnaire.item.linkId");
    assert_eq!(nested.element.min, 1);
    let item_item = d.element("Questionnaire", "item.item").expect("item.item");
    assert_eq!(item_item.element.content_reference.as_deref(), Some("#Questionnaire.item"));

    assert_eq!(d.element("Patient", "id").and_then(|m| m.type_code), Some("id"));
    assert!(d.element("Patient", "name.id").is_some_and(|m| m.element.system));
    assert!(d.element("Patient", "nmae").is_none());
    assert!(d.element("Patient", "birthDate.value").is_none());
    assert_eq!(d.element_by_path("Observation.value[x]").map(|e| e.types.len()), Some(11));
}

#[test]
fn search_params_include_inherited_ones() {
    let d = defs();
    let birthdate = d.search_param("Patient", "birthdate").expect("birthdate");
    assert_eq!(birthdate.kind, SearchParamType::Date);
    assert_eq!(birthdate.expression.as_deref(), Some("Patient.birthDate | Person.birthDate | RelatedPerson.birthDate"));
    assert!(d.search_param("Patient", "_id").is_some(), "from Resource");
    assert!(d.search_param("Patient", "_text").is_some(), "from DomainResource");
    assert!(d.search_param("Bundle", "_text").is_none(), "Bundle is not a DomainResource");
    assert!(d.search_param("Bundle", "_lastUpdated").is_some());
    let codes: Vec<&str> = d.search_params("Patient").map(|p| p.code.as_str()).collect();
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    assert!(codes.contains(&"general-practitioner"));
    let subject = d.search_param("Observation", "subject").expect("subject");
    assert_eq!(subject.kind, SearchParamType::Reference);
    assert!(subject.target.iter().any(|t| t == "Patient"));
    let composite = d.search_param("Observation", "code-value-quantity").expect("composite");
    assert_eq!(composite.component.len(), 2);
    assert!(d.search_param_by_url(&composite.component[0].definition).is_some());
    assert_eq!(d.search_params("NoSuchType").count(), 0);
}

#[test]
fn expression_for_keeps_the_branches_of_one_type() {
    let d = defs();
    let clinical_patient = d.search_param("CarePlan", "patient").expect("CarePlan patient");
    assert_eq!(
        clinical_patient.expression_for("CarePlan").as_deref(),
        Some("CarePlan.subject.where(resolve() is Patient)")
    );
    assert_eq!(clinical_patient.expression_for("Patient"), None);
    let id = d.search_param("Patient", "_id").expect("_id");
    assert_eq!(id.expression_for("Patient").as_deref(), Some("Resource.id"));
    let value = d.search_param("Observation", "value-quantity").expect("value-quantity");
    assert_eq!(
        value.expression_for("Observation").as_deref(),
        Some("(Observation.value as Quantity) | (Observation.value as SampledData)")
    );
    let name = d.search_param("InsurancePlan", "name").expect("InsurancePlan name");
    assert_eq!(name.expression_for("InsurancePlan").as_deref(), Some("name | alias"));
}

#[test]
fn compartments_map_resource_types_to_params() {
    let d = defs();
    let codes: Vec<&str> = d.compartments().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["Device", "Encounter", "Patient", "Practitioner", "RelatedPerson"]);
    let patient = d.compartment("Patient").expect("Patient compartment");
    assert_eq!(patient.params("Observation"), ["subject", "performer"]);
    assert!(patient.params("Organization").is_empty());
    assert!(patient.resources().count() > 50);
}
