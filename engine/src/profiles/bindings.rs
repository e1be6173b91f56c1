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

use serde_json::Value;

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
        if binding.get("strength").and_then(Value::as_str) == Some("required") {
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
        let (Some(type_name), Some(expansion)) = (type_name, self.conformance.expansion(canonical)) else { return };
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
}
