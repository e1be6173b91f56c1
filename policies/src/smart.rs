//! SMART on FHIR scopes (<https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html>),
//! v1 (`patient/Observation.read`, `user/*.write`) and v2 (`patient/Observation.rs`,
//! `user/*.cruds`, granular `patient/Observation.rs?category=laboratory`), normalised into the
//! permission strings the Cedar policies compare: `Type.p` with one letter `p` of `c r u d s`.
//!
//! A granular scope's parameters are combined as AND (FHIR search semantics; a comma inside one
//! value is OR): `Observation.rs?category=laboratory&status=final` grants a resource only when
//! every parameter holds. Each such scope becomes `Type.p?` (enough before the resource is known)
//! and one canonical conjunction per choice of comma alternatives (`Type.p?name=v&name2=v2`,
//! parameters sorted by name). On a resource, [`needed_with`] lists every conjunction of the
//! parameters the gateway can check on its data (`category`, as `code` or `system|code`, and
//! `status`);
//! a scope naming any other parameter, or one parameter twice, matches none of them: it grants no
//! resource (fail closed) rather than more than it says.

use std::collections::BTreeSet;

use crate::action::Action;

/// The permissions granted by a token's scopes, per launch context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmartGrants {
    pub patient: BTreeSet<String>,
    pub user: BTreeSet<String>,
    pub system: BTreeSet<String>,
}

impl SmartGrants {
    /// Parses every scope; scopes that are not SMART resource scopes (`openid`, `launch`, ...)
    /// grant nothing here.
    pub fn from_scopes(scopes: &[String]) -> Self {
        let mut grants = Self::default();
        for scope in scopes {
            let Some((context, rest)) = scope.split_once('/') else { continue };
            let set = match context {
                "patient" => &mut grants.patient,
                "user" => &mut grants.user,
                "system" => &mut grants.system,
                _ => continue,
            };
            let (rest, query) = match rest.split_once('?') {
                Some((r, q)) => (r, Some(q)),
                None => (rest, None),
            };
            let Some((resource_type, permissions)) = rest.rsplit_once('.') else { continue };
            if resource_type.is_empty() {
                continue;
            }
            let letters = match permissions {
                "read" => "rs".to_string(),
                "write" => "cud".to_string(),
                "*" => "cruds".to_string(),
                p if !p.is_empty() && p.chars().all(|c| "cruds".contains(c)) => p.to_string(),
                _ => continue,
            };
            let conjunctions = query.map(conjunctions);
            for letter in letters.chars() {
                match &conjunctions {
                    None => {
                        set.insert(format!("{resource_type}.{letter}"));
                    }
                    Some(all) => {
                        set.insert(format!("{resource_type}.{letter}?"));
                        for conjunction in all {
                            set.insert(format!("{resource_type}.{letter}?{conjunction}"));
                        }
                    }
                }
            }
        }
        grants
    }
}

/// Most conjunctions one granular scope expands to (its comma alternatives multiplied); a scope
/// beyond grants no resource.
const MAX_CONJUNCTIONS: usize = 64;

/// Most permission strings [`needed_with`] lists for one resource; conjunctions beyond are left
/// out (fail closed).
const MAX_NEEDED: usize = 1024;

/// The canonical conjunctions of a granular scope's query: one per choice among the comma
/// alternatives of each parameter, each `name=value` pairs sorted and joined by `&`. Empty (no
/// resource granted) when a part is not `name=value` or there are too many.
fn conjunctions(query: &str) -> Vec<String> {
    let mut params: Vec<(&str, Vec<&str>)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let Some((name, values)) = part.split_once('=') else { return Vec::new() };
        let values: Vec<&str> = values.split(',').filter(|v| !v.is_empty()).collect();
        if name.is_empty() || values.is_empty() {
            return Vec::new();
        }
        params.push((name, values));
    }
    params.sort();
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for (name, values) in &params {
        if out.len().saturating_mul(values.len()) > MAX_CONJUNCTIONS {
            return Vec::new();
        }
        out = out
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(format!("{name}={v}"));
                    next
                })
            })
            .collect();
    }
    out.into_iter()
        .filter(|pairs| !pairs.is_empty())
        .map(|mut pairs| {
            pairs.sort();
            pairs.join("&")
        })
        .collect()
}

/// The permission strings that would allow `action` on `resource_type`: `Type.p`; without the
/// resource's data (type-level decision) a granular grant for the type is enough (`Type.p?`);
/// with the data (`name` → the resource's values of each parameter the gateway checks), one
/// string per conjunction of a non-empty subset of the parameters and one value of each
/// (`Type.p?category=laboratory&status=final`), which is what an AND of those parameters in a
/// granular scope normalises to. Values holding `&` or `,` are skipped (they cannot be one value
/// of a scope, and must not forge a conjunction).
pub fn needed_with(
    action: Action,
    resource_type: &str,
    data: Option<&[(&str, &BTreeSet<String>)]>,
) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    let Some(letter) = action.smart_letter() else { return needed };
    let mut types: Vec<&str> = if resource_type.is_empty() { vec!["*"] } else { vec![resource_type, "*"] };
    if action == Action::Export && data.is_none() {
        // Before the data is known an export (its kick-off, its status and files, each type it
        // exports) needs a search grant on some type: what it exports is then decided per type
        // and per resource, as the same client's search.
        types.extend(fhirgate_engine::definitions::Definitions::r4().resource_types());
    }
    let conjunctions = data.map(data_conjunctions);
    for t in types {
        needed.insert(format!("{t}.{letter}"));
        match &conjunctions {
            None => {
                needed.insert(format!("{t}.{letter}?"));
            }
            Some(all) => {
                for conjunction in all {
                    needed.insert(format!("{t}.{letter}?{conjunction}"));
                }
            }
        }
    }
    needed
}

/// Every conjunction the data satisfies: for each non-empty subset of its parameters (sorted by
/// name), each choice of one value per parameter; at most [`MAX_NEEDED`].
fn data_conjunctions(data: &[(&str, &BTreeSet<String>)]) -> Vec<String> {
    let mut params: Vec<(&str, Vec<&str>)> = data
        .iter()
        .map(|(name, values)| {
            (*name, values.iter().map(String::as_str).filter(|v| !v.is_empty() && !v.contains(['&', ','])).collect())
        })
        .filter(|(_, values): &(&str, Vec<&str>)| !values.is_empty())
        .collect();
    params.sort();
    params.dedup_by(|a, b| a.0 == b.0);
    // Subsets grow from the empty one, in parameter order, so each string is already canonical.
    let mut out: Vec<String> = vec![String::new()];
    for (name, values) in &params {
        let mut grown = Vec::new();
        for prefix in &out {
            for value in values {
                if out.len() + grown.len() >= MAX_NEEDED {
                    break;
                }
                let sep = if prefix.is_empty() { "" } else { "&" };
                grown.push(format!("{prefix}{sep}{name}={value}"));
            }
        }
        out.extend(grown);
    }
    out.retain(|c| !c.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(scopes: &[&str]) -> SmartGrants {
        SmartGrants::from_scopes(&scopes.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn v1_and_v2_scopes_normalise_to_letters() {
        let g = grants(&["patient/Observation.read", "user/*.write", "openid", "launch/patient"]);
        assert!(g.patient.contains("Observation.r") && g.patient.contains("Observation.s"));
        assert!(!g.patient.contains("Observation.c"));
        assert!(g.user.contains("*.c") && g.user.contains("*.u") && g.user.contains("*.d"));
        let g = grants(&["patient/Observation.rs", "system/*.cruds"]);
        assert_eq!(g.patient.len(), 2);
        assert_eq!(g.system.len(), 5);
    }

    #[test]
    fn granular_scopes_match_the_category_only() {
        let g = grants(&["patient/Observation.rs?category=laboratory"]);
        let type_level = needed_with(Action::Read, "Observation", None);
        assert!(g.patient.iter().any(|p| type_level.contains(p)));
        let lab: BTreeSet<String> = ["laboratory".to_string()].into();
        let vitals: BTreeSet<String> = ["vital-signs".to_string()].into();
        let on = |categories| needed_with(Action::Read, "Observation", Some(&[("category", categories)]));
        assert!(g.patient.iter().any(|p| on(&lab).contains(p)));
        assert!(!g.patient.iter().any(|p| on(&vitals).contains(p)));
    }

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| (*v).to_string()).collect()
    }

    /// Whether the grants allow reading a resource with these facts.
    fn reads(g: &SmartGrants, facts: &[(&str, &BTreeSet<String>)]) -> bool {
        let needed = needed_with(Action::Read, "Observation", Some(facts));
        g.patient.iter().any(|p| needed.contains(p))
    }

    #[test]
    fn several_parameters_are_combined_as_and() {
        let g = grants(&["patient/Observation.rs?category=laboratory&status=final"]);
        let (lab, vitals) = (set(&["laboratory"]), set(&["vital-signs"]));
        let (final_, preliminary) = (set(&["final"]), set(&["preliminary"]));
        assert!(reads(&g, &[("category", &lab), ("status", &final_)]), "both hold");
        assert!(!reads(&g, &[("category", &lab), ("status", &preliminary)]), "status fails: no grant");
        assert!(!reads(&g, &[("category", &vitals), ("status", &final_)]), "category fails: no grant");
        assert!(!reads(&g, &[("category", &lab)]), "a parameter the data cannot show: no grant (fail closed)");
        assert!(g.patient.contains("Observation.r?"), "the type-level check still passes");
        // The order of the parameters in the scope does not matter.
        let h = grants(&["patient/Observation.rs?status=final&category=laboratory"]);
        assert_eq!(g, h);
    }

    #[test]
    fn commas_are_or_within_one_parameter() {
        let g = grants(&["patient/Observation.rs?category=laboratory,vital-signs"]);
        assert!(reads(&g, &[("category", &set(&["laboratory"]))]));
        assert!(reads(&g, &[("category", &set(&["vital-signs"]))]));
        assert!(!reads(&g, &[("category", &set(&["imaging"]))]));
        let twice = grants(&["patient/Observation.rs?category=laboratory&category=vital-signs"]);
        assert!(!reads(&twice, &[("category", &set(&["laboratory", "vital-signs"]))]), "repeated: fail closed");
    }

    #[test]
    fn odd_and_oversized_scopes_grant_no_resource() {
        let lab = set(&["laboratory"]);
        for scope in
            ["patient/Observation.rs?category", "patient/Observation.rs?=x", "patient/Observation.rs?category="]
        {
            let g = grants(&[scope]);
            assert!(!reads(&g, &[("category", &lab)]), "{scope}");
        }
        let many: Vec<String> = (0..20).map(|n| format!("c{n}")).collect();
        let scope = format!("patient/Observation.rs?category={}&code={}", many.join(","), many.join(","));
        let g = grants(&[scope.as_str()]);
        assert!(g.patient.len() <= 3, "{} strings", g.patient.len());
        // A resource's value cannot forge a conjunction.
        let g = grants(&["patient/Observation.rs?category=laboratory&status=final"]);
        assert!(!reads(&g, &[("category", &set(&["laboratory&status=final"]))]));
        // Many values on a resource stay bounded.
        let huge: BTreeSet<String> = (0..5000).map(|n| format!("v{n}")).collect();
        let needed = needed_with(Action::Read, "Observation", Some(&[("category", &huge), ("status", &huge)]));
        assert!(needed.len() <= 2 * (MAX_NEEDED + 1), "{}", needed.len());
    }
}
