//! The walk of an instance against a profile's elements: for each constrained element, the
//! values the instance has for it (choices and `_name` siblings included), their count against
//! min and max, their type, fixed and pattern values, type profiles and reference targets,
//! invariants, slicing, then the element's own constrained children.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::snapshot::{CORE_PREFIX, Elem, Profile, Slicing, TypeRef};
use super::targets::Targets;
use super::{Conformance, MAX_CHECKS, MAX_NESTING, values};
use crate::definitions::{Definitions, Kind};
use crate::fhirpath::Expr;
use crate::outcome::{Issue, IssueType, Severity};

/// Most unknown target profiles reported for one reference.
const MAX_UNKNOWN_TARGETS: usize = 8;

/// The walk's state.
pub(crate) struct Walker<'c, 'r> {
    pub(super) conformance: &'c Conformance,
    /// The resource the value checked is in, or its container when it is contained
    /// (`%rootResource` of invariants; for references to contained resources).
    pub(super) root: &'r Value,
    /// The resource the value checked is in (`%resource` of invariants).
    pub(super) current: &'r Value,
    /// The top-level resource when it is a Bundle: references between its entries are resolved
    /// in it, and what they point to checked against their `targetProfile`s.
    bundle: Option<&'r Value>,
    /// The URL of the extension the extension walk is in (for contexts of type `extension`).
    pub(super) enclosing_extension: Option<&'r str>,
    issues: Vec<Issue>,
    /// Element checks made so far (a reference target's walk goes on counting from its
    /// referrer's, so [`MAX_CHECKS`] bounds a validation with its targets).
    pub(super) checks: usize,
    pub(super) nesting: usize,
    stopped: bool,
    /// Parsed invariant expressions (`None`: does not parse).
    pub(super) expressions: HashMap<String, Option<Expr>>,
    /// Where reference targets are resolved, when the caller supplies a resolver.
    pub(super) targets: Option<&'c Targets<'c>>,
    /// The `display`s of codings (their paths) that a value set a profile binds gives their
    /// codes ([`super::bindings`]): the code system's displays do not overrule them.
    pub(super) accepted_displays: Vec<String>,
}

/// A value the instance has for an element.
#[derive(Debug, Clone)]
pub(crate) struct Found<'r> {
    /// The JSON value; `None` for a primitive with only its `_name` sibling.
    pub(crate) value: Option<&'r Value>,
    /// The `_name` sibling of a primitive.
    pub(crate) ext: Option<&'r Value>,
    /// The type, when the element or the JSON name tells it (`valueQuantity` → `Quantity`).
    pub(crate) type_name: Option<String>,
    /// Where it is, FHIRPath-like: `Patient.identifier[0]`.
    pub(crate) path: String,
}

impl<'c, 'r> Walker<'c, 'r> {
    pub(crate) fn new(conformance: &'c Conformance, root: &'r Value) -> Self {
        Walker {
            conformance,
            root,
            current: root,
            bundle: (root.get("resourceType").and_then(Value::as_str) == Some("Bundle")).then_some(root),
            enclosing_extension: None,
            issues: Vec::new(),
            checks: 0,
            nesting: 0,
            stopped: false,
            expressions: HashMap::new(),
            targets: None,
            accepted_displays: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, issue: Issue) {
        self.issues.push(issue);
    }

    /// The issues found, each once.
    pub(crate) fn finish(self) -> Vec<Issue> {
        let mut out: Vec<Issue> = Vec::with_capacity(self.issues.len());
        for issue in self.issues {
            if !out.contains(&issue) {
                out.push(issue);
            }
        }
        out
    }

    /// Validates a resource (the top-level one, or one nested at `path`) against `profile`.
    pub(crate) fn resource(&mut self, profile: &Profile, resource: &'r Value, path: &str) {
        let found = Found {
            value: Some(resource),
            ext: None,
            type_name: resource.get("resourceType").and_then(Value::as_str).map(str::to_owned),
            path: path.to_owned(),
        };
        self.against(profile, &found);
    }

    /// Validates one value against a whole profile: its root element's rules, then its children.
    pub(crate) fn against(&mut self, profile: &Profile, found: &Found<'r>) {
        if self.nesting >= MAX_NESTING {
            self.issue(found.path.clone(), IssueType::TooCostly, format!("profiles nest deeper than {MAX_NESTING}"));
            return;
        }
        if let Some(actual) = found.value.and_then(|v| v.get("resourceType")).and_then(Value::as_str) {
            let defs = Definitions::r4();
            if actual != profile.type_name && !is_ancestor(defs, &profile.type_name, actual) {
                let message = format!("profile `{}` is for `{}`, not `{actual}`", profile.url, profile.type_name);
                self.issue(found.path.clone(), IssueType::Invalid, message);
                return;
            }
        }
        self.nesting += 1;
        let saved = (self.current, self.root);
        if let Some(resource) = found.value.filter(|v| v.get("resourceType").is_some()) {
            self.current = resource;
            // A contained resource's `%rootResource` is its container; a Bundle entry's or a
            // parameter's resource is its own.
            if !found.path.rsplit('.').next().is_some_and(|last| last.starts_with("contained")) {
                self.root = resource;
            }
        }
        if let Some(root) = profile.element(&profile.type_name) {
            self.value_rules(profile, root, found);
        }
        self.children(profile, &profile.type_name, found);
        (self.current, self.root) = saved;
        self.nesting -= 1;
    }

    /// Checks `resource` (at `path`) against the invariants of its core type, and of the core
    /// types of everything in it, when the core definitions are loaded.
    pub(crate) fn base(&mut self, resource: &'r Value, path: &str) {
        let Some(t) = resource.get("resourceType").and_then(Value::as_str) else { return };
        if let Ok(profile) = self.conformance.profile(&format!("{CORE_PREFIX}{t}")) {
            if profile.core {
                self.resource(&profile, resource, path);
            }
        }
    }

    /// Within a core definition: a value of a complex type or a resource is checked against
    /// that type's core definition too (`Period` for `per-1`, the contained resource's type...).
    fn core_type(&mut self, item: &Found<'r>) {
        let Some(value) = item.value else { return };
        let type_name = match value.get("resourceType").and_then(Value::as_str) {
            Some(t) => t.to_owned(),
            None => match item.type_name.as_deref() {
                Some(t) if !matches!(t, "BackboneElement" | "Element" | "Resource") => t.to_owned(),
                _ => return,
            },
        };
        let defs = Definitions::r4();
        if defs.type_def(&type_name).is_none_or(|d| d.kind == Kind::PrimitiveType) {
            return;
        }
        if let Ok(profile) = self.conformance.profile(&format!("{CORE_PREFIX}{type_name}")) {
            if profile.core {
                self.against(&profile, item);
            }
        }
    }

    /// Whether `found` conforms to `url` (no error), without reporting anything.
    pub(crate) fn conforms(&mut self, url: &str, found: &Found<'r>) -> Option<Vec<Issue>> {
        let profile = self.conformance.profile(url).ok()?;
        let saved = std::mem::take(&mut self.issues);
        self.against(&profile, found);
        let errors: Vec<Issue> = std::mem::replace(&mut self.issues, saved)
            .into_iter()
            .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
            .collect();
        Some(errors)
    }

    /// The errors of `found` against element `element` of profile `url` (its rules and its
    /// constrained children); `None` when the profile or the element is not known.
    pub(crate) fn conforms_to_element(&mut self, url: &str, element: &str, found: &Found<'r>) -> Option<Vec<Issue>> {
        let profile = self.conformance.profile(url).ok()?;
        let elem = profile.element(element)?;
        if self.nesting >= MAX_NESTING {
            return Some(vec![
                Issue::error(IssueType::TooCostly, format!("profiles nest deeper than {MAX_NESTING}"))
                    .at(found.path.clone()),
            ]);
        }
        let saved = std::mem::take(&mut self.issues);
        self.nesting += 1;
        self.value_rules(&profile, elem, found);
        self.children(&profile, element, found);
        self.nesting -= 1;
        let errors: Vec<Issue> = std::mem::replace(&mut self.issues, saved)
            .into_iter()
            .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
            .collect();
        Some(errors)
    }

    pub(super) fn issue(&mut self, path: String, code: IssueType, message: String) {
        self.issues.push(Issue::error(code, message).at(path));
    }

    pub(super) fn warning(&mut self, path: String, code: IssueType, message: String) {
        self.issues.push(Issue::warning(code, message).at(path));
    }

    /// Counts one check; false once the budget is spent (reported once).
    fn spend(&mut self, path: &str) -> bool {
        self.checks += 1;
        if self.checks > MAX_CHECKS && !self.stopped {
            self.stopped = true;
            self.issue(path.to_owned(), IssueType::TooCostly, format!("validation stopped after {MAX_CHECKS} checks"));
        }
        !self.stopped
    }

    /// The constrained children of element `id` in the value `found`.
    pub(crate) fn children(&mut self, profile: &Profile, id: &str, found: &Found<'r>) {
        let object = match (found.value, found.ext) {
            (Some(Value::Object(o)), _) => o,
            (_, Some(Value::Object(o))) => o,
            _ => return,
        };
        for &child in profile.children(id) {
            let elem = &profile.elements[child];
            let items = gather(object, elem, &found.path);
            self.element(profile, child, &items, &found.path);
        }
    }

    /// One element with the values found for it in one parent.
    pub(crate) fn element(&mut self, profile: &Profile, index: usize, items: &[Found<'r>], parent_path: &str) {
        if !self.spend(parent_path) {
            return;
        }
        let elem = &profile.elements[index];
        if profile.core {
            for item in items {
                if !elem.constraints.is_empty() {
                    self.invariants(elem, item);
                }
                self.primitive_content(elem, item);
                self.core_type(item);
                self.children(profile, &elem.id, item);
            }
            return;
        }
        let shown = elem.slice_name.as_ref().map_or_else(|| elem.name.clone(), |s| format!("{}:{s}", elem.name));
        let location = format!("{parent_path}.{}", elem.name.trim_end_matches("[x]"));
        if let Some(min) = elem.min {
            if items.len() < min as usize {
                let message =
                    format!("`{shown}`: at least {min} required, found {} (profile `{}`)", items.len(), profile.url);
                self.issue(location.clone(), IssueType::Required, message);
            }
        }
        if let Some(Some(max)) = elem.max {
            if items.len() > max as usize {
                let message =
                    format!("`{shown}`: at most {max} allowed, found {} (profile `{}`)", items.len(), profile.url);
                self.issue(location, IssueType::Structure, message);
            }
        }
        for item in items {
            self.value_rules(profile, elem, item);
        }
        let slices = profile.slices(&elem.id);
        if !slices.is_empty() {
            let slicing = elem.slicing.clone().or_else(|| {
                matches!(elem.name.as_str(), "extension" | "modifierExtension").then(|| Slicing {
                    discriminators: vec![("value".to_owned(), "url".to_owned())],
                    rules: "open".to_owned(),
                })
            });
            if let Some(slicing) = slicing {
                self.slicing(profile, index, &slicing, items, parent_path);
            }
        }
        for item in items {
            self.children(profile, &elem.id, item);
        }
    }

    /// The rules on one value: type, type profiles, reference targets, fixed, pattern,
    /// invariants.
    fn value_rules(&mut self, profile: &Profile, elem: &Elem, item: &Found<'r>) {
        if !elem.types.is_empty() {
            self.type_rules(elem, item);
        }
        if let (false, None, Some(ext)) = (elem.value_alternatives.is_empty(), item.value, item.ext) {
            let extensions = ext.get("extension").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let alternative = extensions.iter().any(|x| {
                x.get("url").and_then(Value::as_str).is_some_and(|u| elem.value_alternatives.iter().any(|a| a == u))
            });
            if !alternative {
                let message = format!(
                    "`{}` has no value, and none of the extensions that may stand in for it ({}) (profile `{}`)",
                    elem.name,
                    elem.value_alternatives.join(", "),
                    profile.url
                );
                self.issue(item.path.clone(), IssueType::Required, message);
            }
        }
        if elem.must_have_value && item.value.is_none() && item.ext.is_some() {
            let message = format!("`{}` must have a value, not only extensions (profile `{}`)", elem.name, profile.url);
            self.issue(item.path.clone(), IssueType::Required, message);
        }
        if let Some(value) = item.value {
            if let Some(fixed) = &elem.fixed {
                if !values::equal(fixed, value) {
                    let message = format!("value must be exactly {} (profile `{}`)", values::shown(fixed), profile.url);
                    self.issue(item.path.clone(), IssueType::Value, message);
                }
            }
            if let Some(pattern) = &elem.pattern {
                if !values::matches_pattern(pattern, value) {
                    let message =
                        format!("value must match the pattern {} (profile `{}`)", values::shown(pattern), profile.url);
                    self.issue(item.path.clone(), IssueType::Value, message);
                }
            }
            if let Some(message) = values::out_of_range(elem, value) {
                self.issue(item.path.clone(), IssueType::Value, format!("{message} (profile `{}`)", profile.url));
            }
            self.binding(profile, elem, item, value);
        }
        if let Some(controls) = &elem.narrative {
            self.narrative_controls(&profile.url, controls, item);
        }
        if !elem.constraints.is_empty() {
            self.invariants(elem, item);
        }
    }

    fn type_rules(&mut self, elem: &Elem, item: &Found<'r>) {
        let chosen: Option<&TypeRef> = match &item.type_name {
            Some(t) if elem.name.ends_with("[x]") => {
                let found = elem.types.iter().find(|r| r.code == *t);
                if found.is_none() {
                    let allowed: Vec<&str> = elem.types.iter().map(|r| r.code.as_str()).collect();
                    let message = format!("type `{t}` is not allowed here (allowed: {})", allowed.join(", "));
                    self.issue(item.path.clone(), IssueType::Structure, message);
                    return;
                }
                found
            }
            _ => (elem.types.len() == 1).then(|| &elem.types[0]),
        };
        let Some(chosen) = chosen else { return };
        if !chosen.profiles.is_empty() {
            self.type_profiles(&chosen.profiles, &chosen.profile_elements, item);
        }
        if chosen.code == "Reference" && !chosen.target_profiles.is_empty() {
            self.reference_target(&chosen.target_profiles, item);
        }
    }

    /// The value conforms to one of `profiles` (errors of the first reported when none fits).
    fn type_profiles(&mut self, profiles: &[String], elements: &[Option<String>], item: &Found<'r>) {
        let mut first: Option<Vec<Issue>> = None;
        let mut known = false;
        for (i, url) in profiles.iter().enumerate() {
            let errors = match elements.get(i).and_then(Option::as_deref) {
                Some(element) => self.conforms_to_element(url, element, item),
                None => self.conforms(url, item),
            };
            let Some(errors) = errors else { continue };
            known = true;
            if errors.is_empty() {
                return;
            }
            first.get_or_insert(errors);
        }
        if !known {
            // A type profile this server does not have: core types are checked by the base
            // validator; others are reported once.
            if let Some(url) = profiles.iter().find(|u| !is_core(u)) {
                let message = format!("profile `{url}` is not known: the value was not checked against it");
                self.warning(item.path.clone(), IssueType::NotFound, message);
            }
            return;
        }
        self.issues.extend(first.unwrap_or_default());
    }

    /// A reference's target type against `targetProfile`, and the target itself when a
    /// resolver finds it ([`Self::target_profiles`]).
    fn reference_target(&mut self, targets: &[String], item: &Found<'r>) {
        let Some(reference) = item.value.and_then(|v| v.get("reference")).and_then(Value::as_str) else { return };
        let Some(target_type) = self.reference_type(reference) else { return };
        let allowed: Vec<String> = targets.iter().filter_map(|t| self.profile_type(t)).collect();
        if allowed.is_empty() || allowed.iter().any(|t| t == "Resource" || *t == target_type) {
            // A target inside the Bundle being validated is that entry; otherwise the
            // caller's resolver (if any) reads it.
            if !self.bundle_target(targets, item, reference) {
                self.target_profiles(targets, item, reference);
            }
            return;
        }
        let message = format!("a reference to `{target_type}` is not allowed here (allowed: {})", allowed.join(", "));
        self.issue(item.path.clone(), IssueType::Structure, message);
    }

    /// A reference between the entries of a Bundle: what it points to must conform to one of the
    /// `targetProfile`s this server knows (core ones are the base checks' business). The walk's
    /// check budget bounds references that lead back and forth.
    fn bundle_target(&mut self, targets: &[String], item: &Found<'r>, reference: &str) -> bool {
        let Some(bundle) = self.bundle else { return false };
        let Some(target) = crate::validation::resolve_entry(Definitions::r4(), bundle, self.current, reference) else {
            return false;
        };
        let found = Found {
            value: Some(target),
            ext: None,
            type_name: target.get("resourceType").and_then(Value::as_str).map(str::to_owned),
            path: format!("{}.resolve()", item.path),
        };
        self.unknown_target_profiles(targets, item);
        let mut known = Vec::new();
        for url in targets.iter().filter(|u| !is_core(u)) {
            match self.conforms(url, &found) {
                Some(errors) if errors.is_empty() => return true,
                Some(_) => known.push(url.as_str()),
                None => {}
            }
        }
        if !known.is_empty() {
            let message = format!(
                "`{}` points to an entry that conforms to none of the target profiles ({})",
                crate::validation::shorten(reference),
                known.join(", ")
            );
            self.issue(item.path.clone(), IssueType::Structure, message);
        }
        true
    }

    /// Once a reference's target is found (in the Bundle or by the caller's resolver), each
    /// `targetProfile` must be one this validator knows, or the target cannot be checked against
    /// it: an error, as the reference validator reports it ("Unable to resolve the profile
    /// reference"). A target that is not found is checked by its type only, and unknown
    /// profiles are not reported then.
    pub(super) fn unknown_target_profiles(&mut self, targets: &[String], item: &Found<'r>) {
        let unknown: Vec<&String> =
            targets.iter().filter(|u| self.profile_type(u).is_none()).take(MAX_UNKNOWN_TARGETS).collect();
        for url in unknown {
            let message =
                format!("the target profile `{url}` is not known, so the target cannot be checked against it");
            self.issue(item.path.clone(), IssueType::NotFound, message);
        }
    }

    /// The resource type a reference points to: `Patient/1`, an absolute URL ending so, or a
    /// contained resource (`#id`).
    pub(super) fn reference_type(&self, reference: &str) -> Option<String> {
        if let Some(id) = reference.strip_prefix('#') {
            let contained = self.root.get("contained")?.as_array()?;
            let r = contained.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
            return r.get("resourceType").and_then(Value::as_str).map(str::to_owned);
        }
        let path = reference.split(['?', '#']).next()?;
        let mut segments: Vec<&str> = path.split('/').collect();
        if segments.len() >= 4 && segments[segments.len() - 2] == "_history" {
            segments.truncate(segments.len() - 2);
        }
        let t = segments.get(segments.len().checked_sub(2)?)?;
        Definitions::r4().is_resource_type(t).then(|| (*t).to_owned())
    }

    /// The type a profile URL constrains (a core type's URL names it).
    pub(super) fn profile_type(&self, url: &str) -> Option<String> {
        let url = url.split('|').next().unwrap_or(url);
        if let Some(t) = url.strip_prefix(CORE_PREFIX).filter(|t| Definitions::r4().type_def(t).is_some()) {
            return Some(t.to_owned());
        }
        self.conformance.structure_definition(url)?.get("type")?.as_str().map(str::to_owned)
    }

    fn slicing(&mut self, profile: &Profile, index: usize, slicing: &Slicing, items: &[Found<'r>], parent: &str) {
        let elem = &profile.elements[index];
        let slices = profile.slices(&elem.id).to_vec();
        let mut matched: Vec<Vec<Found<'r>>> = vec![Vec::new(); slices.len()];
        let mut unmatched_before = false;
        for item in items {
            let slot = slices.iter().position(|&s| self.in_slice(profile, s, &slicing.discriminators, item));
            match slot {
                Some(slot) => {
                    if slicing.rules == "openAtEnd" && unmatched_before {
                        let message = "values that match no slice must come after the sliced ones (openAtEnd)";
                        self.issue(item.path.clone(), IssueType::Structure, message.to_owned());
                    }
                    matched[slot].push(item.clone());
                }
                None => {
                    unmatched_before = true;
                    // A complex extension's parts are named by the URLs its definition gives
                    // them; a relative one it does not define is no part of it.
                    let relative_url =
                        item.value.and_then(|v| v.get("url")).and_then(Value::as_str).filter(|u| !u.contains(':'));
                    if let (Some(url), true) =
                        (relative_url, profile.type_name == "Extension" && elem.name == "extension")
                    {
                        let message =
                            format!("sub-extension url `{url}` is not defined by the extension `{}`", profile.url);
                        self.issue(item.path.clone(), IssueType::Structure, message);
                    } else if slicing.rules == "closed" {
                        let message = format!(
                            "this value matches none of the slices of `{}`, and the slicing is closed (profile `{}`)",
                            elem.name, profile.url
                        );
                        self.issue(item.path.clone(), IssueType::Structure, message);
                    }
                }
            }
        }
        for (slot, &s) in slices.iter().enumerate() {
            let found = std::mem::take(&mut matched[slot]);
            self.element(profile, s, &found, parent);
        }
    }
}

/// Whether a core type's URL.
pub(super) fn is_core(url: &str) -> bool {
    url.strip_prefix(CORE_PREFIX).is_some_and(|t| Definitions::r4().type_def(t).is_some())
}

/// Whether `ancestor` is `name` or a type `name` derives from.
pub(super) fn is_ancestor(defs: &Definitions, ancestor: &str, name: &str) -> bool {
    let mut current = Some(name);
    for _ in 0..8 {
        let Some(t) = current else { return false };
        if t == ancestor {
            return true;
        }
        current = defs.type_def(t).and_then(|d| d.base.as_deref());
    }
    false
}

/// The values an object has for an element: `name` (and `_name`), or every type of a choice.
pub(crate) fn gather<'r>(object: &'r Map<String, Value>, elem: &Elem, parent_path: &str) -> Vec<Found<'r>> {
    let mut out = Vec::new();
    if let Some(stem) = elem.name.strip_suffix("[x]") {
        let mut keys: Vec<&str> = Vec::new();
        for key in object.keys() {
            let bare = key.strip_prefix('_').unwrap_or(key);
            if let Some(suffix) = bare.strip_prefix(stem) {
                if suffix.starts_with(|c: char| c.is_ascii_uppercase()) && !keys.contains(&bare) {
                    keys.push(bare);
                }
            }
        }
        for key in keys {
            let type_name = type_of_suffix(&key[stem.len()..]);
            collect(object, key, type_name, parent_path, &mut out);
        }
    } else {
        let type_name = (elem.types.len() == 1).then(|| elem.types[0].code.clone());
        collect(object, &elem.name, type_name, parent_path, &mut out);
    }
    out
}

/// The type a choice's JSON name ends with: `Quantity`, or `dateTime` for `DateTime`.
pub(crate) fn type_of_suffix(suffix: &str) -> Option<String> {
    let defs = Definitions::r4();
    if defs.type_def(suffix).is_some_and(|t| t.kind != Kind::PrimitiveType) {
        return Some(suffix.to_owned());
    }
    let mut chars = suffix.chars();
    let first = chars.next()?;
    let lowered = format!("{}{}", first.to_ascii_lowercase(), chars.as_str());
    defs.type_def(&lowered).map(|_| lowered)
}

fn collect<'r>(
    object: &'r Map<String, Value>,
    key: &str,
    type_name: Option<String>,
    parent_path: &str,
    out: &mut Vec<Found<'r>>,
) {
    let value = object.get(key);
    let ext = object.get(&format!("_{key}"));
    match (value, ext) {
        (None, None) => {}
        (Some(Value::Array(values)), _) | (None, Some(Value::Array(values))) => {
            let exts = ext.and_then(Value::as_array);
            let from_values = value.is_some();
            for i in 0..values.len().max(exts.map_or(0, Vec::len)) {
                let v = if from_values { values.get(i).filter(|v| !v.is_null()) } else { None };
                let e = exts.and_then(|e| e.get(i)).filter(|e| !e.is_null());
                if v.is_none() && e.is_none() {
                    continue;
                }
                out.push(Found {
                    value: v,
                    ext: e,
                    type_name: type_name.clone(),
                    path: format!("{parent_path}.{key}[{i}]"),
                });
            }
        }
        (value, ext) => out.push(Found { value, ext, type_name, path: format!("{parent_path}.{key}") }),
    }
}
