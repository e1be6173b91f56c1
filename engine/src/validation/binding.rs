//! Required bindings of the base R4 definitions (<https://hl7.org/fhir/R4/terminologies.html#required>):
//! a `code`, `Coding` or `CodeableConcept` element bound with strength `required` must hold a
//! code of the value set. Checked against the expansion of the value set from the loaded R4
//! terminology ([`crate::terminology::Registry::r4`], kept as a set once expanded); a value set
//! that cannot be expanded from it (MIME types, languages, currencies, UCUM...) is not checked.
//! A `Coding` without a system, and a `CodeableConcept` with only text, say nothing to check.
//! Extensible and preferred bindings are not errors and are not checked here.
//!
//! The same walk checks the displays of Codings against their loaded code systems for
//! `$validate` ([`displays`]); writes do not make that check.

use serde_json::{Map, Value};

use super::MAX_DEPTH;
use crate::definitions::{Definitions, Kind, NodeId};
use crate::outcome::{Issue, IssueType};
use crate::terminology::{Expansion, Registry};

/// The required-binding issues of `resource` (and of the resources it holds).
pub(crate) fn check(defs: &Definitions, resource: &Value) -> Vec<Issue> {
    walk(defs, resource, false)
}

/// The displays of `resource`'s Codings (and of the resources it holds) that are not a display
/// or designation of their code in its loaded code system: what the reference validator reports
/// as "Wrong Display Name". Compared ignoring case and runs of whitespace; a system or code
/// that is not loaded says nothing.
pub(crate) fn displays(defs: &Definitions, resource: &Value) -> Vec<Issue> {
    walk(defs, resource, true)
}

fn walk(defs: &Definitions, resource: &Value, displays: bool) -> Vec<Issue> {
    let mut walk = Walk { defs, registry: Registry::r4(), issues: Vec::new(), path: String::new(), displays };
    if let Some(object) = resource.as_object() {
        walk.path.push_str(object.get("resourceType").and_then(Value::as_str).unwrap_or_default());
        walk.resource(object, 0);
    }
    walk.issues
}

/// The walk's state: the issues so far and the location of the value being checked, pushed
/// and truncated while walking (built once, not per element).
struct Walk<'d> {
    defs: &'d Definitions,
    registry: &'d Registry,
    issues: Vec<Issue>,
    path: String,
    /// Checking displays ([`displays`]) rather than required bindings.
    displays: bool,
}

impl Walk<'_> {
    fn resource(&mut self, object: &Map<String, Value>, depth: usize) {
        let Some(t) = object.get("resourceType").and_then(Value::as_str) else { return };
        if let Some(node) = self.defs.root_node(t).filter(|_| self.defs.is_resource_type(t)) {
            self.object(object, node, depth);
        }
    }

    fn object(&mut self, object: &Map<String, Value>, node: NodeId, depth: usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        let defs = self.defs;
        for (key, value) in object {
            let Some(child) = defs.node(node).children.get(key.as_str()) else { continue };
            let element = defs.element_at(child.element);
            let mark = self.path.len();
            self.path.push('.');
            self.path.push_str(key);
            let Some(type_index) = child.type_index else {
                // A contentReference (`Questionnaire.item.item`): the same node again.
                if let Some(inner) = child.node {
                    self.each(value, |walk, item| {
                        if let Value::Object(o) = item {
                            walk.object(o, inner, depth + 1);
                        }
                    });
                }
                self.path.truncate(mark);
                continue;
            };
            let type_def = defs.type_at(type_index);
            // A value of the wrong shape is a structural error already.
            let shaped = element.is_repeating() == value.is_array();
            if self.displays {
                if shaped && type_def.name == "Coding" {
                    self.each(value, |walk, item| walk.display(item));
                }
            } else if let Some(url) = self.registry.required_binding(&element.path).filter(|_| shaped) {
                if let Some(expansion) = self.registry.cached_expansion(url) {
                    self.each(value, |walk, item| walk.coded(&type_def.name, item, &expansion, url));
                }
            }
            if type_def.kind != Kind::PrimitiveType {
                self.each(value, |walk, item| {
                    let Value::Object(o) = item else { return };
                    if type_def.kind == Kind::Resource {
                        walk.resource(o, depth + 1);
                    } else if let Some(inner) = child.node {
                        walk.object(o, inner, depth + 1);
                    }
                });
            }
            self.path.truncate(mark);
        }
    }

    /// Runs `f` on each value of an element (`[i]` added to the path for arrays).
    fn each(&mut self, value: &Value, mut f: impl FnMut(&mut Self, &Value)) {
        match value {
            Value::Array(list) => {
                for (i, item) in list.iter().enumerate() {
                    let mark = self.path.len();
                    let _ = std::fmt::Write::write_fmt(&mut self.path, format_args!("[{i}]"));
                    f(self, item);
                    self.path.truncate(mark);
                }
            }
            other => f(self, other),
        }
    }

    /// One Coding's display against its code system's.
    fn display(&mut self, coding: &Value) {
        let text = |k: &str| coding.get(k).and_then(Value::as_str);
        let (Some(system), Some(code), Some(display)) = (text("system"), text("code"), text("display")) else {
            return;
        };
        let Some(code_system) = self.registry.code_system(system, text("version")) else { return };
        let Some(concept) = code_system.concept(code) else { return };
        let designations = concept.designations.iter().filter_map(|d| d.get("value").and_then(Value::as_str));
        let valid: Vec<&str> = concept.display.as_deref().into_iter().chain(designations).collect();
        if valid.is_empty() || valid.iter().any(|v| same_display(v, display)) {
            return;
        }
        let shown: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
        let message = format!("wrong display `{display}` for `{system}|{code}`: valid is {}", shown.join(" or "));
        let mark = self.path.len();
        self.path.push_str(".display");
        self.issues.push(Issue::error(IssueType::Value, message).at(self.path.clone()));
        self.path.truncate(mark);
    }

    /// One value of a bound element.
    fn coded(&mut self, type_name: &str, value: &Value, expansion: &Expansion, url: &str) {
        if let Some(shown) = outside(type_name, value, expansion) {
            let message = format!("{shown} is not in the value set `{url}`, which this element is bound to (required)");
            self.issues.push(Issue::error(IssueType::Value, message).at(self.path.clone()));
        }
    }
}

/// The codes of a `code`, `Coding`, `CodeableConcept` or `Quantity` value, as shown in a message, when none
/// of them is in `expansion`; `None` when one is, or when the value names nothing to check.
pub(crate) fn outside(type_name: &str, value: &Value, expansion: &Expansion) -> Option<String> {
    match type_name {
        "code" => match value.as_str() {
            Some(code) if !expansion.contains_code(code) => Some(format!("`{code}`")),
            _ => None,
        },
        // A Quantity (and its profiles) is bound through its `system` and `code`, as a Coding.
        "Coding" | "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity" => {
            coding(value).filter(|(s, c)| !expansion.contains(s, c)).map(|(s, c)| format!("`{s}|{c}`"))
        }
        "CodeableConcept" => {
            let codings: Vec<(&str, &str)> =
                value.get("coding").and_then(Value::as_array).into_iter().flatten().filter_map(coding).collect();
            let any = codings.iter().any(|(s, c)| expansion.contains(s, c));
            (!codings.is_empty() && !any)
                .then(|| codings.iter().map(|(s, c)| format!("`{s}|{c}`")).collect::<Vec<_>>().join(", "))
        }
        _ => None,
    }
}

/// Whether two displays are the same but for case and runs of whitespace.
pub(crate) fn same_display(a: &str, b: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>();
    words(a) == words(b)
}

/// `system` and `code` of a Coding that has both.
fn coding(value: &Value) -> Option<(&str, &str)> {
    Some((value.get("system")?.as_str()?, value.get("code")?.as_str()?))
}

#[cfg(test)]
#[path = "binding_tests.rs"]
mod tests;
