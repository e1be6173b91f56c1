//! Validation against profiles: the conformance resources a server knows (from FHIR packages
//! loaded at start, see [`package`], and from StructureDefinitions written through the API), the
//! profiles generated from their differentials ([`snapshot`]), and the checks a profile makes on
//! an instance: cardinality, types, fixed and pattern values, slicing, extensions by their
//! definitions, invariants (FHIRPath), reference targets, down into contained resources and
//! Bundle entries.
//!
//! Required bindings a profile adds, and its additional bindings of purpose `required` or
//! `maximum` ([`bindings`]), are checked against the expansions of their value sets, from
//! the ValueSets and CodeSystems of this set (packages, a validation's supporting resources)
//! layered over the R4 terminology (the base definitions' own, and the base structure checks,
//! are [`crate::validation`]'s, which run first).
//!
//! Content rules R4 states but plain writes do not enforce (an Attachment's stated size, a
//! narrative's txt-2, repeated Bundle link relations) are reported here too ([`content`]), as
//! are the primitive content rules the reference validator grades ([`strings`]: HTML-looking
//! strings and markdown, example URLs, relative `Coding.system`), a profile's narrative controls
//! ([`narrative`]) and a Bundle's entries against the profiles [`Conformance::bundle_rules`]
//! name.
//!
//! When the caller asks for it, the targets of relative references must exist
//! ([`unresolved_references`], the reference validator's `CHECK_EXISTS_AND_TYPE`).
//!
//! Every walk is bounded: profile nesting ([`MAX_NESTING`]), the number of element checks of one
//! validation ([`MAX_CHECKS`]), and each invariant's FHIRPath budget.

mod authoring;
mod bindings;
#[cfg(test)]
mod bindings_tests;
mod content;
mod context_errata;
mod existence;
#[cfg(test)]
mod existence_tests;
mod extensions;
mod invariants;
#[cfg(test)]
mod invariants_tests;
mod narrative;
mod obligations;
#[cfg(test)]
mod obligations_tests;
pub mod package;
pub mod registry;
mod slicing;
pub mod snapshot;
mod strings;
mod targets;
#[cfg(test)]
mod targets_tests;
#[cfg(test)]
mod tests;
mod units;
mod values;
mod walk;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use crate::outcome::{Issue, IssueType};
use crate::terminology::{self, Expansion, Limits, Sources};
pub use existence::unresolved_references;
pub use snapshot::Profile;
pub use targets::{MAX_TARGET_DEPTH, MAX_TARGETS, ReferenceResolver};

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
    /// With `strict_extensions`: whether unknown extensions of example domains are refused too
    /// (the reference validator's "examples not allowed" setting); URLs of those domains are
    /// then errors too.
    pub refuse_example_extensions: bool,
    /// Whether a string that looks like it holds HTML tags is an error rather than a warning
    /// (the reference validator's "security checks").
    pub security_checks: bool,
    /// Whether an HTML tag in markdown is an error rather than a warning.
    pub no_html_in_markdown: bool,
    /// Profiles a Bundle's entries are validated against, by rule (the reference validator's
    /// bundle validation rules): (`Type`, `Type:n` — the n-th entry of that type from 0 — or
    /// `n` — the n-th entry; the profile's canonical URL).
    pub bundle_rules: Vec<(String, String)>,
    /// Whether `$validate` requires the targets of relative references to exist
    /// ([`unresolved_references`], read as the caller may read them; the reference validator's
    /// `validateReference` `CHECK_EXISTS_AND_TYPE`). Writes never read targets.
    pub references_must_exist: bool,
    /// Where StructureDefinitions not found here are looked up (the packages under a request's
    /// own definitions).
    fallback: Option<Arc<Conformance>>,
    /// `ImplementationGuide.global` of the guides loaded: (resource type, profile every
    /// resource of that type must conform to).
    globals: Vec<(String, String)>,
    /// The ValueSets and CodeSystems of `resources`, read on first use (`None`: there are none).
    terminology: OnceLock<Option<terminology::Registry>>,
    /// Expansions made from this set's terminology over its fallback's and R4's (`None`: the
    /// value set cannot be expanded from them); forgotten when a resource is added.
    expansions: RwLock<HashMap<String, Option<Arc<Expansion>>>>,
}

/// Most expansions one [`Conformance`] keeps.
const KEPT_EXPANSIONS: usize = 2_000;

/// The resource types a package contributes to [`Conformance`].
pub const CONFORMANCE_TYPES: &[&str] =
    &["StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "CapabilityStatement", "ImplementationGuide"];

impl Conformance {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set whose look-ups fall back to `base`.
    pub fn over(base: Arc<Conformance>) -> Self {
        Self { fallback: Some(base), ..Self::default() }
    }

    /// Takes the validation settings of `other` (strictness, security checks, markdown, bundle
    /// rules): a set made [`Self::over`] a server's packages validates as they are configured.
    pub fn copy_settings(&mut self, other: &Conformance) {
        self.strict_extensions = other.strict_extensions;
        self.refuse_example_extensions = other.refuse_example_extensions;
        self.security_checks = other.security_checks;
        self.no_html_in_markdown = other.no_html_in_markdown;
        self.bundle_rules.clone_from(&other.bundle_rules);
        self.references_must_exist = other.references_must_exist;
    }

    /// Adds a conformance resource (any of [`CONFORMANCE_TYPES`]; others are ignored). A later
    /// StructureDefinition with the same URL replaces the earlier one.
    pub fn add(&mut self, resource: Value) {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else { return };
        if !CONFORMANCE_TYPES.contains(&resource_type) {
            return;
        }
        let is_structure_definition = resource_type == "StructureDefinition";
        if resource_type == "ImplementationGuide" {
            for global in resource.get("global").and_then(Value::as_array).into_iter().flatten() {
                let text = |k: &str| global.get(k).and_then(Value::as_str).map(str::to_owned);
                if let (Some(t), Some(profile)) = (text("type"), text("profile")) {
                    self.globals.push((t, profile));
                }
            }
        }
        if matches!(resource_type, "ValueSet" | "CodeSystem") {
            self.terminology = OnceLock::new();
            self.expansions.get_mut().map(HashMap::clear).unwrap_or_default();
        }
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

    /// The profiles the loaded implementation guides require of every `resource_type` resource
    /// (`ImplementationGuide.global`), this set's and its fallbacks'.
    pub fn globals(&self, resource_type: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut set = Some(self);
        while let Some(s) = set {
            out.extend(s.globals.iter().filter(|(t, _)| t == resource_type).map(|(_, p)| p.as_str()));
            set = s.fallback.as_deref();
        }
        out
    }

    /// This set's own terminology (none when it holds no ValueSet or CodeSystem).
    fn own_terminology(&self) -> Option<&terminology::Registry> {
        self.terminology
            .get_or_init(|| {
                let coded = self.resources.iter().filter(|r| {
                    matches!(r.get("resourceType").and_then(Value::as_str), Some("ValueSet" | "CodeSystem"))
                });
                let (registry, _unusable) = terminology::Registry::from_resources(coded.map(|r| &**r));
                registry.has_content().then_some(registry)
            })
            .as_ref()
    }

    /// The terminology of this set, then its fallbacks', then R4's.
    fn sources(&self) -> Sources<'_> {
        let mut layers = Vec::new();
        let mut set = Some(self);
        while let Some(s) = set {
            layers.extend(s.own_terminology());
            set = s.fallback.as_deref();
        }
        layers.push(terminology::Registry::r4());
        Sources::new(layers)
    }

    /// The ValueSet `url` (`url|version`) from the terminology of this set, its fallbacks' or R4's.
    pub(crate) fn value_set(&self, url: &str) -> Option<Arc<terminology::ValueSet>> {
        let (bare, version) = terminology::expand::split_canonical(url);
        self.sources().value_set(bare, version)
    }

    /// The expansion of a ValueSet resource that is not loaded by its URL (one contained in a
    /// profile): its `compose` expanded from this set's terminology, or else the codes its own
    /// `expansion` lists.
    pub(crate) fn expand_resource(&self, value_set: &Value) -> Option<Expansion> {
        let limits = Limits::default();
        if value_set.get("compose").is_some() {
            let parsed = terminology::ValueSet::parse(value_set).ok()?;
            return self.sources().expand(&parsed, &limits).ok();
        }
        Expansion::stored(value_set, &limits)
    }

    /// The expansion of the value set `url` (`url|version`) from the terminology of this set,
    /// then its fallback's, then R4's; `None` when it cannot be expanded from them (a system
    /// not loaded, too large...). Kept for the next caller.
    pub(crate) fn expansion(&self, url: &str) -> Option<Arc<Expansion>> {
        let r4 = terminology::Registry::r4();
        let (bare, version) = terminology::expand::split_canonical(url);
        // Nothing of its own: the fallback's answer (and cache) is this set's.
        let Some(own) = self.own_terminology() else {
            return match &self.fallback {
                Some(fallback) => fallback.expansion(url),
                None => r4.cached_expansion(bare),
            };
        };
        let mut layers = vec![own];
        let mut set = self.fallback.as_deref();
        while let Some(s) = set {
            layers.extend(s.own_terminology());
            set = s.fallback.as_deref();
        }
        if let Some(kept) = self.expansions.read().ok().and_then(|k| k.get(url).cloned()) {
            return kept;
        }
        layers.push(r4);
        let sources = Sources::new(layers);
        let expansion =
            sources.value_set(bare, version).and_then(|vs| sources.expand(&vs, &Limits::default()).ok()).map(Arc::new);
        if let Ok(mut kept) = self.expansions.write() {
            if kept.len() >= KEPT_EXPANSIONS {
                kept.clear();
            }
            kept.insert(url.to_owned(), expansion.clone());
        }
        expansion
    }

    /// A StructureDefinition by canonical URL (`url` or `url|version`). A version of only
    /// major.minor (`|0.2`) names the latest patch of it (`0.2.1`), as canonical references to
    /// semver-versioned resources do.
    pub fn structure_definition(&self, url: &str) -> Option<&Value> {
        match self.structure_definitions.get(url).or_else(|| self.latest_patch(url)) {
            Some(r) => Some(&**r),
            None => self.fallback.as_ref()?.structure_definition(url),
        }
    }

    /// For `url|major.minor`: the StructureDefinition of this set with the highest
    /// `major.minor.patch` version.
    fn latest_patch(&self, canonical: &str) -> Option<&Arc<Value>> {
        let (url, version) = canonical.split_once('|')?;
        if version.split('.').count() != 2 {
            return None;
        }
        let patch = |key: &str| -> Option<u64> {
            let (u, v) = key.split_once('|')?;
            (u == url).then_some(())?;
            v.strip_prefix(version)?.strip_prefix('.')?.parse().ok()
        };
        self.structure_definitions
            .iter()
            .filter_map(|(key, sd)| Some((patch(key)?, sd)))
            .max_by_key(|(patch, _)| *patch)
            .map(|(_, sd)| sd)
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

impl crate::fhirpath::ValueSetSource for Conformance {
    fn expansion(&self, url: &str) -> Option<Arc<Expansion>> {
        Conformance::expansion(self, url)
    }
}

/// The checks of a StructureDefinition itself ([`authoring`]): paths, type profiles, fixed
/// values a base already fixes; and the profiles whose obligations it inherits ([`obligations`]). Part of [`validate`] for a StructureDefinition.
pub fn check_structure_definition(conformance: &Conformance, sd: &Value) -> Vec<Issue> {
    let mut issues = authoring::check(conformance, sd);
    issues.extend(obligations::check(conformance, sd));
    issues
}

/// Validates `resource` against the profiles in `profiles`, those it declares in `meta.profile`
/// and those the loaded implementation guides require of its type (`ImplementationGuide.global`),
/// and its extensions against their definitions. An unknown profile named in `profiles` is an
/// error; one only declared (or required by a guide) is a warning (the instance may conform to a
/// profile this server has not been given).
pub fn validate(conformance: &Conformance, resource: &Value, profiles: &[&str]) -> Vec<Issue> {
    validate_resolving(conformance, resource, profiles, None)
}

/// [`validate`], with the targets of references whose elements name target profiles resolved
/// by `resolver` and checked against them ([`targets`]).
pub fn validate_resolving(
    conformance: &Conformance,
    resource: &Value,
    profiles: &[&str],
    resolver: Option<&dyn ReferenceResolver>,
) -> Vec<Issue> {
    validate_checked(conformance, resource, profiles, resolver).issues
}

/// What [`validate_checked`] found.
#[derive(Debug, Default)]
pub struct Checked {
    pub issues: Vec<Issue>,
    /// The `display`s of codings (FHIRPath-like paths, `Patient.contact[0].relationship[0].coding[0].display`)
    /// that a value set a profile binds gives their codes: accepted whatever the code system's
    /// displays are, as the reference validator checks a bound coding's display against the
    /// value set first.
    pub accepted_displays: Vec<String>,
}

impl Checked {
    /// `displays` ([`crate::check_displays`]' issues) but those the profiles' value sets accept.
    pub fn keep_displays(&self, mut displays: Vec<Issue>) -> Vec<Issue> {
        displays.retain(|i| !i.expression.as_ref().is_some_and(|e| self.accepted_displays.contains(e)));
        displays
    }
}

/// [`validate_resolving`], with the displays the profiles' value sets accept.
pub fn validate_checked(
    conformance: &Conformance,
    resource: &Value,
    profiles: &[&str],
    resolver: Option<&dyn ReferenceResolver>,
) -> Checked {
    let targets = resolver.map(targets::Targets::new);
    let mut walker = walk::Walker::new(conformance, resource);
    walker.targets = targets.as_ref();
    let root_path = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
    walker.base(resource, &root_path);
    let declared: Vec<&str> = resource
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let globals = conformance.globals(&root_path);
    let mut wanted: Vec<(&str, bool)> = Vec::new();
    let others = declared.iter().chain(&globals).map(|u| (*u, false));
    for (url, required) in profiles.iter().map(|u| (*u, true)).chain(others) {
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
    if root_path == "Bundle" && !conformance.bundle_rules.is_empty() {
        bundle_rules(conformance, &mut walker, resource);
    }
    walker.extensions(resource, &root_path);
    if root_path == "StructureDefinition" {
        for issue in check_structure_definition(conformance, resource) {
            walker.push(issue);
        }
    }
    walker.content(resource, &root_path, 0);
    let accepted_displays = std::mem::take(&mut walker.accepted_displays);
    Checked { issues: walker.finish(), accepted_displays }
}

/// Validates the entries of `bundle` that [`Conformance::bundle_rules`] name against their
/// profiles (an unknown profile is an error: the rule asked for it).
fn bundle_rules<'r>(conformance: &Conformance, walker: &mut walk::Walker<'_, 'r>, bundle: &'r Value) {
    let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, resource) in entries.iter().enumerate().filter_map(|(i, e)| Some((i, e.get("resource")?))) {
        let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        let nth = seen.entry(resource_type).or_default();
        let of_type = *nth;
        *nth += 1;
        for (rule, url) in &conformance.bundle_rules {
            let (t, index) = match rule.split_once(':') {
                Some((t, n)) => (Some(t), n.parse::<usize>().ok().map(|n| (n, of_type))),
                None => match rule.parse::<usize>() {
                    Ok(n) => (None, Some((n, i))),
                    Err(_) => (Some(rule.as_str()), None),
                },
            };
            if t.is_some_and(|t| t != resource_type) || index.is_some_and(|(n, at)| n != at) {
                continue;
            }
            let path = format!("Bundle.entry[{i}].resource");
            match conformance.profile(url) {
                Ok(profile) => walker.resource(&profile, resource, &path),
                Err(message) => walker.push(Issue::error(IssueType::NotFound, message).at(path)),
            }
        }
    }
}
