//! Obligation profiles (<https://hl7.org/fhir/extensions/StructureDefinition-inherit-obligations.html>):
//! a profile may inherit the obligations of others with the `inherit-obligations` extension,
//! whose definition requires each of them to be an obligation profile (marked with the
//! `obligation-profile` extension, `true`); an obligation profile only adds obligations,
//! cardinalities and bindings to the elements of its base, so it must constrain the same base
//! as the profile that inherits from it. Both are errors of the StructureDefinition, as the
//! reference validator reports them. An inherited profile this validator does not know is not
//! checked.
//!
//! Bounded: at most [`MAX_INHERITED`] inherited profiles are looked at.

use serde_json::Value;

use super::Conformance;
use crate::outcome::{Issue, IssueType};

/// The extension naming a profile whose obligations are inherited.
const INHERIT: &str = "http://hl7.org/fhir/StructureDefinition/inherit-obligations";

/// The extensions that mark an obligation profile: the one the definition of
/// [`INHERIT`] names, and the name it was published under in HL7's extension pack.
const MARKS: [&str; 2] = [
    "http://hl7.org/fhir/StructureDefinition/obligation-profile",
    "http://hl7.org/fhir/StructureDefinition/obligation-profile-flag",
];

/// Most `inherit-obligations` extensions of one StructureDefinition that are checked.
const MAX_INHERITED: usize = 32;

/// The issues of `sd`'s `inherit-obligations` extensions.
pub(crate) fn check(conformance: &Conformance, sd: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let extensions = sd.get("extension").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let base = sd.get("baseDefinition").and_then(Value::as_str).map(bare);
    let inherited = extensions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.get("url").and_then(Value::as_str) == Some(INHERIT))
        .take(MAX_INHERITED);
    for (i, extension) in inherited {
        let at = format!("StructureDefinition.extension[{i}]");
        let Some(url) = extension.get("valueCanonical").and_then(Value::as_str) else { continue };
        let Some(other) = conformance.structure_definition(url) else { continue };
        if !is_obligation_profile(other) {
            let message = format!(
                "the profile `{url}` is not marked as an obligation profile (extension `{}`), so its obligations \
                 cannot be inherited",
                MARKS[0]
            );
            issues.push(Issue::error(IssueType::Invalid, message).at(at));
            continue;
        }
        let other_base = other.get("baseDefinition").and_then(Value::as_str).map(bare);
        if other_base != base {
            let message = format!(
                "the obligation profile `{url}` constrains `{}`, not `{}` as this profile does: it cannot be inherited \
                 here",
                other_base.unwrap_or_default(),
                base.unwrap_or_default()
            );
            issues.push(Issue::error(IssueType::Invalid, message).at(at));
        }
    }
    issues
}

/// Whether `sd` carries an obligation-profile mark set to `true`.
fn is_obligation_profile(sd: &Value) -> bool {
    sd.get("extension").and_then(Value::as_array).into_iter().flatten().any(|e| {
        e.get("url").and_then(Value::as_str).is_some_and(|u| MARKS.contains(&u))
            && e.get("valueBoolean") == Some(&Value::Bool(true))
    })
}

/// A canonical without its `|version`.
fn bare(canonical: &str) -> &str {
    canonical.split('|').next().unwrap_or(canonical)
}
