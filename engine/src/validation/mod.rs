//! Validation of a resource against the base R4 StructureDefinitions: structure, unknown
//! elements, primitive formats, cardinality. Every problem found becomes one issue.
//!
//! What is checked (the JSON rules are <https://hl7.org/fhir/R4/json.html>):
//! - the resource is a JSON object whose `resourceType` is a concrete R4 resource type;
//! - every property is an element of its type (choices such as `valueQuantity` included), or the
//!   `_name` extension sibling of a primitive element;
//! - primitives have the JSON type and the format of their R4 type (`id` of the resource too);
//! - repeating elements are arrays, the others are not; required elements are present when
//!   their parent is; objects, arrays and strings are never empty, `null` only appears in
//!   primitive arrays where the `_name` array has an extension at the same index;
//! - nested resources (`contained`, `Bundle.entry.resource`, ...) against their own type;
//! - narrative XHTML: the elements, attributes and link schemes R4 allows ([`xhtml`]);
//! - a Bundle's `fullUrl`s and the references between its entries ([`bundle`]).
//!
//! - required bindings of `code`, `Coding` and `CodeableConcept` elements to value sets the
//!   loaded terminology can expand ([`binding`]).
//!
//! `$validate` adds [`check_displays`] and [`check_hyperlinks`], which writes do not make.
//!
//! Not checked: invariants (FHIRPath constraints), other bindings, reference targets, profiles.
//! Whether `resourceType` matches the URL is the caller's business.
//!
//! Issue locations are FHIRPath-like: `Patient.name[0].given[1]`; inside a nested resource the
//! path goes on from the element holding it: `Bundle.entry[0].resource.name[0]`.

pub(crate) mod binding;
mod bundle;
mod datetime;
mod element;
mod hyperlinks;
mod primitive;
#[cfg(test)]
mod tests;
mod xhtml;

use serde_json::Value;

use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType};

/// How deep objects may nest before validation gives up on a branch (the deepest resource of
/// the R4 examples is about 12 levels).
pub(crate) const MAX_DEPTH: usize = 128;

pub(crate) use bundle::{collect_references, is_absolute, resolve_entry, unresolved_in_document};
pub(crate) use primitive::shorten;
pub(crate) use xhtml::has_content as narrative_has_content;

/// Validates `resource` (a parsed JSON value). Returns every problem found.
pub fn validate(defs: &Definitions, resource: &Value) -> Vec<Issue> {
    let mut validator = Validator { defs, issues: Vec::new(), path: String::new(), scratch: String::new() };
    validator.resource(resource, 0);
    validator.issues.extend(binding::check(defs, resource));
    if let Some(bundle) =
        resource.as_object().filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
    {
        validator.issues.extend(bundle::check(defs, bundle));
    }
    validator.issues
}

/// Codings whose display is not one their loaded code system gives the code: errors of
/// `$validate` (as the reference validator has them), not made on writes, which they never
/// refused (a display is for people; the code is what the data means).
pub fn check_displays(defs: &Definitions, resource: &Value) -> Vec<Issue> {
    binding::displays(defs, resource)
}

/// Internal links of the narratives (`href="#x"`) that lead to no anchor and no contained
/// resource: errors of `$validate` (as the reference validator has them), not made on writes.
pub fn check_hyperlinks(resource: &Value) -> Vec<Issue> {
    hyperlinks::check(resource)
}

/// The walk's state: the issues so far and the path of the value being checked.
struct Validator<'d> {
    defs: &'d Definitions,
    issues: Vec<Issue>,
    /// FHIRPath-like location of the current value; pushed and truncated while walking.
    path: String,
    /// A reusable buffer for `_name` keys.
    scratch: String,
}

impl Validator<'_> {
    /// Checks a resource at the current path (empty for the top-level resource).
    fn resource(&mut self, value: &Value, depth: usize) {
        let Value::Object(object) = value else {
            self.issue(IssueType::Structure, format!("a resource must be a JSON object, found {}", json_kind(value)));
            return;
        };
        let resource_type = match object.get("resourceType") {
            Some(Value::String(t)) => t,
            Some(other) => {
                self.issue(
                    IssueType::Structure,
                    format!("`resourceType` must be a string, found {}", json_kind(other)),
                );
                return;
            }
            None => {
                self.issue(IssueType::Required, "missing `resourceType`".to_owned());
                return;
            }
        };
        let node = match self.defs.root_node(resource_type) {
            Some(node) if self.defs.is_resource_type(resource_type) => node,
            Some(_) if self.defs.type_def(resource_type).is_some_and(|t| t.is_abstract) => {
                self.issue(IssueType::Invalid, format!("resource type `{resource_type}` is abstract"));
                return;
            }
            _ => {
                let shown = primitive::shorten(resource_type);
                self.issue(IssueType::Invalid, format!("unknown resource type `{shown}`"));
                return;
            }
        };
        let mark = self.path.len();
        if self.path.is_empty() {
            self.path.push_str(resource_type);
        }
        self.object(object, node, depth, true);
        self.path.truncate(mark);
    }

    /// Records an issue at the current path.
    fn issue(&mut self, code: IssueType, message: String) {
        let issue = Issue::error(code, message);
        self.issues.push(if self.path.is_empty() { issue } else { issue.at(self.path.clone()) });
    }

    /// Records an issue at the current path's child `name`.
    fn issue_in(&mut self, name: &str, code: IssueType, message: String) {
        let mark = self.enter(name);
        self.issue(code, message);
        self.path.truncate(mark);
    }

    /// Appends `.name` to the path; returns the length to truncate back to.
    fn enter(&mut self, name: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        mark
    }

    /// Appends `[index]` to the path; returns the length to truncate back to.
    fn enter_index(&mut self, index: usize) -> usize {
        use std::fmt::Write as _;
        let mark = self.path.len();
        let _ = write!(self.path, "[{index}]");
        mark
    }
}

/// How a JSON value is named in messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
