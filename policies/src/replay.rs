//! Decisions as data: the Cedar request a decision was made on, in Cedar's own JSON forms
//! (entity uids, context, entities), so that an audit event can carry it; and the decision of
//! another policy set on such a recorded request (`fhirgate policy impact`).
//!
//! The record is what [`crate::request`] built for the decision, whatever attributes the
//! entities have: principal and resource entities with their attributes and parents; the
//! schema's action entities are left out (the replaying engine has its own).

use cedar_policy::{Context, Entities, EntityUid, Request};
use serde_json::{Value, json};

use crate::decision::Decision;
use crate::engine::PolicyEngine;
use crate::error::Error;
use crate::principal::Principal;
use crate::request::{AuthzRequest, to_cedar};

/// The Cedar request of `request` by `principal` as `engine` decides it (with the resource
/// attributes its policies read), as JSON: `{"principal", "action", "resource", "context",
/// "entities"}`.
pub fn cedar_request(engine: &PolicyEngine, principal: &Principal, request: &AuthzRequest) -> Result<Value, Error> {
    let parts = to_cedar(principal, request, &Entities::empty(), engine.wanted())?;
    let bad = |e: &dyn std::fmt::Display| Error::Request(e.to_string());
    Ok(json!({
        "principal": parts.principal.to_json_value().map_err(|e| bad(&e))?,
        "action": parts.action.to_json_value().map_err(|e| bad(&e))?,
        "resource": parts.resource.to_json_value().map_err(|e| bad(&e))?,
        "context": parts.context.to_json_value().map_err(|e| bad(&e))?,
        "entities": parts.entities.to_json_value().map_err(|e| bad(&e))?,
    }))
}

impl PolicyEngine {
    /// The decision of this engine's policies on a request recorded by [`cedar_request`].
    pub fn replay(&self, recorded: &Value) -> Result<Decision, Error> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::Request(format!("recorded {what}: {e}"));
        let field = |name: &str| recorded.get(name).cloned().unwrap_or(Value::Null);
        let uid = |name: &str| EntityUid::from_json(field(name)).map_err(|e| bad(name, &e));
        let context = Context::from_json_value(field("context"), None).map_err(|e| bad("context", &e))?;
        let recorded_entities = Entities::from_json_value(field("entities"), None).map_err(|e| bad("entities", &e))?;
        let entities = self
            .action_entities()
            .clone()
            .add_entities(recorded_entities.iter().cloned(), None)
            .map_err(|e| bad("entities", &e))?;
        let request = Request::new(uid("principal")?, uid("action")?, uid("resource")?, context, None)
            .map_err(|e| bad("request", &e))?;
        Ok(Decision::of(&cedar_policy::Authorizer::new().is_authorized(&request, self.policy_set(), &entities)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::shipped;
    use crate::testcase::HttpRequest;

    #[test]
    fn a_recorded_request_is_decided_again_as_it_was() -> Result<(), Error> {
        let engine = PolicyEngine::load(&[shipped("microsoft-roles")?, shipped("smart")?].concat())?;
        let principal = Principal::from_claims(
            &json!({"sub": "u1", "scope": "patient/Observation.rs", "patient": "p1", "roles": ["x"]}),
            "patient",
        );
        let http = HttpRequest {
            method: "GET".into(),
            url: "Observation/o1".into(),
            client_ip: "10.1.2.3".into(),
            ..HttpRequest::default()
        };
        let type_level = http.to_authz()?;
        for resource in [
            json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p2"}}),
        ] {
            for request in [type_level.clone(), engine.with_data(&type_level, &resource)] {
                let decided = engine.decide(&principal, &request)?;
                let recorded = cedar_request(&engine, &principal, &request)?;
                // Through text, as an audit line carries it.
                let recorded: Value =
                    serde_json::from_str(&recorded.to_string()).map_err(|e| Error::Request(e.to_string()))?;
                let replayed = engine.replay(&recorded)?;
                assert_eq!((replayed.allowed, &replayed.policies), (decided.allowed, &decided.policies), "{recorded}");
            }
        }
        Ok(())
    }
}
