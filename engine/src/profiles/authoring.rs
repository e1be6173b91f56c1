//! Checks of a StructureDefinition itself, when one is validated (or written): the rules of
//! profiling (<https://hl7.org/fhir/R4/profiling.html>) that its differential must keep for a
//! snapshot to be generated from it, as the reference validator reports them.
//!
//! - every element `path` names an element of the constrained type (a choice by `[x]`, or by
//!   the name of one of its types: `Observation.valueQuantity`);
//! - a type's `profile` is a StructureDefinition of that type (of a type derived from it when the
//!   type is abstract, as `Resource` is);
//! - a slicing discriminator's path names an element of the sliced element;
//! - a `fixed[x]` the base profile already fixes is not changed (a derived profile may only
//!   constrain further).
//!
//! Bounded by the differential's length (each element walks its path's segments once).

use serde_json::Value;

use super::snapshot;
use super::{Conformance, values, walk};
use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType};

/// The issues of `sd`, a constraint StructureDefinition with a differential (none otherwise).
pub(crate) fn check(conformance: &Conformance, sd: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    if sd.get("derivation").and_then(Value::as_str) != Some("constraint") {
        return issues;
    }
    let Some(type_name) = sd.get("type").and_then(Value::as_str) else { return issues };
    let elements = sd.pointer("/differential/element").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let defs = Definitions::r4();
    let base = snapshot::base_profile(sd).and_then(|url| conformance.profile(url).ok());
    for (i, element) in elements.iter().enumerate() {
        let at = format!("StructureDefinition.differential.element[{i}]");
        if let Some(path) = element.get("path").and_then(Value::as_str) {
            if defs.root_node(type_name).is_some() {
                if let Some(message) = unknown_path(defs, type_name, path) {
                    issues.push(Issue::error(IssueType::Structure, message).at(format!("{at}.path")));
                }
            }
        }
        for (j, t) in element.get("type").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let Some(code) = t.get("code").and_then(Value::as_str) else { continue };
            for (k, url) in t.get("profile").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let Some(url) = url.as_str() else { continue };
                let Some(of) = conformance.structure_definition(url).and_then(|p| p.get("type")?.as_str()) else {
                    continue;
                };
                // An abstract type (`Resource`) takes profiles of the types below it; a concrete one
                // only its own (`Quantity` not `Count`, which is a type of its own in R4).
                let is_abstract = defs.type_def(code).is_some_and(|t| t.is_abstract);
                if of != code && !(is_abstract && walk::is_ancestor(defs, code, of)) {
                    let message = format!("profile `{url}` is for type `{of}`, but this element has type `{code}`");
                    issues.push(Issue::error(IssueType::Structure, message).at(format!("{at}.type[{j}].profile[{k}]")));
                }
            }
        }
        if let Some(path) = element.get("path").and_then(Value::as_str) {
            issues.extend(discriminator_paths(defs, type_name, path, element, &at));
        }
        let (Some(base), Some(id)) = (&base, element.get("id").and_then(Value::as_str)) else { continue };
        let fixed = element.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.strip_prefix("fixed").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase())))
        });
        if let (Some((key, value)), Some(inherited)) = (fixed, base.element(id).and_then(|e| e.fixed.as_ref())) {
            if !values::equal(inherited, value) {
                let message = format!(
                    "`{id}` is fixed to {} by the base profile `{}`; a derived profile cannot fix it to {}",
                    values::shown(inherited),
                    base.url,
                    values::shown(value)
                );
                issues.push(Issue::error(IssueType::Value, message).at(format!("{at}.{key}")));
            }
        }
    }
    issues
}

/// A slicing discriminator's path names an element of the sliced element: `url` of an
/// extension, `system` of an identifier. Paths that call functions (`extension('…')`,
/// `resolve()`, `ofType()`) and `$this` are not checked here, nor elements this server cannot
/// type (inside resources, content references).
fn discriminator_paths(defs: &Definitions, type_name: &str, path: &str, element: &Value, at: &str) -> Vec<Issue> {
    let Some(rest) = path.strip_prefix(type_name).and_then(|r| r.strip_prefix('.')) else { return Vec::new() };
    if defs.element(type_name, rest).is_none() {
        return Vec::new();
    }
    let discriminators = element.pointer("/slicing/discriminator").and_then(Value::as_array);
    let mut issues = Vec::new();
    for (k, d) in discriminators.into_iter().flatten().enumerate() {
        let Some(d_path) = d.get("path").and_then(Value::as_str) else { continue };
        if d_path == "$this" || d_path.contains(['(', '$', '%', '[']) {
            continue;
        }
        let full = format!("{rest}.{d_path}");
        let named = defs.element(type_name, &full).is_some() || {
            // `value` for a choice (`value[x]`) names it too.
            let (parent, last) = full.rsplit_once('.').unwrap_or(("", &full));
            defs.element(type_name, &format!("{parent}.{last}[x]")).is_some()
        };
        if !named {
            let message = format!("the discriminator path `{d_path}` names no element of the sliced element `{path}`");
            issues.push(Issue::error(IssueType::Structure, message).at(format!("{at}.slicing.discriminator[{k}]")));
        }
    }
    issues
}

/// Why `path` names no element of `type_name`, if it does not.
pub(super) fn unknown_path(defs: &Definitions, type_name: &str, path: &str) -> Option<String> {
    let mut segments = path.split('.');
    if segments.next() != Some(type_name) {
        return Some(format!("the path `{path}` does not start with the type `{type_name}`"));
    }
    let mut node = defs.root_node(type_name)?;
    for segment in segments {
        let children = &defs.node(node).children;
        let child = match segment.strip_suffix("[x]") {
            Some(stem) => children.iter().find_map(|(key, child)| {
                key.strip_prefix(stem).filter(|r| r.starts_with(|c: char| c.is_ascii_uppercase())).map(|_| child)
            }),
            None => children.get(segment),
        };
        let Some(child) = child else {
            return Some(format!("the path `{path}` names no element of `{type_name}` (at `{segment}`)"));
        };
        // Inside a resource (contained, entry) or a content reference: not followed.
        node = child.node?;
    }
    None
}
