//! Policies over search-parameter attributes of the generated entity types: validated against
//! the generated schema, decided on the values the engine's index extraction gives, absent or
//! empty before the data is known, and failing closed when they were not extracted.

use fhirgate_policies::{Action, AuthzRequest, Error, PolicyEngine, PolicySource, Principal, RequestContext, Target};
use serde_json::{Value, json};

fn source(text: &str) -> PolicySource {
    PolicySource { set: "t".into(), file: "a.cedar".into(), text: text.into() }
}

fn request(action: Action, resource_type: &str, id: &str) -> AuthzRequest {
    let target = Target { resource_type: resource_type.into(), id: id.into(), operation: String::new() };
    let context = RequestContext { epoch_seconds: 1_767_225_600, ..RequestContext::default() }; // 2026-01-01
    AuthzRequest::type_level(action, target, context)
}

fn reader() -> Principal {
    Principal::from_claims(&json!({"sub": "u", "roles": ["reader"]}), "patient")
}

fn allowed(engine: &PolicyEngine, resource: &Value) -> Result<bool, Error> {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    let type_level = request(Action::Read, resource_type, "x");
    Ok(engine.decide(&reader(), &engine.with_data(&type_level, resource))?.allowed)
}

const PERMIT_READER: &str = r#"@id("reader") permit (principal in Fhir::Role::"reader", action, resource);"#;

#[test]
fn attributes_need_the_type_and_problems_are_located() {
    let untyped =
        PolicyEngine::load(&[source("permit (principal, action, resource)\nwhen { resource.code.contains(\"x\") };")]);
    let shown = match untyped {
        Err(Error::Invalid(problems)) => problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        other => format!("`code` is not an attribute of every type, yet: {other:?}"),
    };
    assert!(shown.contains("a.cedar:2:"), "{shown}");
    assert_eq!(shown.lines().count(), 1, "one problem per place, not one per entity type: {shown}");
    let misspelt = PolicyEngine::load(&[source(
        "permit (principal, action, resource is Fhir::Observation)\nwhen { resource.cod.contains(\"x\") };",
    )]);
    assert!(matches!(misspelt, Err(Error::Invalid(_))), "strict validation catches misspelt attributes");
    let typed = PolicyEngine::load(&[source(
        r#"permit (principal, action, resource)
           when { resource is Fhir::Observation && resource.code.contains("x") && resource has "value-quantity" && resource["value-quantity"].min.lessThan(decimal("1.5")) };"#,
    )]);
    assert!(typed.is_ok(), "{typed:?}");
}

#[test]
fn tokens_quantities_and_dates_decide() -> Result<(), Error> {
    let engine = PolicyEngine::load(&[
        source(PERMIT_READER),
        source(
            r#"
@id("hiv")
forbid (principal, action, resource is Fhir::Observation)
when { resource.code.containsAny(["http://loinc.org|7917-8"]) };
@id("high")
forbid (principal, action, resource is Fhir::Observation)
when { resource has "value-quantity" && resource["value-quantity"].max.greaterThan(decimal("100.0"))
       && resource["value-quantity"].units.contains("mg/dL") };
@id("minors")
forbid (principal, action, resource is Fhir::Patient)
when { resource has birthdate && resource.birthdate.end > context.time.epochSeconds - 18 * 31557600 };
@id("org")
forbid (principal, action, resource is Fhir::Encounter)
when { resource["service-provider"].contains("Organization/secret") || resource.typeParam.contains("urn:x|hidden") };
"#,
        ),
    ])?;
    let obs = |code: &str, value: f64| {
        json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mg/dL"}})
    };
    assert!(!allowed(&engine, &obs("7917-8", 1.0))?, "the code decides");
    assert!(allowed(&engine, &obs("15074-8", 99.5))?);
    assert!(!allowed(&engine, &obs("15074-8", 100.00001))?, "the value decides, rounded outwards");
    let adult = json!({"resourceType": "Patient", "birthDate": "1970-05-01"});
    let minor = json!({"resourceType": "Patient", "birthDate": "2015"});
    let unknown = json!({"resourceType": "Patient"});
    assert!(allowed(&engine, &adult)? && !allowed(&engine, &minor)? && allowed(&engine, &unknown)?);
    let encounter = |org: &str, code: &str| {
        json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
               "serviceProvider": {"reference": org}, "type": [{"coding": [{"system": "urn:x", "code": code}]}]})
    };
    assert!(allowed(&engine, &encounter("Organization/open", "visit"))?);
    assert!(!allowed(&engine, &encounter("Organization/secret", "visit"))?, "a reference decides");
    assert!(!allowed(&engine, &encounter("Organization/open", "hidden"))?, "`type` is `typeParam`");
    // Type level: no data, empty sets and absent values; no forbid applies, and no error.
    let decision = engine.decide(&reader(), &request(Action::SearchType, "Observation", ""))?;
    assert!(decision.allowed && decision.errors.is_empty() && !decision.covers_data, "{decision:?}");
    Ok(())
}

/// Data-level decisions remembered per resource content (`PolicyEngine::decide_on`) answer as
/// deciding each time does: a changed resource, another principal or a read clock is another
/// decision; a set that reads Consents refuses to decide without their verdict.
#[test]
fn remembered_data_level_decisions_follow_the_data() -> Result<(), Error> {
    let engine = PolicyEngine::load(&[
        source(PERMIT_READER),
        source(
            r#"
@id("hiv")
forbid (principal, action, resource is Fhir::Observation)
when { resource.code.containsAny(["http://loinc.org|7917-8"]) };
@id("minors")
forbid (principal, action, resource is Fhir::Patient)
when { resource has birthdate && resource.birthdate.end > context.time.epochSeconds - 18 * 31557600 };
"#,
        ),
    ])?;
    let obs = |code: &str| {
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]}})
    };
    let type_level = request(Action::Read, "Observation", "o1");
    let decide = |principal: &Principal, request: &AuthzRequest, resource: &Value| {
        engine.decide_on(principal, request, resource).map(|d| d.allowed)
    };
    for _ in 0..2 {
        assert!(decide(&reader(), &type_level, &obs("15074-8"))?);
        assert!(!decide(&reader(), &type_level, &obs("7917-8"))?, "the same id with other data is decided again");
        let stranger = Principal::from_claims(&json!({"sub": "s", "roles": ["other"]}), "patient");
        assert!(!decide(&stranger, &type_level, &obs("15074-8"))?, "another principal, another decision");
    }
    // The clock is read by `minors`: a patient who comes of age is decided on the new time.
    let patient = json!({"resourceType": "Patient", "id": "p", "birthDate": "2008-06-01"});
    let at = |epoch_seconds: i64| {
        let mut r = request(Action::Read, "Patient", "p");
        r.context.epoch_seconds = epoch_seconds;
        r
    };
    assert!(!engine.decide_on(&reader(), &at(1_767_225_600), &patient)?.allowed, "2026: a minor");
    assert!(engine.decide_on(&reader(), &at(1_893_456_000), &patient)?.allowed, "2030: an adult");
    let consents = PolicyEngine::load(&[source(
        r#"permit (principal in Fhir::Role::"reader", action, resource) unless { resource.consent == "deny" };"#,
    )])?;
    assert!(consents.decide_on(&reader(), &type_level, &obs("15074-8")).is_err(), "the Consents' verdict is needed");
    Ok(())
}

#[test]
fn attributes_not_extracted_fail_closed() -> Result<(), Error> {
    let engine = PolicyEngine::load(&[
        source(PERMIT_READER),
        source(
            r#"forbid (principal, action, resource is Fhir::Observation) when { resource.code.contains("7917-8") };"#,
        ),
    ])?;
    let resource = json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": "7917-8"}]}});
    let plain = request(Action::Read, "Observation", "o").with_data(&resource);
    assert!(engine.decide(&reader(), &plain).is_err(), "a forbid must never be skipped for want of its attributes");
    assert!(!engine.decide(&reader(), &engine.with_data(&plain, &resource))?.allowed);
    Ok(())
}

#[test]
fn generated_types_and_resource_keep_working_together() -> Result<(), Error> {
    let engine = PolicyEngine::load(&[source(
        r#"
@id("old")
permit (principal, action, resource) when { resource.type == "Patient" && resource.hasData };
@id("typed")
permit (principal, action == Fhir::Action::"read", resource is Fhir::Observation);
@id("one")
permit (principal, action, resource == Fhir::Condition::"c1");
"#,
    )])?;
    let principal = reader();
    let patient = json!({"resourceType": "Patient", "id": "p"});
    assert!(engine.decide(&principal, &engine.with_data(&request(Action::Read, "Patient", "p"), &patient))?.allowed);
    assert!(engine.decide(&principal, &request(Action::Read, "Observation", "o"))?.allowed);
    assert!(engine.decide(&principal, &request(Action::Read, "Condition", "c1"))?.allowed);
    assert!(!engine.decide(&principal, &request(Action::Read, "Condition", "c2"))?.allowed);
    let system = engine.decide(&principal, &request(Action::SearchSystem, "", ""))?;
    assert!(!system.allowed, "a system-level request is on Fhir::Resource::\"/\", no generated type");
    Ok(())
}

#[test]
fn keyword_parameters_are_read_with_brackets() {
    let bracket = PolicyEngine::load(&[source(
        r#"permit (principal, action, resource is Fhir::ValueSet) when { resource["context"].contains("x") };"#,
    )]);
    assert!(bracket.is_ok(), "{bracket:?}");
}
