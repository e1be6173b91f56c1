//! Which policies cannot see a resource's data. A data-level request differs from its
//! type-level request only in the `resource` (its entity and every attribute) and in two context
//! attributes (`phase`, and `smartNeeded`, which follows the resource's type and categories). A
//! policy is *data-blind* when its resource scope is unconstrained and its conditions read
//! neither `resource` nor those two context attributes: it evaluates the same on both requests.
//!
//! So a type-level allow determined by a data-blind permit, in a set whose forbids are all
//! data-blind, is also the answer of every data-level decision of that request: no permit can
//! stop holding and no forbid can start to. [`crate::PolicyEngine`] reports it as
//! [`crate::Decision::covers_data`], and the caller may skip those decisions. The analysis is
//! syntactic and errs on the side of "sees data" (a bare `context`, `context has phase`).
//! A resource scope or an `is` test on a generated entity type (`resource is Fhir::Observation`)
//! sees data as well: a system-level request is on `Fhir::Resource` before the data is known and
//! on the resource's own type after.

use cedar_policy::{Effect, Policy, ResourceConstraint};
use serde_json::Value;

/// Context attributes that differ between a type-level and a data-level request.
const DATA_CONTEXT: [&str; 2] = ["phase", "smartNeeded"];

/// Whether `policy` evaluates the same with or without a resource's data.
pub(crate) fn is_data_blind(policy: &Policy) -> bool {
    if !matches!(policy.resource_constraint(), ResourceConstraint::Any) {
        return false;
    }
    let Ok(json) = policy.to_json() else { return false };
    json.get("conditions").and_then(Value::as_array).is_some_and(|c| c.iter().all(blind))
}

/// Whether `policy` is a forbid.
pub(crate) fn is_forbid(policy: &Policy) -> bool {
    policy.effect() == Effect::Forbid
}

/// Walks a condition in Cedar's JSON policy format (EST).
fn blind(expr: &Value) -> bool {
    match expr {
        Value::Object(map) => {
            if map.get("Var").and_then(Value::as_str).is_some_and(|v| v == "resource" || v == "context") {
                return false; // the whole resource or context, used as such
            }
            for op in [".", "has"] {
                let Some(access) = map.get(op) else { continue };
                if access.pointer("/left/Var").and_then(Value::as_str) == Some("context") {
                    let attr = access.get("attr").and_then(Value::as_str).unwrap_or_default();
                    return !DATA_CONTEXT.contains(&attr);
                }
            }
            map.values().all(blind)
        }
        Value::Array(items) => items.iter().all(blind),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blind_policy(text: &str) -> bool {
        Policy::parse(None, text).is_ok_and(|p| is_data_blind(&p))
    }

    #[test]
    fn policies_that_read_data_are_not_blind() {
        assert!(blind_policy(r#"permit (principal in Fhir::Role::"globalAdmin", action, resource);"#));
        assert!(blind_policy(
            r#"permit (principal, action, resource) when { context.time.hour < 18 && principal.tenant == "t" };"#
        ));
        assert!(blind_policy(r#"forbid (principal, action, resource) unless { context has clientIp };"#));
        assert!(!blind_policy(r#"permit (principal, action, resource) when { resource.type == "Patient" };"#));
        assert!(!blind_policy(r#"forbid (principal, action, resource) when { resource.tenant != principal.tenant };"#));
        assert!(!blind_policy(r#"permit (principal, action, resource == Fhir::Resource::"Patient/1");"#));
        assert!(!blind_policy(r#"permit (principal, action, resource) when { context.phase == "type" };"#));
        assert!(!blind_policy(
            r#"permit (principal, action, resource) when { principal.smartUser.containsAny(context.smartNeeded) };"#
        ));
        assert!(!blind_policy(r#"permit (principal, action, resource) when { context has phase };"#));
        assert!(!blind_policy(r#"permit (principal, action, resource) when { context == {} };"#));
        // A generated type: the type-level entity of a system-level request is `Fhir::Resource`,
        // its data-level one the resource's own type, so an `is` check sees data too.
        assert!(!blind_policy(r#"permit (principal, action, resource is Fhir::Observation);"#));
        assert!(!blind_policy(r#"forbid (principal, action, resource) when { resource is Fhir::Observation };"#));
        assert!(!blind_policy(
            r#"forbid (principal, action, resource is Fhir::Observation) when { resource.code.contains("x") };"#
        ));
    }
}
