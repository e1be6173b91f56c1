//! The bindings a profile puts on an element, checked against the expansions of their value sets
//! ([`Conformance::expansion`](super::Conformance::expansion)): the element's required binding,
//! and the additional bindings R5 defines and R4 profiles state with an extension on
//! `ElementDefinition.binding` (R5's `extension-ElementDefinition.binding.additional`, or the
//! FHIR tooling's `additional-binding`; <https://hl7.org/fhir/R5/elementdefinition-definitions.html#ElementDefinition.binding.additional>).
//!
//! An additional binding whose purpose is `required` or `maximum` is enforced as a required
//! binding is (a value outside it is an error, as the reference validator reports it);
//! `extensible` and `current` ones are warnings; the others (`preferred`, `minimum`, `ui`,
//! `starter`, `component`, `candidate`) only document. One limited by `usage` contexts, which
//! this validator does not evaluate, is not checked. A value set that cannot be expanded from what
//! is loaded is not checked either.
//!
//! A binding's value set may be one the profile contains (`#id`): its `compose` is expanded, or,
//! when it has none, the codes its own `expansion` lists are its codes. A coding bound (required
//! or extensible) to a value set that gives its code the coding's display (in the expansion or
//! the compose, as the display or a designation) has that display accepted
//! ([`super::Checked::accepted_displays`]): the reference validator checks a bound coding's
//! display against the value set before the code system.

use std::sync::Arc;

use serde_json::Value;

use super::Conformance;
use super::snapshot::{Elem, Profile};
use super::walk::{Found, Walker};
use crate::outcome::IssueType;

/// The extensions on `ElementDefinition.binding` that state an additional binding.
const ADDITIONAL_BINDING: [&str; 2] = [
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
    "http://hl7.org/fhir/tools/StructureDefinition/additional-binding",
];

/// Additional bindings looked at per element (a profile states a handful at most).
const MAX_ADDITIONAL: usize = 16;

/// How a binding's value set is enforced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enforced {
    Error,
    Warning,
}

impl<'r> Walker<'_, 'r> {
    /// The required binding the profile adds (the base definitions' own are checked by
    /// [`crate::validation::binding`]) and the element's additional bindings.
    pub(super) fn binding(&mut self, profile: &Profile, elem: &Elem, item: &Found<'r>, value: &Value) {
        let Some(binding) = &elem.binding else { return };
        let strength = binding.get("strength").and_then(Value::as_str);
        if let (Some("required" | "extensible"), Some(canonical)) =
            (strength, binding.get("valueSet").and_then(Value::as_str))
        {
            self.accept_displays(profile, item, value, canonical);
        }
        if strength == Some("required") {
            if let Some(canonical) = binding.get("valueSet").and_then(Value::as_str) {
                let url = canonical.split('|').next().unwrap_or(canonical);
                let path: Vec<&str> = elem.id.split('.').map(|step| step.split(':').next().unwrap_or(step)).collect();
                if crate::terminology::Registry::r4().required_binding(&path.join(".")) != Some(url) {
                    self.bound(profile, elem, item, value, canonical, "required", Enforced::Error);
                }
            }
        }
        let additional = binding
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("url").and_then(Value::as_str).is_some_and(|u| ADDITIONAL_BINDING.contains(&u)))
            .take(MAX_ADDITIONAL);
        for extension in additional {
            let parts = extension.get("extension").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let part = |name: &str| parts.iter().find(|p| p.get("url").and_then(Value::as_str) == Some(name));
            if part("usage").is_some() {
                continue;
            }
            let purpose = part("purpose").and_then(|p| p.get("valueCode")).and_then(Value::as_str);
            let enforced = match purpose {
                Some("required" | "maximum") => Enforced::Error,
                Some("extensible" | "current") => Enforced::Warning,
                _ => continue,
            };
            let Some(canonical) = part("valueSet").and_then(|p| p.get("valueCanonical")).and_then(Value::as_str) else {
                continue;
            };
            let purpose = purpose.unwrap_or_default();
            self.bound(profile, elem, item, value, canonical, &format!("additional binding, {purpose}"), enforced);
        }
    }

    /// `value` must be in the expansion of `canonical` (when it can be expanded).
    #[expect(clippy::too_many_arguments, reason = "the walk's position, the value and the binding's three facts")]
    fn bound(
        &mut self,
        profile: &Profile,
        elem: &Elem,
        item: &Found<'r>,
        value: &Value,
        canonical: &str,
        how: &str,
        enforced: Enforced,
    ) {
        let url = canonical.split('|').next().unwrap_or(canonical);
        // The type as stated, or as the value's shape tells it (a differential may not repeat it).
        let type_name =
            item.type_name.as_deref().or_else(|| (elem.types.len() == 1).then(|| elem.types[0].code.as_str())).or(
                match value {
                    Value::String(_) => Some("code"),
                    Value::Object(o) if o.contains_key("coding") => Some("CodeableConcept"),
                    Value::Object(o) if o.contains_key("code") => Some("Coding"),
                    _ => None,
                },
            );
        let expansion = match canonical.strip_prefix('#') {
            Some(_) => contained(self.conformance, profile, canonical)
                .and_then(|vs| self.conformance.expand_resource(vs))
                .map(Arc::new),
            None => self.conformance.expansion(canonical),
        };
        let (Some(type_name), Some(expansion)) = (type_name, expansion) else { return };
        if let Some(shown) = crate::validation::binding::outside(type_name, value, &expansion) {
            let message = format!(
                "{shown} is not in the value set `{url}`, which profile `{}` binds this element to ({how})",
                profile.url
            );
            match enforced {
                Enforced::Error => self.issue(item.path.clone(), IssueType::Value, message),
                Enforced::Warning => self.warning(item.path.clone(), IssueType::Value, message),
            }
        }
    }

    /// The codings of `value` whose `display` is one the value set `canonical` gives their code
    /// (in its `expansion.contains`, or its `compose.include.concept`: the display or a
    /// designation), recorded as accepted: the reference validator checks a bound coding's
    /// display against the value set first, then the code system.
    fn accept_displays(&mut self, profile: &Profile, item: &Found<'r>, value: &Value, canonical: &str) {
        let stored;
        let value_set = match canonical.strip_prefix('#') {
            Some(_) => contained(self.conformance, profile, canonical),
            None => {
                stored = self.conformance.value_set(canonical);
                stored.as_deref().map(|vs| &vs.resource)
            }
        };
        let Some(value_set) = value_set else { return };
        let codings: Vec<(String, &Value)> = match value.get("coding").and_then(Value::as_array) {
            Some(codings) => {
                codings.iter().enumerate().map(|(i, c)| (format!("{}.coding[{i}]", item.path), c)).collect()
            }
            None => vec![(item.path.clone(), value)],
        };
        for (path, coding) in codings.into_iter().take(MAX_CODINGS) {
            let text = |k: &str| coding.get(k).and_then(Value::as_str);
            let (Some(system), Some(code), Some(display)) = (text("system"), text("code"), text("display")) else {
                continue;
            };
            if listed_displays(value_set, system, code)
                .iter()
                .any(|d| crate::validation::binding::same_display(d, display))
            {
                self.accepted_displays.push(format!("{path}.display"));
            }
        }
    }
}

/// Codings of one value looked at for their displays.
const MAX_CODINGS: usize = 64;

/// The ValueSet `#id` contained in the StructureDefinition of `profile`.
fn contained<'c>(conformance: &'c Conformance, profile: &Profile, canonical: &str) -> Option<&'c Value> {
    let id = canonical.strip_prefix('#')?;
    let sd = conformance.structure_definition(&profile.url)?;
    sd.get("contained")?.as_array()?.iter().find(|r| {
        r.get("resourceType").and_then(Value::as_str) == Some("ValueSet")
            && r.get("id").and_then(Value::as_str) == Some(id)
    })
}

/// The displays (and designations) `value_set` itself gives `system|code`: in its
/// `expansion.contains` (nested ones included, to a bounded depth) and its
/// `compose.include.concept`.
fn listed_displays<'v>(value_set: &'v Value, system: &str, code: &str) -> Vec<&'v str> {
    fn names(item: &Value) -> impl Iterator<Item = &str> {
        let designations = item.get("designation").and_then(Value::as_array).into_iter().flatten();
        item.get("display")
            .and_then(Value::as_str)
            .into_iter()
            .chain(designations.filter_map(|d| d.get("value")?.as_str()))
    }
    fn contains<'v>(items: Option<&'v Value>, system: &str, code: &str, depth: usize, out: &mut Vec<&'v str>) {
        if depth >= MAX_NESTED {
            return;
        }
        for item in items.and_then(Value::as_array).into_iter().flatten() {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            if text("system") == Some(system) && text("code") == Some(code) {
                out.extend(names(item));
            }
            contains(item.get("contains"), system, code, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    contains(value_set.pointer("/expansion/contains"), system, code, 0, &mut out);
    let includes = value_set.pointer("/compose/include").and_then(Value::as_array).into_iter().flatten();
    for include in includes.filter(|i| i.get("system").and_then(Value::as_str) == Some(system)) {
        let concepts = include.get("concept").and_then(Value::as_array).into_iter().flatten();
        for concept in concepts.filter(|c| c.get("code").and_then(Value::as_str) == Some(code)) {
            out.extend(names(concept));
        }
    }
    out
}

/// How deep nested `expansion.contains` are searched.
const MAX_NESTED: usize = 16;
