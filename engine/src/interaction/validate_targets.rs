//! The reference targets `$validate` checks against their elements' target profiles
//! ([`crate::profiles::ReferenceResolver`]): read from the store **as a read by the caller**
//! would be decided (the read gate of the target's type, consents included), so a target the
//! caller may not see is treated exactly as one that does not exist: not resolved, not checked,
//! never named in an issue but as a reference that points nowhere, with
//! [`Conformance::references_must_exist`] (the server's `fhir.references_must_exist`), where a
//! relative reference whose target neither the resource holds nor the caller may read is an
//! error ([`unresolved_references`]), missing and hidden alike.
//!
//! The validator asks for targets as it walks; each round validates, then reads what it asked
//! for, until nothing new is asked, [`MAX_TARGET_DEPTH`] rounds have run or [`MAX_TARGETS`]
//! references have been looked up.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;

use super::Engine;
use super::gate::Gate;
use crate::access::Phase;
use crate::error::Result;
use crate::profiles::{
    Checked, Conformance, MAX_TARGET_DEPTH, MAX_TARGETS, ReferenceResolver, unresolved_references, validate_checked,
};

/// The targets read so far (`Type/id` → resource), those read and not found (or hidden from
/// the caller), and what the validator asked for beyond them.
#[derive(Default)]
struct Fetched {
    found: HashMap<String, Value>,
    missing: HashSet<String>,
    asked: Mutex<Vec<String>>,
}

impl Fetched {
    fn ask(&self, reference: &str) {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(reference.to_owned());
        }
    }
}

impl ReferenceResolver for Fetched {
    fn resolve(&self, reference: &str) -> Option<Value> {
        if let Some(found) = self.found.get(reference) {
            return Some(found.clone());
        }
        if !self.missing.contains(reference) {
            self.ask(reference);
        }
        None
    }

    /// Known once read: a target not read yet (or past [`MAX_TARGETS`]) is not reported.
    fn exists(&self, reference: &str) -> Option<bool> {
        if self.found.contains_key(reference) {
            return Some(true);
        }
        if self.missing.contains(reference) {
            return Some(false);
        }
        self.ask(reference);
        None
    }
}

/// One validation round: the profiles (targets resolved by `fetched`), and with
/// [`Conformance::references_must_exist`] the references whose targets do not exist.
fn round(conformance: &Conformance, resource: &Value, profiles: &[&str], fetched: &Fetched) -> Checked {
    let mut checked = validate_checked(conformance, resource, profiles, Some(fetched));
    if conformance.references_must_exist {
        checked.issues.extend(unresolved_references(resource, fetched));
    }
    checked
}

/// [`validate_checked`] with targets read as the caller may read them.
pub(super) async fn validate(
    engine: &Engine,
    gate: &Gate<'_>,
    conformance: &Conformance,
    resource: &Value,
    profiles: &[&str],
) -> Result<Checked> {
    let mut fetched = Fetched::default();
    let mut tried: HashSet<String> = HashSet::new();
    for _ in 0..MAX_TARGET_DEPTH {
        let checked = round(conformance, resource, profiles, &fetched);
        let asked = std::mem::take(fetched.asked.get_mut().unwrap_or_else(|e| e.into_inner()));
        let new: Vec<String> =
            asked.into_iter().filter(|r| tried.len() < MAX_TARGETS && tried.insert(r.clone())).collect();
        if new.is_empty() {
            return Ok(checked);
        }
        for reference in new {
            match read_as_caller(engine, gate, &reference).await? {
                Some(target) => {
                    fetched.found.insert(reference, target);
                }
                None => {
                    fetched.missing.insert(reference);
                }
            }
        }
    }
    Ok(round(conformance, resource, profiles, &fetched))
}

/// The current version of `reference` (`Type/id`) when the caller may read it; `None` when it
/// does not exist, was deleted or is hidden from the caller, alike.
async fn read_as_caller(engine: &Engine, gate: &Gate<'_>, reference: &str) -> Result<Option<Value>> {
    let Some((resource_type, id)) = reference.split_once('/') else { return Ok(None) };
    let Some(reader) = gate.reader(resource_type) else { return Ok(None) };
    let Some(current) = engine.store.read(resource_type, id).await? else { return Ok(None) };
    if current.is_deleted() || !reader.allows_version(engine, &current, Phase::Outgoing).await? {
        return Ok(None);
    }
    Ok(current.json.as_deref().and_then(|json| serde_json::from_str(json).ok()))
}
