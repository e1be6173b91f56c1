//! Which policies, and which of their `when` / `unless` conditions, a set of decisions
//! exercised (`fhirgate policy test --coverage`).
//!
//! Each policy is taken apart into probes, all decided on every request recorded: its scope
//! alone (`permit (<scope>)`), and each condition alone under that scope
//! (`permit (<scope>) when { <condition> }`). A condition is covered when the requests its
//! scope matched saw it both true and false; a policy is covered when it determined at least
//! one decision. Probes are built from the policy's JSON form, so they evaluate exactly the
//! expressions the policy has.

use std::collections::BTreeMap;

use cedar_policy::{Authorizer, Policy, PolicyId, PolicySet, Request};
use serde_json::Value;

use crate::decision::Decision;
use crate::engine::PolicyEngine;
use crate::error::Error;
use crate::principal::Principal;
use crate::request::{AuthzRequest, to_cedar};

/// What the recorded decisions exercised of one condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionCoverage {
    /// `when` or `unless`.
    pub kind: String,
    /// The condition as Cedar text.
    pub text: String,
    /// Requests the scope matched on which the condition was true / false / failed.
    pub true_count: usize,
    pub false_count: usize,
    pub error_count: usize,
}

impl ConditionCoverage {
    /// Seen both true and false.
    pub fn covered(&self) -> bool {
        self.true_count > 0 && self.false_count > 0
    }
}

/// What the recorded decisions exercised of one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyCoverage {
    /// Requests its scope (principal, action, resource) matched.
    pub scope_matched: usize,
    /// Decisions it determined (an allowing permit, a denying forbid).
    pub determined: usize,
    pub conditions: Vec<ConditionCoverage>,
}

impl PolicyCoverage {
    /// Determined a decision, and every condition covered.
    pub fn covered(&self) -> bool {
        self.determined > 0 && self.conditions.iter().all(ConditionCoverage::covered)
    }
}

/// The probes of one policy: the scope's, then one per condition.
struct Probes {
    set: PolicySet,
    scope: PolicyId,
    conditions: Vec<PolicyId>,
}

/// Coverage of the policies of one or several engines, by policy id.
#[derive(Default)]
pub struct Coverage {
    pub policies: BTreeMap<String, PolicyCoverage>,
    probes: BTreeMap<String, Probes>,
}

impl Coverage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes note of the policies of `engine` (once per policy id).
    pub fn add_policies(&mut self, engine: &PolicyEngine) -> Result<(), Error> {
        for policy in engine.policy_set().policies() {
            let id = policy.id().to_string();
            if self.probes.contains_key(&id) {
                continue;
            }
            let (probes, conditions) = probes_of(policy)?;
            self.policies.insert(id.clone(), PolicyCoverage { conditions, ..PolicyCoverage::default() });
            self.probes.insert(id, probes);
        }
        Ok(())
    }

    /// Records one decision of `engine` on `request`.
    pub fn record(
        &mut self,
        engine: &PolicyEngine,
        principal: &Principal,
        request: &AuthzRequest,
        decision: &Decision,
    ) -> Result<(), Error> {
        self.add_policies(engine)?;
        let parts = to_cedar(principal, request, engine.action_entities(), engine.wanted())?;
        let cedar = Request::new(parts.principal, parts.action, parts.resource, parts.context, None)
            .map_err(|e| Error::Request(e.to_string()))?;
        let authorizer = Authorizer::new();
        for policy in engine.policy_set().policies() {
            let id = policy.id().to_string();
            let (Some(probes), Some(coverage)) = (self.probes.get(&id), self.policies.get_mut(&id)) else { continue };
            if decision.policies.contains(&id) {
                coverage.determined += 1;
            }
            let response = authorizer.is_authorized(&cedar, &probes.set, &parts.entities);
            let satisfied: Vec<&PolicyId> = response.diagnostics().reason().collect();
            if !satisfied.contains(&&probes.scope) {
                continue;
            }
            coverage.scope_matched += 1;
            let failed: Vec<&PolicyId> = response
                .diagnostics()
                .errors()
                .map(|cedar_policy::AuthorizationError::PolicyEvaluationError(e)| e.policy_id())
                .collect();
            for (probe, condition) in probes.conditions.iter().zip(coverage.conditions.iter_mut()) {
                if satisfied.contains(&probe) {
                    condition.true_count += 1;
                } else if failed.contains(&probe) {
                    condition.error_count += 1;
                } else {
                    condition.false_count += 1;
                }
            }
        }
        Ok(())
    }
}

/// The probes of `policy`, and an empty coverage record of each of its conditions.
fn probes_of(policy: &Policy) -> Result<(Probes, Vec<ConditionCoverage>), Error> {
    let bad = |e: String| Error::Request(format!("coverage of `{}`: {e}", policy.id()));
    let mut json = policy.to_json().map_err(|e| bad(e.to_string()))?;
    let conditions = json.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    json["effect"] = Value::from("permit");
    json["annotations"] = Value::Object(serde_json::Map::new());
    json["conditions"] = Value::Array(Vec::new());
    let mut set = PolicySet::new();
    let scope = PolicyId::new("scope");
    let probe = |id: &PolicyId, json: Value| -> Result<Policy, Error> {
        Policy::from_json(Some(id.clone()), json).map_err(|e| bad(e.to_string()))
    };
    set.add(probe(&scope, json.clone())?).map_err(|e| bad(e.to_string()))?;
    let mut ids = Vec::new();
    let mut coverage = Vec::new();
    for (n, condition) in conditions.iter().enumerate() {
        let kind = condition.get("kind").and_then(Value::as_str).unwrap_or("when").to_string();
        let mut when = condition.clone();
        when["kind"] = Value::from("when");
        let mut single = json.clone();
        single["conditions"] = Value::Array(vec![when]);
        let id = PolicyId::new(format!("condition{n}"));
        let policy = probe(&id, single)?;
        let text = policy.to_string();
        let text = text.split_once("when").map_or(text.as_str(), |(_, body)| body).trim().trim_end_matches(';');
        let text = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
        coverage.push(ConditionCoverage { kind, text: squeeze(text), ..ConditionCoverage::default() });
        set.add(policy).map_err(|e| bad(e.to_string()))?;
        ids.push(id);
    }
    Ok((Probes { set, scope, conditions: ids }, coverage))
}

/// Text on one line, spaces squeezed.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::PolicySource;
    use crate::testcase::HttpRequest;
    use serde_json::json;

    #[test]
    fn conditions_are_counted_true_and_false_under_their_scope() -> Result<(), Error> {
        let text = r#"
            @id("nurse")
            permit (principal in Fhir::Role::"nurse", action in Fhir::Action::"reads", resource)
            when { !resource.hasData || resource.tags.contains("urn:ward|3") }
            unless { context.breakGlass };
            @id("never") forbid (principal, action == Fhir::Action::"delete", resource);
            @id("late") permit (principal, action, resource) when { context.time.epochSeconds + 9223372036854775807 > 0 };"#;
        let engine =
            PolicyEngine::load(&[PolicySource { set: "t".into(), file: "t.cedar".into(), text: text.into() }])?;
        let mut coverage = Coverage::new();
        let nurse = Principal::from_claims(&json!({"sub": "n", "roles": ["nurse"]}), "patient");
        let other = Principal::from_claims(&json!({"sub": "o"}), "patient");
        let read = HttpRequest { method: "GET".into(), url: "Patient/p1".into(), ..HttpRequest::default() };
        let type_level = read.to_authz()?;
        let tagged = type_level.with_data(&json!({"resourceType": "Patient", "id": "p1",
            "meta": {"tag": [{"system": "urn:ward", "code": "3"}]}}));
        let untagged = type_level.with_data(&json!({"resourceType": "Patient", "id": "p1"}));
        for (principal, request) in [(&nurse, &type_level), (&nurse, &tagged), (&nurse, &untagged), (&other, &tagged)] {
            let decision = engine.decide(principal, request)?;
            coverage.record(&engine, principal, request, &decision)?;
        }
        let nurse = &coverage.policies["t:nurse"];
        assert_eq!((nurse.scope_matched, nurse.determined), (3, 2), "{nurse:?}");
        assert_eq!(nurse.conditions.len(), 2);
        let when = &nurse.conditions[0];
        assert_eq!((when.kind.as_str(), when.true_count, when.false_count), ("when", 2, 1), "{when:?}");
        assert!(when.text.contains("urn:ward|3"), "{when:?}");
        let unless = &nurse.conditions[1];
        assert_eq!((unless.kind.as_str(), unless.true_count, unless.false_count), ("unless", 0, 3));
        assert!(!unless.covered() && !nurse.covered());
        let never = &coverage.policies["t:never"];
        assert_eq!((never.scope_matched, never.determined), (0, 0));
        let late = &coverage.policies["t:late"].conditions[0];
        assert_eq!((late.true_count, late.false_count, late.error_count), (0, 0, 4), "it overflows: {late:?}");
        Ok(())
    }
}
