//! That the targets of a resource's references exist, when the caller of a validation asks for
//! it (the reference validator's `validateReference` policies `CHECK_EXISTS`,
//! `CHECK_EXISTS_AND_TYPE` and `CHECK_VALID`): every relative literal reference (`Patient/2`)
//! must point to something the resource holds — an entry of the Bundle being validated
//! (resolved as R4 says, [`crate::validation::resolve_entry`]) or a resource of the Parameters
//! being validated (a `parameter.resource`, parts included) — or that the caller's
//! [`ReferenceResolver`] finds; one that points nowhere is an error, as the reference validator
//! reports it ("Unable to resolve resource with reference").
//!
//! Contained references (`#id`) are the base checks' business, and absolute URLs (`http:...`,
//! `urn:...`) point to other servers or into a Bundle whose own rules check them, so neither is
//! looked up here. Bounded: references are collected to [`crate::validation::MAX_DEPTH`] levels,
//! Parameters parts are followed [`MAX_PART_DEPTH`] deep, and at most [`MAX_TARGETS`] distinct
//! targets are asked of the resolver (beyond them references are not checked, nor are those the
//! resolver has not looked up: [`ReferenceResolver::exists`] `None`).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::targets::{MAX_TARGETS, ReferenceResolver, relative};
use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType};
use crate::validation::{collect_references, resolve_entry};

/// How deep `Parameters.parameter.part` nesting is searched for resources.
const MAX_PART_DEPTH: usize = 8;

/// The relative references of `resource` whose targets neither `resource` holds nor `resolver`
/// finds, one error each.
pub fn unresolved_references(resource: &Value, resolver: &dyn ReferenceResolver) -> Vec<Issue> {
    let root_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    // (the resource the reference is made in, where it is, the reference)
    let mut references: Vec<(&Value, String, &str)> = Vec::new();
    let mut found = Vec::new();
    if root_type == "Bundle" {
        let entries = resource.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (i, entry) in entries.iter().enumerate() {
            let Some(source) = entry.get("resource") else { continue };
            found.clear();
            collect_references(source, &format!("Bundle.entry[{i}].resource"), 0, &mut found);
            references.extend(found.drain(..).map(|(path, reference)| (source, path, reference)));
        }
    } else {
        collect_references(resource, root_type, 0, &mut found);
        references.extend(found.drain(..).map(|(path, reference)| (resource, path, reference)));
    }
    let mut held: HashSet<String> = HashSet::new();
    if root_type == "Parameters" {
        parameter_resources(resource.get("parameter"), 0, &mut held);
    }
    let mut asked: HashMap<&str, Option<bool>> = HashMap::new();
    let mut issues = Vec::new();
    for (source, path, reference) in references {
        let Some(reference) = relative(reference) else { continue };
        if root_type == "Bundle" && resolve_entry(Definitions::r4(), resource, source, reference).is_some() {
            continue;
        }
        if held.contains(reference) {
            continue;
        }
        let exists = match asked.get(reference) {
            Some(exists) => *exists,
            None if asked.len() >= MAX_TARGETS => continue,
            None => {
                let exists = resolver.exists(reference);
                asked.insert(reference, exists);
                exists
            }
        };
        if exists == Some(false) {
            let message = format!("`{reference}` cannot be resolved: no resource of that type and id is known");
            issues.push(Issue::error(IssueType::Structure, message).at(path));
        }
    }
    issues
}

/// `Type/id` of the resources of `parameters` (a `Parameters.parameter` array) and their parts.
fn parameter_resources(parameters: Option<&Value>, depth: usize, out: &mut HashSet<String>) {
    if depth >= MAX_PART_DEPTH {
        return;
    }
    for parameter in parameters.and_then(Value::as_array).into_iter().flatten() {
        if let Some(resource) = parameter.get("resource") {
            let resource_type = resource.get("resourceType").and_then(Value::as_str);
            if let (Some(t), Some(id)) = (resource_type, resource.get("id").and_then(Value::as_str)) {
                out.insert(format!("{t}/{id}"));
            }
        }
        parameter_resources(parameter.get("part"), depth + 1, out);
    }
}
