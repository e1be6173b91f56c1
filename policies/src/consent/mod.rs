//! Patient consent as a decision input: R4 privacy Consents
//! (<https://hl7.org/fhir/R4/consent.html>) read into [`Consent`]s ([`parse`]) and evaluated for
//! one request on one resource ([`evaluate`]) into a [`Verdict`] that Cedar sees as
//! `resource.consent` (`"deny"`, `"permit"` or `"none"`).
//!
//! Only Consents with `status = active` and scope `patient-privacy` count. A Consent's root
//! provision and its nested provisions are rules: a rule applies when every criterion it states
//! holds (any one of its actors, purposes, classes, codes, ...); nested rules are exceptions to
//! their parent, so the deepest rule that applies gives the Consent's answer. Between rules,
//! Consents and patients, a deny wins over a permit. What the gateway cannot check (an actor it
//! cannot resolve, `dataPeriod`, a class it does not know) counts as matching for a deny rule
//! and as not matching for a permit rule: an unreadable detail never lets data through.
//! policies/README.md ("Patient consent") maps each element.

mod matching;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::action::Action;
use crate::principal::Principal;
use crate::request::{AuthzRequest, RequestContext};

pub use parse::{Consent, parse};

/// What a patient's Consents say about one request on one resource, ordered by strength: a
/// deny wins over a permit, a permit over nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// No Consent speaks about this request (or the resource belongs to no patient).
    #[default]
    None,
    /// A permit rule applies and no deny rule does.
    Permit,
    /// A deny rule applies (or the Consents of one of the resource's patients could not be read).
    Deny,
}

impl Verdict {
    /// The value of `resource.consent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Permit => "permit",
            Self::Deny => "deny",
        }
    }
}

/// Who asks, what for and when: the request side of a rule's criteria.
#[derive(Debug, Clone)]
pub(crate) struct Asker<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub context: &'a RequestContext,
}

/// The answer of `consents` (a patient's, or several patients') to `principal` doing `action`
/// on `resource`, with the ids of the Consents that gave it.
pub fn evaluate(
    consents: &[Consent],
    principal: &Principal,
    action: Action,
    context: &RequestContext,
    resource: &Value,
) -> (Verdict, Vec<String>) {
    let asker = Asker { principal, action, context };
    let facts = matching::ResourceCodes::of(resource);
    let mut verdict = Verdict::None;
    let mut by = Vec::new();
    for consent in consents {
        let answer = consent.answer(&asker, &facts);
        if answer != Verdict::None && answer >= verdict {
            if answer > verdict {
                by.clear();
            }
            by.push(consent.id.clone());
            verdict = answer;
        }
    }
    (verdict, by)
}

/// The answer for a request on `resource` (of `request`, whose data holds its patients) when
/// `known` gives each patient's Consents, or `None` for a patient whose Consents could not be
/// read: a deny, since they might hold one.
pub fn decide<'c>(
    request: &AuthzRequest,
    principal: &Principal,
    resource: &Value,
    known: impl Fn(&str) -> Option<&'c [Consent]>,
) -> (Verdict, Vec<String>) {
    let Some(facts) = &request.data else { return (Verdict::None, Vec::new()) };
    let mut verdict = Verdict::None;
    let mut by = Vec::new();
    for patient in &facts.patients {
        let (answer, ids) = match known(patient) {
            Some(consents) => evaluate(consents, principal, request.action, &request.context, resource),
            None => (Verdict::Deny, vec![format!("(the Consents of Patient/{patient} could not be read)")]),
        };
        if answer > verdict {
            by.clear();
        }
        if answer >= verdict && answer != Verdict::None {
            by.extend(ids);
            verdict = answer;
        }
    }
    (verdict, by)
}

/// [`decide`] when `stored` are all the stored Consents of the resource's patients (a test
/// case's, `fhirgate policy explain --consent`'s).
pub fn decide_with_stored(
    request: &AuthzRequest,
    principal: &Principal,
    resource: &Value,
    stored: &[Consent],
) -> (Verdict, Vec<String>) {
    let of = |patient: &str| stored.iter().filter(|c| c.patient == patient).cloned().collect::<Vec<_>>();
    let by_patient: std::collections::BTreeMap<String, Vec<Consent>> =
        request.data.iter().flat_map(|d| d.patients.iter()).map(|p| (p.clone(), of(p))).collect();
    decide(request, principal, resource, |p| by_patient.get(p).map(Vec::as_slice))
}

/// Whether some policy reads `resource.consent` (or asks `resource has consent`): only then are
/// Consents loaded and evaluated. The walk is syntactic, over Cedar's JSON policy format, and
/// a policy it cannot read counts as reading it.
pub(crate) fn read_by<'a>(policies: impl IntoIterator<Item = &'a cedar_policy::Policy>) -> bool {
    fn walk(expr: &Value) -> bool {
        match expr {
            Value::Object(map) => {
                let reads = [".", "has"].iter().filter_map(|op| map.get(*op)).any(|access| {
                    access.pointer("/left/Var").and_then(Value::as_str) == Some("resource")
                        && access.get("attr").and_then(Value::as_str) == Some("consent")
                });
                reads || map.values().any(walk)
            }
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    policies.into_iter().any(|p| p.to_json().map_or(true, |json| walk(&json)))
}
