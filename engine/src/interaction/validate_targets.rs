//! The reference targets `$validate` checks against their elements' target profiles
//! ([`crate::profiles::ReferenceResolver`]): read from the store **as a read by the caller**
//! would be decided (the read gate of the target's type, consents included), so a target the
//! caller may not see is treated exactly as one that does not exist: not resolved, not checked,
//! never named in an issue.
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
use crate::profiles::{Checked, Conformance, MAX_TARGET_DEPTH, MAX_TARGETS, ReferenceResolver, validate_checked};

/// The targets read so far (`Type/id` → resource), and what the validator asked for beyond them.
#[derive(Default)]
struct Fetched {
    found: HashMap<String, Value>,
    asked: Mutex<Vec<String>>,
}

impl ReferenceResolver for Fetched {
    fn resolve(&self, reference: &str) -> Option<Value> {
        if let Some(found) = self.found.get(reference) {
            return Some(found.clone());
        }
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(reference.to_owned());
        }
        None
    }
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
        let checked = validate_checked(conformance, resource, profiles, Some(&fetched));
        let asked = std::mem::take(fetched.asked.get_mut().unwrap_or_else(|e| e.into_inner()));
        let new: Vec<String> =
            asked.into_iter().filter(|r| tried.len() < MAX_TARGETS && tried.insert(r.clone())).collect();
        if new.is_empty() {
            return Ok(checked);
        }
        for reference in new {
            if let Some(target) = read_as_caller(engine, gate, &reference).await? {
                fetched.found.insert(reference, target);
            }
        }
    }
    Ok(validate_checked(conformance, resource, profiles, Some(&fetched)))
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
