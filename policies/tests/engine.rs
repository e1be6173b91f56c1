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
