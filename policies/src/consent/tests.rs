use serde_json::{Value, json};

use super::*;

fn principal(claims: Value) -> Principal {
    Principal::from_claims(&claims, "patient")
}

fn consent(provision: Value) -> Value {
    json!({"resourceType": "Consent", "id": "c1", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"}, "provision": provision})
}

fn verdict(consent: &Value, who: &Principal, action: Action, purpose: &str, resource: &Value) -> Verdict {
    let context = RequestContext {
        epoch_seconds: 1_780_000_000, // 2026-05-28
        purpose_of_use: purpose.to_owned(),
        ..RequestContext::default()
    };
    let parsed: Vec<Consent> = parse(consent).into_iter().collect();
    evaluate(&parsed, who, action, &context, resource).0
}

fn lab() -> Value {
    json!({"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "category": [{"coding": [{"code": "laboratory"}]}]})
}

#[test]
fn only_active_privacy_consents_about_a_patient_count() {
    let deny = consent(json!({"type": "deny"}));
    assert!(parse(&deny).is_some_and(|c| c.patient == "p1"));
    let mut draft = deny.clone();
    draft["status"] = json!("draft");
    assert!(parse(&draft).is_none());
    let mut research = deny.clone();
    research["scope"] = json!({"coding": [{"code": "research"}]});
    assert!(parse(&research).is_none());
    let mut nobody = deny.clone();
    nobody["patient"] = json!({"reference": "Group/g"});
    assert!(parse(&nobody).is_none());
}

#[test]
fn a_deny_for_an_actor_applies_to_that_actor_only() {
    let c = consent(json!({"type": "permit", "provision": [
        {"type": "deny", "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Practitioner/dr-x"}}]}]}));
    let x = principal(json!({"sub": "x", "fhirUser": "https://ehr.example/fhir/Practitioner/dr-x"}));
    let y = principal(json!({"sub": "y", "fhirUser": "Practitioner/dr-y"}));
    assert_eq!(verdict(&c, &x, Action::Read, "", &lab()), Verdict::Deny);
    assert_eq!(verdict(&c, &y, Action::Read, "", &lab()), Verdict::Permit, "the root permit");
}

#[test]
fn nested_permits_are_exceptions_to_a_root_deny() {
    let c = consent(json!({"type": "deny", "provision": [
        {"type": "permit", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}]}]}));
    let anyone = principal(json!({"sub": "a"}));
    assert_eq!(verdict(&c, &anyone, Action::Read, "", &lab()), Verdict::Deny);
    assert_eq!(verdict(&c, &anyone, Action::Read, "TREAT", &lab()), Verdict::Deny);
    assert_eq!(verdict(&c, &anyone, Action::Read, "ETREAT", &lab()), Verdict::Permit);
}

#[test]
fn class_code_security_label_data_and_action() {
    let anyone = principal(json!({"sub": "a"}));
    let by_class = consent(
        json!({"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}),
    );
    assert_eq!(verdict(&by_class, &anyone, Action::Read, "", &lab()), Verdict::Deny);
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    assert_eq!(verdict(&by_class, &anyone, Action::Read, "", &patient), Verdict::None);
    let by_code =
        consent(json!({"type": "deny", "code": [{"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}]}));
    assert_eq!(verdict(&by_code, &anyone, Action::Read, "", &lab()), Verdict::Deny);
    assert_eq!(verdict(&by_code, &anyone, Action::Read, "", &patient), Verdict::None);
    let by_data = consent(
        json!({"type": "deny", "data": [{"meaning": "instance", "reference": {"reference": "Observation/o1"}}]}),
    );
    assert_eq!(verdict(&by_data, &anyone, Action::SearchType, "", &lab()), Verdict::Deny);
    assert_eq!(verdict(&by_data, &anyone, Action::Read, "", &patient), Verdict::None);
    let by_label = consent(json!({"type": "deny", "securityLabel": [{"code": "R"}]}));
    assert_eq!(verdict(&by_label, &anyone, Action::Read, "", &lab()), Verdict::None);
    let no_corrections = consent(json!({"type": "deny", "action": [{"coding": [{"code": "correct"}]}]}));
    assert_eq!(verdict(&no_corrections, &anyone, Action::Read, "", &lab()), Verdict::None);
    assert_eq!(verdict(&no_corrections, &anyone, Action::Update, "", &lab()), Verdict::Deny);
}

#[test]
fn periods_bound_a_rule() {
    let anyone = principal(json!({"sub": "a"}));
    let past = consent(json!({"type": "deny", "period": {"start": "2020-01-01", "end": "2021-01-01"}}));
    assert_eq!(verdict(&past, &anyone, Action::Read, "", &lab()), Verdict::None);
    let now = consent(json!({"type": "deny", "period": {"start": "2026-01-01T00:00:00Z"}}));
    assert_eq!(verdict(&now, &anyone, Action::Read, "", &lab()), Verdict::Deny);
}

#[test]
fn what_cannot_be_checked_denies_and_never_permits() {
    let anyone = principal(json!({"sub": "a", "fhirUser": "Practitioner/1"}));
    let org_deny = consent(json!({"type": "deny", "actor": [{"reference": {"reference": "Organization/o"}}]}));
    assert_eq!(verdict(&org_deny, &anyone, Action::Read, "", &lab()), Verdict::Deny);
    let org_permit = consent(json!({"type": "permit", "actor": [{"reference": {"reference": "Organization/o"}}]}));
    assert_eq!(verdict(&org_permit, &anyone, Action::Read, "", &lab()), Verdict::None);
    let period = consent(json!({"type": "deny", "dataPeriod": {"start": "2020-01-01"}}));
    assert_eq!(verdict(&period, &anyone, Action::Read, "", &lab()), Verdict::Deny);
    let unreadable = consent(json!({"type": "maybe"}));
    assert_eq!(verdict(&unreadable, &anyone, Action::Read, "", &lab()), Verdict::Deny, "fail closed");
    let mut deep = json!({"type": "permit"});
    for _ in 0..20 {
        deep = json!({"type": "permit", "provision": [deep]});
    }
    assert_eq!(verdict(&consent(deep), &anyone, Action::Read, "", &lab()), Verdict::Deny, "too deep: fail closed");
}

#[test]
fn identifiers_name_clients_tenants_roles_and_groups() {
    let app = principal(json!({"sub": "a", "azp": "analytics", "tid": "t1", "roles": ["research"], "groups": ["g1"]}));
    for (system, value) in [
        ("urn:fhirgate:client-id", "analytics"),
        ("urn:fhirgate:tenant", "t1"),
        ("urn:fhirgate:role", "research"),
        ("urn:fhirgate:group", "g1"),
    ] {
        let c = consent(
            json!({"type": "deny", "actor": [{"reference": {"identifier": {"system": system, "value": value}}}]}),
        );
        assert_eq!(verdict(&c, &app, Action::Read, "", &lab()), Verdict::Deny, "{system}");
        let other = principal(json!({"sub": "b", "azp": "x", "tid": "t2"}));
        assert_eq!(verdict(&c, &other, Action::Read, "", &lab()), Verdict::None, "{system}");
    }
}

#[test]
fn between_consents_a_deny_wins() {
    let anyone = principal(json!({"sub": "a"}));
    let mut permit = consent(json!({"type": "permit"}));
    permit["id"] = json!("c2");
    let consents: Vec<Consent> = [permit, consent(json!({"type": "deny"}))].iter().filter_map(parse).collect();
    let (v, by) = evaluate(&consents, &anyone, Action::Read, &RequestContext::default(), &lab());
    assert_eq!((v, by), (Verdict::Deny, vec!["c1".to_owned()]));
}

#[test]
fn only_sets_that_read_the_consent_load_consents() {
    let reads = |text: &str| {
        let policy = cedar_policy::Policy::parse(None, text).ok();
        read_by(policy.iter())
    };
    assert!(reads(r#"forbid (principal, action, resource) when { resource.consent == "deny" };"#));
    assert!(reads(r#"permit (principal, action, resource) when { resource has consent };"#));
    assert!(reads(
        r#"permit (principal, action, resource) when { context.breakGlass || resource.consent != "deny" };"#
    ));
    assert!(!reads(r#"permit (principal in Fhir::Role::"globalAdmin", action, resource);"#));
    assert!(!reads(r#"permit (principal, action, resource) when { resource.patients.contains("consent") };"#));
}
