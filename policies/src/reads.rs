//! Which parts of a type-level request the loaded policies can see, so that a cached decision
//! ([`crate::engine`]) is keyed by those parts only. A type-level Cedar request is built from the
//! principal, the action, the target and the [`crate::RequestContext`] alone
//! ([`crate::request`]'s `to_cedar`): a key of all four is always right. Three of them change with
//! nearly every request although few policies read them: the clock (`context.time`), the
//! client's address (`context.clientIp`) and the resource id (`resource.id`, or the resource
//! entity itself in a scope or a condition; an `is` test reads only its type, which follows the
//! target's). The analysis below is syntactic, like
//! [`crate::data_blind`], and errs on the side of "reads it": a bare `context` or `resource`,
//! or an attribute it does not know, keeps the field in the key.

use cedar_policy::{Policy, ResourceConstraint};
use serde_json::Value;

/// The request fields a policy set may read, among those a cache key can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reads {
    /// `context.time` (the request's Unix seconds).
    pub time: bool,
    /// `context.clientIp`.
    pub client_ip: bool,
    /// The resource id: `resource.id`, a resource scope, or `resource` as a value.
    pub resource_id: bool,
}

impl Reads {
    /// Everything: what a policy the analysis cannot read is assumed to see.
    const ALL: Self = Self { time: true, client_ip: true, resource_id: true };
    const NOTHING: Self = Self { time: false, client_ip: false, resource_id: false };

    /// What the policies of a set read, together.
    pub fn of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        policies.into_iter().map(Self::of_policy).fold(Self::NOTHING, Self::or)
    }

    fn or(self, other: Self) -> Self {
        Self {
            time: self.time || other.time,
            client_ip: self.client_ip || other.client_ip,
            resource_id: self.resource_id || other.resource_id,
        }
    }

    fn of_policy(policy: &Policy) -> Self {
        let Ok(json) = policy.to_json() else { return Self::ALL };
        let mut reads = Self::NOTHING;
        // `resource is T` reads the entity type, which follows the target's type (in the key).
        if !matches!(policy.resource_constraint(), ResourceConstraint::Any | ResourceConstraint::Is(_)) {
            reads.resource_id = true;
        }
        match json.get("conditions").and_then(Value::as_array) {
            Some(conditions) => {
                for condition in conditions {
                    walk(condition, &mut reads);
                }
                reads
            }
            None => Self::ALL,
        }
    }
}

/// Context attributes whose value comes from a field that is always in the key.
const KEYED_CONTEXT: [&str; 8] =
    ["purposeOfUse", "breakGlass", "smartNeeded", "phase", "method", "operation", "target", "route"];
/// Resource attributes whose value comes from a field that is always in the key (a type-level
/// request carries no resource data: `hasData` is false, the data attributes are empty).
const KEYED_RESOURCE: [&str; 8] =
    ["type", "hasData", "patients", "security", "tags", "categories", "tenant", "consent"];

/// Walks a condition in Cedar's JSON policy format (EST), marking what it reads.
fn walk(expr: &Value, reads: &mut Reads) {
    match expr {
        Value::Object(map) => {
            match map.get("Var").and_then(Value::as_str) {
                Some("context") => *reads = reads.or(Reads { time: true, client_ip: true, resource_id: false }),
                Some("resource") => reads.resource_id = true,
                _ => {}
            }
            // `resource is T` (without `in`) reads the type only.
            if let Some(test) = map.get("is") {
                if test.pointer("/left/Var").and_then(Value::as_str) == Some("resource") && test.get("in").is_none() {
                    return;
                }
            }
            for op in [".", "has"] {
                let Some(access) = map.get(op) else { continue };
                let attr = access.get("attr").and_then(Value::as_str).unwrap_or_default();
                match access.pointer("/left/Var").and_then(Value::as_str) {
                    Some("context") => {
                        match attr {
                            "time" => reads.time = true,
                            "clientIp" => reads.client_ip = true,
                            known if KEYED_CONTEXT.contains(&known) => {}
                            // An attribute this module does not know: it may come from any field.
                            _ => *reads = reads.or(Reads { time: true, client_ip: true, resource_id: false }),
                        }
                        return;
                    }
                    Some("resource") => {
                        // `store` comes from the context, which is in the key; search-parameter
                        // attributes are empty or absent at type level.
                        if !KEYED_RESOURCE.contains(&attr)
                            && attr != "store"
                            && !crate::attributes::params::is_param_attribute(attr)
                        {
                            reads.resource_id = true;
                        }
                        return;
                    }
                    _ => {}
                }
            }
            for value in map.values() {
                walk(value, reads);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, reads)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(text: &str) -> Reads {
        Policy::parse(None, text).map_or(Reads::ALL, |p| Reads::of_policy(&p))
    }

    #[test]
    fn what_a_policy_reads() {
        assert_eq!(reads(r#"permit (principal in Fhir::Role::"globalAdmin", action, resource);"#), Reads::NOTHING);
        assert_eq!(
            reads(
                r#"permit (principal, action, resource) when { principal.smartUser.containsAny(context.smartNeeded) };"#
            ),
            Reads::NOTHING
        );
        let time = reads(r#"permit (principal, action, resource) when { context.time.hour < 18 };"#);
        assert_eq!(time, Reads { time: true, ..Reads::NOTHING });
        let ip = reads(r#"forbid (principal, action, resource) unless { context has clientIp };"#);
        assert_eq!(ip, Reads { client_ip: true, ..Reads::NOTHING });
        let id = reads(r#"permit (principal, action, resource) when { resource.id == "1" };"#);
        assert_eq!(id, Reads { resource_id: true, ..Reads::NOTHING });
        assert!(reads(r#"permit (principal, action, resource == Fhir::Resource::"Patient/1");"#).resource_id);
        assert!(
            reads(r#"permit (principal, action, resource) when { resource == Fhir::Resource::"Patient/1" };"#)
                .resource_id
        );
        assert!(!reads(r#"permit (principal, action, resource) when { resource.type == "Patient" };"#).resource_id);
        assert!(!reads(r#"forbid (principal, action, resource is Fhir::Observation);"#).resource_id, "the type only");
        assert!(!reads(r#"permit (principal, action, resource) when { resource is Fhir::Patient };"#).resource_id);
        assert!(reads(r#"permit (principal, action, resource is Fhir::Patient in Fhir::Patient::"p");"#).resource_id);
        assert!(
            reads(r#"permit (principal, action, resource) when { resource is Fhir::Patient in Fhir::Patient::"p" };"#)
                .resource_id
        );
        assert!(
            !reads(r#"permit (principal, action, resource) when { resource has code && resource["value-quantity"] == [] };"#)
                .resource_id,
            "parameters are empty at type level"
        );
        let whole = reads(r#"permit (principal, action, resource) when { context == {} };"#);
        assert!(whole.time && whole.client_ip, "{whole:?}");
        let routed =
            reads(r#"permit (principal, action, resource) when { context.target == "lab" && context.route != "x" };"#);
        assert_eq!(routed, Reads::NOTHING, "the gateway's target and route are in the key");
        let unknown = reads(r#"permit (principal, action, resource) when { context has somethingNew };"#);
        assert!(unknown.time && unknown.client_ip, "{unknown:?}");
    }
}
