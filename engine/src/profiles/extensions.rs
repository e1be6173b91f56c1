//! Extensions by their definitions: every `extension` and `modifierExtension` of the instance
//! (at any depth, contained resources and Bundle entries included) whose `url` names a known
//! StructureDefinition is checked against it (its value's type, its own extensions, its
//! cardinalities) and against its context (where it may be used). An extension whose definition
//! is not known is accepted with a warning for `modifierExtension` only: an unknown modifier
//! changes the meaning of what holds it.

use serde_json::Value;

use super::walk::{Found, Walker};
use crate::definitions::Definitions;
use crate::outcome::IssueType;

/// How deep the walk looks for extensions (the base validator refuses deeper resources).
const MAX_DEPTH: usize = crate::validation::MAX_DEPTH;

impl<'r> Walker<'_, 'r> {
    /// Checks every extension in `resource` (a resource at `path`).
    pub(crate) fn extensions(&mut self, resource: &'r Value, path: &str) {
        let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        self.extensions_in(resource, path, resource_type, "", 0);
    }

    /// `value` is at `path`; `definition_path` is its path in its resource type without
    /// indexes (`address.line`), for extension contexts.
    fn extensions_in(&mut self, value: &'r Value, path: &str, resource_type: &'r str, definition_path: &str, depth: usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.extensions_in(item, &format!("{path}[{i}]"), resource_type, definition_path, depth + 1);
                }
            }
            Value::Object(object) => {
                if depth > 0 {
                    if let Some(t) = object.get("resourceType").and_then(Value::as_str) {
                        for (key, child) in object {
                            self.extensions_in(child, &format!("{path}.{key}"), t, key.trim_start_matches('_'), depth + 1);
                        }
                        return;
                    }
                }
                for (key, child) in object {
                    let name = key.trim_start_matches('_');
                    if matches!(name, "extension" | "modifierExtension") {
                        if let Value::Array(exts) = child {
                            for (i, ext) in exts.iter().enumerate() {
                                self.one_extension(ext, &format!("{path}.{key}[{i}]"), name, resource_type, definition_path);
                            }
                        }
                    }
                    let child_path = if definition_path.is_empty() { name.to_owned() } else { format!("{definition_path}.{name}") };
                    self.extensions_in(child, &format!("{path}.{key}"), resource_type, &child_path, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn one_extension(&mut self, ext: &'r Value, path: &str, kind: &str, resource_type: &str, holder: &str) {
        let Some(url) = ext.get("url").and_then(Value::as_str) else { return };
        let profile = match self.conformance.profile(url) {
            Ok(p) if p.type_name == "Extension" => p,
            Ok(_) => {
                let message = format!("`{url}` is not the definition of an extension");
                self.issue(path.to_owned(), IssueType::Structure, message);
                return;
            }
            Err(_) => {
                if kind == "modifierExtension" {
                    let message = format!("modifier extension `{url}` is not known: what it changes cannot be checked");
                    self.warning(path.to_owned(), IssueType::NotFound, message);
                }
                return;
            }
        };
        if !profile.contexts.is_empty() && !self.context_allows(&profile.contexts, resource_type, holder) {
            let shown = if holder.is_empty() { resource_type.to_owned() } else { format!("{resource_type}.{holder}") };
            let allowed: Vec<&str> = profile.contexts.iter().map(|(_, e)| e.as_str()).collect();
            let message = format!("extension `{url}` is not allowed on `{shown}` (allowed: {})", allowed.join(", "));
            self.issue(path.to_owned(), IssueType::Structure, message);
        }
        let found = Found { value: Some(ext), ext: None, type_name: Some("Extension".to_owned()), path: path.to_owned() };
        self.against(&profile, &found);
    }

    /// Whether an extension may be used on `holder` (a path in `resource_type`, empty for the
    /// resource itself).
    fn context_allows(&self, contexts: &[(String, String)], resource_type: &str, holder: &str) -> bool {
        let defs = Definitions::r4();
        let full = if holder.is_empty() { resource_type.to_owned() } else { format!("{resource_type}.{holder}") };
        let found = (!holder.is_empty()).then(|| defs.element(resource_type, holder)).flatten();
        let holder_type = if holder.is_empty() {
            Some(resource_type.to_owned())
        } else {
            found.and_then(|m| m.type_code.map(str::to_owned).or_else(|| m.element.types.first().cloned()))
        };
        let definition_path = found.map(|m| m.element.path.clone());
        contexts.iter().any(|(kind, expression)| match kind.as_str() {
            "element" => {
                let expression = expression.as_str();
                matches!(expression, "Element" | "Base" | "Resource" | "DomainResource" | "BackboneElement")
                    || expression == full
                    || definition_path.as_deref() == Some(expression)
                    || holder_type.as_deref() == Some(expression)
                    || holder_type.as_deref().is_some_and(|t| defs.type_def(t).and_then(|d| d.base.as_deref()) == Some(expression))
                    || expression.strip_suffix("[x]").is_some_and(|stem| full.starts_with(stem))
            }
            // An extension on an extension: the holder's URL is not tracked here.
            "extension" => holder.ends_with("extension") || holder.ends_with("modifierExtension"),
            _ => true,
        })
    }
}
