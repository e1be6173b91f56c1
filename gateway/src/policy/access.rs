//! The engine's enforcement point answered by Cedar: [`CedarAccess`] turns each question the
//! engine asks about a request (type level, then one per resource it touches) into a Cedar
//! request for the caller's principal, decides it with the policies that were in force when the
//! request arrived (a reload in the middle of a request does not mix two policy sets), and audits
//! every decision.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fhirgate_engine::access::{Access, Grant, Interaction, Phase, Target};
use fhirgate_policies::consent::{self, Consent, Verdict};
use fhirgate_policies::{Action, AuthzRequest, Decision, PolicyEngine, Principal, RequestContext, ResourceFacts};
use serde_json::Value;

use super::audit::{self, AuditInfo};

/// One request's decisions.
pub struct CedarAccess<'a> {
    pub(super) policies: Option<Arc<PolicyEngine>>,
    pub(super) principal: Cow<'a, Principal>,
    pub(super) context: RequestContext,
    pub(super) audit: Cow<'a, AuditInfo>,
    pub(super) hides_reads: bool,
    /// Audit events carry the Cedar request (`policy.audit_inputs`).
    pub(super) audit_inputs: bool,
    /// Who results kept for this caller belong to ([`super::owner`]), computed when first asked
    /// (only paging asks).
    pub(super) owner: std::sync::OnceLock<String>,
    /// Whether the policies read `resource.consent`: then the engine gives this access the
    /// Consents of the patients it decides about.
    pub(super) reads_consents: bool,
    /// The Consents given, per patient id; `None` for a patient whose Consents could not all be
    /// read. Kept for this request only: a Consent written later applies to the next request.
    pub(super) consents: Mutex<HashMap<String, Option<Vec<Consent>>>>,
}

impl CedarAccess<'_> {
    fn request(&self, target: &Target) -> AuthzRequest {
        let (action, target) = Action::of(target);
        AuthzRequest::type_level(action, target, self.context.clone())
    }

    fn consents(&self) -> MutexGuard<'_, HashMap<String, Option<Vec<Consent>>>> {
        self.consents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides and audits one request. An evaluation failure denies.
    fn decide_audited(&self, request: &AuthzRequest, phase: &str) -> Decision {
        self.audited(request, phase, |policies| policies.decide(&self.principal, request))
    }

    /// Audits the decision `decide` makes with the policies in force on `request`.
    fn audited(
        &self,
        request: &AuthzRequest,
        phase: &str,
        decide: impl FnOnce(&PolicyEngine) -> Result<Decision, fhirgate_policies::Error>,
    ) -> Decision {
        let span = crate::telemetry::spans::decision(request, phase);
        let decision = match span.in_scope(|| self.policies.as_deref().map(decide)) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                tracing::error!(error = %e, "authorization request could not be evaluated; denied");
                Decision { errors: vec![e.to_string()], ..Decision::default() }
            }
            None => Decision { errors: vec!["policies unavailable".into()], ..Decision::default() },
        };
        crate::telemetry::spans::decided(&span, &decision);
        let inputs = match &self.policies {
            Some(policies) if self.audit_inputs => {
                fhirgate_policies::replay::cedar_request(policies, &self.principal, request)
                    .map_err(|e| tracing::error!(error = %e, "the decision's inputs could not be recorded"))
                    .ok()
            }
            _ => None,
        };
        audit::record(&self.principal, request, phase, &decision, &self.audit, inputs.as_ref());
        crate::metrics::metrics().decision(&decision, phase);
        decision
    }
}

impl Access for CedarAccess<'_> {
    fn decide(&self, target: &Target) -> Grant {
        let decision = self.decide_audited(&self.request(target), "type");
        if !decision.allowed {
            let why = if decision.errors.is_empty() { "no policy allows it" } else { "the policies could not decide" };
            Grant::Denied(why.to_owned())
        } else if decision.covers_data {
            Grant::AnyData
        } else {
            Grant::PerResource
        }
    }

    fn allows(&self, target: &Target, resource: &Value, phase: Phase) -> bool {
        let request = self.request(target);
        // Remembered per resource content by the engine, unless the decision reads Consents
        // (they change while the resource does not) or its inputs are audited (they are the
        // resource's data, which a remembered decision no longer has).
        if !self.reads_consents && !self.audit_inputs {
            let decide = |policies: &PolicyEngine| policies.decide_on(&self.principal, &request, resource);
            return self.audited(&request.on_resource(resource), phase.as_str(), decide).allowed;
        }
        // The engine extracts the resource attributes its policies read.
        let mut request = match &self.policies {
            Some(policies) => policies.with_data(&request, resource),
            None => request.with_data(resource),
        };
        if !self.reads_consents {
            return self.decide_audited(&request, phase.as_str()).allowed;
        }
        let (verdict, by) = {
            let known = self.consents();
            consent::decide(&request, &self.principal, resource, |patient| {
                known.get(patient).and_then(Option::as_deref)
            })
        };
        request.consent = verdict;
        let decision = self.decide_audited(&request, phase.as_str());
        if decision.allowed && verdict == Verdict::Deny {
            audit::record_consent_override(&self.principal, &request, phase.as_str(), &decision, &by, &self.audit);
        }
        decision.allowed
    }

    fn consents_wanted(&self, resource: &Value) -> Vec<String> {
        if !self.reads_consents {
            return Vec::new();
        }
        let known = self.consents();
        ResourceFacts::of(resource).patients.into_iter().filter(|p| !known.contains_key(p)).collect()
    }

    fn give_consents(&self, patients: &[String], consents: Option<Vec<Value>>) {
        let parsed: Option<Vec<Consent>> = consents.map(|c| c.iter().filter_map(consent::parse).collect());
        let mut known = self.consents();
        for patient in patients {
            let of = parsed.as_ref().map(|all| all.iter().filter(|c| c.patient == *patient).cloned().collect());
            known.insert(patient.clone(), of);
        }
    }

    fn hides_denied_reads(&self) -> bool {
        self.hides_reads
    }

    fn owner(&self) -> &str {
        self.owner.get_or_init(|| super::owner(&self.principal, &self.context))
    }

    fn persona(&self) -> Option<String> {
        let persona = Persona { principal: self.principal.as_ref().clone(), context: self.context.clone() };
        serde_json::to_string(&persona).ok()
    }

    fn written(&self, target: &Target, resource_type: &str, id: &str, version: u64) {
        if resource_type == "Consent" {
            // Later decisions of this request (a batch's next entries) read the Consents anew.
            self.consents().clear();
        }
        audit::record_write(&self.principal, &self.request(target), resource_type, id, version, &self.audit);
    }
}

/// What an asynchronous job keeps of its client to decide later as that client's requests are
/// decided ([`Access::persona`]): the principal its token made and the request's circumstances
/// (address, purpose of use, break-glass, target and route, time of the kick-off). Not the token:
/// a job runs on after the token expires, as the Bulk Data IG expects of a kicked-off export.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Persona {
    pub principal: Principal,
    pub context: RequestContext,
}

/// A caller without a token on a public path (`/metadata` when `auth.anonymous_metadata`): the
/// CapabilityStatement and nothing else, whatever the path names.
pub struct Anonymous;

impl Access for Anonymous {
    fn decide(&self, target: &Target) -> Grant {
        if target.interaction == Interaction::Capabilities {
            Grant::AnyData
        } else {
            Grant::Denied("authentication required".to_owned())
        }
    }

    fn allows(&self, _target: &Target, _resource: &Value, _phase: Phase) -> bool {
        false
    }
}
