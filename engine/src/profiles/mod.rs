//! Validation against profiles: the conformance resources a server knows (from FHIR packages
//! loaded at start, see [`package`], and from StructureDefinitions written through the API), the
//! profiles generated from their differentials ([`snapshot`]), and the checks a profile makes on
//! an instance: cardinality, types, fixed and pattern values, slicing, extensions by their
//! definitions, invariants (FHIRPath), reference targets, down into contained resources and
//! Bundle entries.
//!
//! Required bindings a profile adds are checked against the R4 terminology's expansions (the
//! base definitions' own, and the base structure checks, are [`crate::validation`]'s, which run
//! first); value sets only a package holds are not expanded here yet.
//!
//! Content rules R4 states but plain writes do not enforce (an Attachment's stated size, a
//! narrative's txt-2) are reported here too ([`content`]).
//!
//! Every walk is bounded: profile nesting ([`MAX_NESTING`]), the number of element checks of one
//! validation ([`MAX_CHECKS`]), and each invariant's FHIRPath budget.

mod content;
mod extensions;
mod invariants;
pub mod package;
pub mod registry;
mod slicing;
pub mod snapshot;
#[cfg(test)]
mod tests;
mod values;
mod walk;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::outcome::{Issue, IssueType};
pub use snapshot::Profile;

/// How many profiles may nest (a profile's element typed with another profile, an extension's
/// definition inside a profile...) before validation stops descending.
pub(crate) const MAX_NESTING: usize = 32;

/// How many element checks one validation may make before it stops with `too-costly`.
pub(crate) const MAX_CHECKS: usize = 200_000;

/// The conformance resources a server validates with, by canonical URL.
#[derive(Debug, Default)]
pub struct Conformance {
    /// StructureDefinitions by `url` (and by `url|version`).
    structure_definitions: HashMap<String, Arc<Value>>,
    /// Every conformance resource loaded, StructureDefinitions included, in load order.
    resources: Vec<Arc<Value>>,
    /// Profiles generated so far, by URL.
    compiled: RwLock<HashMap<String, Arc<Profile>>>,
    /// Whether an extension whose definition is not known is an error (except those of example
    /// domains), as the reference validator has it, rather than accepted.
    pub strict_extensions: bool,
    /// Where StructureDefinitions not found here are looked up (the packages under a request's
    /// own definitions).
    fallback: Option<Arc<Conformance>>,
}

/// The resource types a package contributes to [`Conformance`].
pub const CONFORMANCE_TYPES: &[&str] =
    &["StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "CapabilityStatement"];

impl Conformance {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set whose look-ups fall back to `base`.
    pub fn over(base: Arc<Conformance>) -> Self {
        Self { fallback: Some(base), ..Self::default() }
    }

    /// Adds a conformance resource (any of [`CONFORMANCE_TYPES`]; others are ignored). A later
    /// StructureDefinition with the same URL replaces the earlier one.
    pub fn add(&mut self, resource: Value) {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else { return };
        if !CONFORMANCE_TYPES.contains(&resource_type) {
            return;
        }
        let is_structure_definition = resource_type == "StructureDefinition";
        let resource = Arc::new(resource);
        if is_structure_definition {
            if let Some(url) = resource.get("url").and_then(Value::as_str) {
                if let Some(version) = resource.get("version").and_then(Value::as_str) {
                    self.structure_definitions.insert(format!("{url}|{version}"), Arc::clone(&resource));
                }
                self.structure_definitions.insert(url.to_owned(), Arc::clone(&resource));
            }
            if let Ok(mut compiled) = self.compiled.write() {
                compiled.clear();
            }
        }
        self.resources.push(resource);
    }

    /// Adds a profile generated earlier (by another set with the same definitions).
    pub(crate) fn insert_generated(&self, profile: Arc<Profile>) {
        if let Ok(mut compiled) = self.compiled.write() {
            compiled.insert(profile.url.clone(), profile);
        }
    }

    /// The profiles generated so far by this set (not its fallback's).
    pub(crate) fn generated(&self) -> Vec<Arc<Profile>> {
        self.compiled.read().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// Every conformance resource loaded (what the terminology registry is fed from).
    pub fn resources(&self) -> impl Iterator<Item = &Value> {
        self.resources.iter().map(|r| &**r)
    }

    /// How many resources of each type are loaded, sorted by type.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for r in &self.resources {
            let t = r.get("resourceType").and_then(Value::as_str).unwrap_or_default();
            *counts.entry(t.to_owned()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// A StructureDefinition by canonical URL (`url` or `url|version`).
    pub fn structure_definition(&self, url: &str) -> Option<&Value> {
        match self.structure_definitions.get(url) {
            Some(r) => Some(&**r),
            None => self.fallback.as_ref()?.structure_definition(url),
        }
    }

    /// The profile of `url`, generated on first use. `Err` says why it cannot be used.
    pub fn profile(&self, url: &str) -> Result<Arc<Profile>, String> {
        if let Some(p) = self.compiled.read().ok().and_then(|c| c.get(url).cloned()) {
            return Ok(p);
        }
        // Nothing of its own: the fallback's (and its generated profiles) are all there is.
        if self.structure_definitions.is_empty() {
            if let Some(fallback) = &self.fallback {
                return fallback.profile(url);
            }
        }
        let mut chain: Vec<&Value> = Vec::new();
        let mut current = self.structure_definition(url).ok_or_else(|| format!("unknown profile `{url}`"))?;
        loop {
            chain.push(current);
            let Some(base) = snapshot::base_profile(current) else { break };
            if chain.len() >= snapshot::MAX_CHAIN {
                return Err(format!("the derivation chain of `{url}` is longer than {}", snapshot::MAX_CHAIN));
            }
            current = self
                .structure_definition(base)
                .ok_or_else(|| format!("the base `{base}` of profile `{url}` is not known"))?;
        }
        chain.reverse();
        let profile = Arc::new(snapshot::generate(&chain)?);
        if let Ok(mut compiled) = self.compiled.write() {
            compiled.insert(url.to_owned(), Arc::clone(&profile));
        }
        Ok(profile)
    }
}

/// Validates `resource` against the profiles in `profiles` and those it declares in
/// `meta.profile`, and its extensions against their definitions. An unknown profile named in
/// `profiles` is an error; one only declared is a warning (the instance may conform to a profile
/// this server has not been given).
pub fn validate(conformance: &Conformance, resource: &Value, profiles: &[&str]) -> Vec<Issue> {
    let mut walker = walk::Walker::new(conformance, resource);
    let root_path = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
    walker.base(resource, &root_path);
    let declared: Vec<&str> = resource
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut wanted: Vec<(&str, bool)> = Vec::new();
    for (url, required) in profiles.iter().map(|u| (*u, true)).chain(declared.iter().map(|u| (*u, false))) {
        if !wanted.iter().any(|(w, _)| *w == url) {
            wanted.push((url, required));
        }
    }
    for (url, required) in wanted {
        match conformance.profile(url) {
            Ok(profile) => walker.resource(&profile, resource, &root_path),
            Err(message) if required => walker.push(Issue::error(IssueType::NotFound, message).at(root_path.clone())),
            Err(message) => walker.push(
                Issue::warning(IssueType::NotFound, format!("{message}: the resource was not checked against it"))
                    .at(root_path.clone()),
            ),
        }
    }
    walker.extensions(resource, &root_path);
    walker.content(resource, &root_path, 0);
    walker.finish()
}
