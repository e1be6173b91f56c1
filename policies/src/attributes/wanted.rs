//! Which search-parameter attributes the loaded policies read, found once at load so that a
//! decision extracts those parameters only (a set that reads none extracts nothing). The
//! analysis is syntactic, over Cedar's JSON policy format, and errs towards reading: an attribute
//! read as `resource.name`, `resource["name"]` or `resource has name` is wanted on every type
//! that has it; `resource` used as a value anywhere but in `==`, `!=`, `in` or `is` (where no
//! attribute is read) makes every attribute wanted.

use std::collections::BTreeSet;

use cedar_policy::Policy;
use serde_json::Value;

use super::params::{ParamAttr, entity};

/// The attributes a policy set reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    all: bool,
    names: BTreeSet<String>,
}

impl Wanted {
    /// What the policies read, together.
    pub fn of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        let mut wanted = Self::default();
        for policy in policies {
            let Ok(json) = policy.to_json() else {
                wanted.all = true;
                continue;
            };
            match json.get("conditions").and_then(Value::as_array) {
                Some(conditions) => conditions.iter().for_each(|c| wanted.walk(c, None)),
                None => wanted.all = true,
            }
        }
        wanted
    }

    /// Every attribute (tests, and tools that show a whole entity).
    #[cfg(test)]
    pub fn all() -> Self {
        Self { all: true, names: BTreeSet::new() }
    }

    /// The wanted parameters of a resource type.
    pub fn params(&self, resource_type: &str) -> Vec<&'static ParamAttr> {
        if !self.all && self.names.is_empty() {
            return Vec::new();
        }
        let Some(entity) = entity(resource_type) else { return Vec::new() };
        entity.params.iter().filter(|p| self.all || self.names.contains(&p.name)).collect()
    }

    /// Walks an expression; `op` is the operator whose operand it is.
    fn walk(&mut self, expr: &Value, op: Option<&str>) {
        match expr {
            Value::Object(map) => {
                if map.get("Var").and_then(Value::as_str) == Some("resource")
                    && !op.is_some_and(|p| ["==", "!=", "in", "is"].contains(&p))
                {
                    self.all = true;
                }
                for (key, inner) in map {
                    if matches!(key.as_str(), "." | "has")
                        && inner.pointer("/left/Var").and_then(Value::as_str) == Some("resource")
                    {
                        if let Some(attr) = inner.get("attr").and_then(Value::as_str) {
                            self.names.insert(attr.to_owned());
                        }
                        continue;
                    }
                    let operand_of =
                        if matches!(key.as_str(), "left" | "right" | "arg") { op } else { Some(key.as_str()) };
                    self.walk(inner, operand_of);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.walk(item, op)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(text: &str) -> Wanted {
        Policy::parse(None, text).map_or_else(|_| Wanted::all(), |p| Wanted::of([&p]))
    }

    fn names(w: &Wanted, resource_type: &str) -> Vec<String> {
        w.params(resource_type).iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn what_a_set_reads() {
        let none =
            wanted(r#"permit (principal, action, resource) when { resource.patients.contains(principal.patient) };"#);
        assert!(names(&none, "Observation").is_empty(), "common attributes are no parameters");
        let code = wanted(
            r#"forbid (principal, action, resource is Fhir::Observation) when { resource.code.containsAny(["x"]) && resource has "value-quantity" };"#,
        );
        assert_eq!(names(&code, "Observation"), ["code", "value-quantity"]);
        assert_eq!(names(&code, "Condition"), ["code"], "wanted on every type that has it");
        let principal_only = wanted(r#"permit (principal, action, resource) when { principal.patient == "p" };"#);
        assert!(
            names(&principal_only, "Observation").is_empty(),
            "another variable's attributes are not the resource's"
        );
        let compared = wanted(
            r#"permit (principal, action, resource) when { resource == Fhir::Patient::"p" || resource is Fhir::Patient };"#,
        );
        assert!(names(&compared, "Patient").is_empty());
        let aliased = wanted(
            r#"permit (principal, action, resource) when { (if true then resource else resource).code == [] };"#,
        );
        assert!(names(&aliased, "Observation").contains(&"code".to_owned()), "resource as a value: everything");
    }
}
