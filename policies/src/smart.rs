//! SMART on FHIR scopes (<https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html>),
//! v1 (`patient/Observation.read`, `user/*.write`) and v2 (`patient/Observation.rs`,
//! `user/*.cruds`, granular `patient/Observation.rs?category=laboratory`), normalised into the
//! permission strings the Cedar policies compare: `Type.p` with one letter `p` of `c r u d s`.

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
            for letter in letters.chars() {
                match query {
                    None => {
                        set.insert(format!("{resource_type}.{letter}"));
                    }
                    Some(q) => {
                        set.insert(format!("{resource_type}.{letter}?"));
                        for part in q.split('&').filter(|p| !p.is_empty()) {
                            set.insert(format!("{resource_type}.{letter}?{part}"));
                        }
                    }
                }
            }
        }
        grants
    }
}

/// The permission strings that would allow `action` on `resource_type`. Without the resource's
/// data (type-level decision) a granular grant for the type is enough (`Type.p?`); with the data,
/// the granular forms name the resource's categories, so `Observation.r?category=laboratory`
/// matches a laboratory Observation only.
pub fn needed(action: Action, resource_type: &str, categories: Option<&BTreeSet<String>>) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    let Some(letter) = action.smart_letter() else { return needed };
    let types: Vec<&str> = if resource_type.is_empty() { vec!["*"] } else { vec![resource_type, "*"] };
    for t in types {
        needed.insert(format!("{t}.{letter}"));
        match categories {
            None => {
                needed.insert(format!("{t}.{letter}?"));
            }
            Some(codes) => {
                for code in codes {
                    needed.insert(format!("{t}.{letter}?category={code}"));
                }
            }
        }
    }
    needed
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
        let type_level = needed(Action::Read, "Observation", None);
        assert!(g.patient.iter().any(|p| type_level.contains(p)));
        let lab: BTreeSet<String> = ["laboratory".to_string()].into();
        let vitals: BTreeSet<String> = ["vital-signs".to_string()].into();
        assert!(g.patient.iter().any(|p| needed(Action::Read, "Observation", Some(&lab)).contains(p)));
        assert!(!g.patient.iter().any(|p| needed(Action::Read, "Observation", Some(&vitals)).contains(p)));
    }
}
