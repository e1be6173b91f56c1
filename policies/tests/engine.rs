//! The policy engine on inline policies: groups, forbid over permit, default deny, determining
//! policy ids, and problems located at file:line:column.

use fhirgate_policies::{Action, AuthzRequest, Error, PolicyEngine, PolicySource, Principal, RequestContext, Target};
use serde_json::json;

fn source(file: &str, text: &str) -> PolicySource {
    PolicySource { set: "t".into(), file: file.into(), text: text.into() }
}

fn read(resource_type: &str, id: &str) -> AuthzRequest {
    let target = Target { resource_type: resource_type.into(), id: id.into(), operation: String::new() };
    AuthzRequest::type_level(Action::Read, target, RequestContext::default())
}

#[test]
fn groups_forbid_over_permit_and_default_deny() -> Result<(), Error> {
    let engine = PolicyEngine::load(&[source(
        "a.cedar",
        r#"
@id("ward")
permit (principal in Fhir::Group::"ward-3", action in Fhir::Action::"reads", resource);
@id("no-secrets")
forbid (principal, action, resource) when { resource.type == "Secret" };
permit (principal in Fhir::Role::"auditor", action == Fhir::Action::"read", resource);
"#,
    )])?;
    assert_eq!(engine.policy_ids(), ["t:a#2", "t:no-secrets", "t:ward"]);
    let nurse = Principal::from_claims(&json!({"sub": "n", "groups": ["ward-3"]}), "patient");
    let d = engine.decide(&nurse, &read("Patient", "1"))?;
    assert!(d.allowed);
    assert_eq!(d.policies, ["t:ward"]);
    let d = engine.decide(&nurse, &read("Secret", "1"))?;
    assert!(!d.allowed, "forbid wins");
    assert_eq!(d.policies, ["t:no-secrets"]);
    let stranger = Principal::from_claims(&json!({"sub": "s", "groups": ["ward-4"]}), "patient");
    let d = engine.decide(&stranger, &read("Patient", "1"))?;
    assert!(!d.allowed && d.policies.is_empty(), "default deny");
    let auditor = Principal::from_claims(&json!({"sub": "a", "roles": ["auditor"]}), "patient");
    assert_eq!(engine.decide(&auditor, &read("Patient", "1"))?.policies, ["t:a#2"], "no @id: file#n");
    Ok(())
}

#[test]
fn problems_name_file_line_and_column() -> Result<(), String> {
    let sources = [
        source("ok.cedar", "permit (principal, action, resource);\n"),
        source("typo.cedar", "permit (principal, action, resource)\nwhen {\n  principal.rolez.contains(\"x\") };\n"),
        source("syntax.cedar", "permit (principal, action resource);\n"),
    ];
    let Err(Error::Invalid(problems)) = PolicyEngine::load(&sources) else {
        return Err("the set must be rejected".into());
    };
    let located: Vec<String> = problems.iter().filter_map(|p| p.location.as_ref().map(ToString::to_string)).collect();
    assert!(located.iter().any(|l| l.starts_with("typo.cedar:3:")), "{problems:?}");
    assert!(located.iter().any(|l| l.starts_with("syntax.cedar:1:")), "{problems:?}");
    assert!(!located.iter().any(|l| l.starts_with("ok.cedar")), "{problems:?}");
    Ok(())
}

#[test]
fn the_same_id_twice_is_rejected() {
    let twice = "@id(\"x\")\npermit (principal, action, resource);\n";
    let result = PolicyEngine::load(&[source("a.cedar", twice), source("b.cedar", twice)]);
    assert!(matches!(result, Err(Error::Invalid(_))));
}

#[test]
fn a_type_level_allow_covers_the_data_only_when_no_policy_could_see_it() -> Result<(), Error> {
    let admin = Principal::from_claims(&json!({"sub": "a", "roles": ["admin"]}), "patient");
    let nurse = Principal::from_claims(&json!({"sub": "n", "roles": ["nurse"]}), "patient");
    let permits = source(
        "p.cedar",
        r#"
@id("admin")
permit (principal in Fhir::Role::"admin", action, resource) when { context.time.hour >= 0 };
@id("nurse")
permit (principal in Fhir::Role::"nurse", action, resource) when { !resource.hasData || resource.tenant == "" };
"#,
    );
    let engine = PolicyEngine::load(std::slice::from_ref(&permits))?;
    let type_level = read("Observation", "1");
    assert!(engine.decide(&admin, &type_level)?.covers_data, "the admin permit reads no data");
    let nurse_decision = engine.decide(&nurse, &type_level)?;
    assert!(nurse_decision.allowed && !nurse_decision.covers_data, "the nurse permit reads the tenant");
    let tagged = json!({"resourceType": "Observation", "id": "1", "meta": {"tag": [{"system": "urn:fhirgate:tenant", "code": "t"}]}});
    assert!(!engine.decide(&nurse, &type_level.with_data(&tagged))?.allowed, "and the data decides");
    assert!(!engine.decide(&admin, &type_level.with_data(&tagged))?.covers_data, "only type-level allows cover");

    // A forbid that reads data can deny what the type level allowed: nothing is covered.
    let forbid = source("f.cedar", "forbid (principal, action, resource) when { resource.tenant == \"t\" };\n");
    let engine = PolicyEngine::load(&[permits.clone(), forbid])?;
    let decision = engine.decide(&admin, &type_level)?;
    assert!(decision.allowed && !decision.covers_data);
    assert!(!engine.decide(&admin, &type_level.with_data(&tagged))?.allowed);

    // A forbid that cannot see data keeps the cover.
    let blind = source("b.cedar", "forbid (principal, action, resource) when { context.purposeOfUse == \"X\" };\n");
    let engine = PolicyEngine::load(&[permits, blind])?;
    assert!(engine.decide(&admin, &type_level)?.covers_data);
    Ok(())
}

/// Type-level decisions are cached by the engine, keyed without the clock, the client's address
/// and the resource id unless a policy reads them: a policy that does read them must still see
/// each request's own value.
#[test]
fn cached_decisions_follow_what_the_policies_read() -> Result<(), Error> {
    let user = Principal::from_claims(&json!({"sub": "u", "roles": ["r"]}), "patient");
    let at = |hour: i64, ip: &str, id: &str| {
        let target = Target { resource_type: "Patient".into(), id: id.into(), operation: String::new() };
        let context = RequestContext { epoch_seconds: hour * 3600, client_ip: ip.into(), ..RequestContext::default() };
        AuthzRequest::type_level(Action::Read, target, context)
    };
    let engine = PolicyEngine::load(&[source(
        "p.cedar",
        r#"
permit (principal in Fhir::Role::"r", action, resource) when { context.time.hour < 12 };
forbid (principal, action, resource) when { context has clientIp && context.clientIp.isInRange(ip("10.0.0.0/8")) };
forbid (principal, action, resource) when { resource.id == "secret" };
"#,
    )])?;
    for _ in 0..2 {
        assert!(engine.decide(&user, &at(9, "192.0.2.1", "1"))?.allowed);
        assert!(!engine.decide(&user, &at(13, "192.0.2.1", "1"))?.allowed, "the clock is read");
        assert!(!engine.decide(&user, &at(9, "10.1.2.3", "1"))?.allowed, "the address is read");
        assert!(!engine.decide(&user, &at(9, "192.0.2.1", "secret"))?.allowed, "the id is read");
    }
    // A set that reads none of them answers every request of the principal alike, cached or not.
    let engine =
        PolicyEngine::load(&[source("q.cedar", r#"permit (principal in Fhir::Role::"r", action, resource);"#)])?;
    let first = engine.decide(&user, &at(9, "192.0.2.1", "1"))?;
    assert!(first.allowed);
    assert_eq!(engine.decide(&user, &at(23, "10.1.2.3", "2"))?, first);
    // Another principal is another key.
    let other = Principal::from_claims(&json!({"sub": "u", "roles": ["s"]}), "patient");
    assert!(!engine.decide(&other, &at(9, "192.0.2.1", "1"))?.allowed);
    Ok(())
}

#[test]
fn a_set_reads_resource_data_when_one_policy_could() -> Result<(), Error> {
    let blind = source("b.cedar", "permit (principal in Fhir::Role::\"admin\", action, resource);\n");
    assert!(!PolicyEngine::load(std::slice::from_ref(&blind))?.reads_resource_data());
    let seeing = source("s.cedar", "forbid (principal, action, resource) when { resource.tenant == \"t\" };\n");
    assert!(PolicyEngine::load(&[blind, seeing])?.reads_resource_data());
    let roles = fhirgate_policies::shipped("microsoft-roles")?;
    assert!(PolicyEngine::load(&roles)?.reads_resource_data(), "the SMART patient clause of the roles reads data");
    Ok(())
}
