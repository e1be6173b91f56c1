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
        self.current = resource;
        self.extensions_in(resource, path, resource_type, "", 0);
        self.current = self.root;
    }

    /// `value` is at `path`; `definition_path` is its path in its resource type without
    /// indexes (`address.line`), for extension contexts.
    fn extensions_in(
        &mut self,
        value: &'r Value,
        path: &str,
        resource_type: &'r str,
        definition_path: &str,
        depth: usize,
    ) {
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
                        let saved = self.current;
                        self.current = value;
                        for (key, child) in object {
                            let name = key.trim_start_matches('_');
                            if matches!(name, "extension" | "modifierExtension") {
                                self.extension_list(value, child, &format!("{path}.{key}"), name, t, "");
                            }
                            self.extensions_in(child, &format!("{path}.{key}"), t, name, depth + 1);
                        }
                        self.current = saved;
                        return;
                    }
                }
                let saved = self.enclosing_extension;
                if definition_path.ends_with("xtension") {
                    if let Some(url) = object.get("url").and_then(Value::as_str) {
                        self.enclosing_extension = Some(url);
                    }
                }
                for (key, child) in object {
                    let name = key.trim_start_matches('_');
                    if matches!(name, "extension" | "modifierExtension") {
                        self.extension_list(
                            value,
                            child,
                            &format!("{path}.{key}"),
                            name,
                            resource_type,
                            definition_path,
                        );
                    }
                    let child_path =
                        if definition_path.is_empty() { name.to_owned() } else { format!("{definition_path}.{name}") };
                    self.extensions_in(child, &format!("{path}.{key}"), resource_type, &child_path, depth + 1);
                }
                self.enclosing_extension = saved;
            }
            _ => {}
        }
    }

    fn extension_list(
        &mut self,
        holder_value: &'r Value,
        list: &'r Value,
        path: &str,
        kind: &str,
        resource_type: &str,
        holder: &str,
    ) {
        let Value::Array(exts) = list else { return };
        for (i, ext) in exts.iter().enumerate() {
            self.one_extension(holder_value, ext, &format!("{path}[{i}]"), kind, resource_type, holder);
        }
    }

    fn one_extension(
        &mut self,
        holder_value: &'r Value,
        ext: &'r Value,
        path: &str,
        kind: &str,
        resource_type: &str,
        holder: &str,
    ) {
        let Some(url) = ext.get("url").and_then(Value::as_str) else { return };
        // The parts of a complex extension are named by relative URLs, and checked with it.
        let in_extension =
            holder == "extension" || holder.ends_with(".extension") || holder.ends_with("modifierExtension");
        if in_extension && holder_value.get("url").is_some() {
            return;
        }
        if !url.contains(':') {
            self.issue(path.to_owned(), IssueType::Invalid, format!("extension url `{url}` is not an absolute URL"));
            return;
        }
        let profile = match self.conformance.profile(url) {
            Ok(p) if p.type_name == "Extension" => p,
            Ok(_) => {
                let message = format!("`{url}` is not the definition of an extension");
                self.issue(path.to_owned(), IssueType::Structure, message);
                return;
            }
            Err(_) => {
                if self.conformance.strict_extensions
                    && !allowed_unknown(url, self.conformance.refuse_example_extensions)
                {
                    let message = format!("extension `{url}` is not known, so it is not allowed here");
                    self.issue(path.to_owned(), IssueType::Structure, message);
                } else if kind == "modifierExtension" {
                    let message = format!("modifier extension `{url}` is not known: what it changes cannot be checked");
                    self.warning(path.to_owned(), IssueType::NotFound, message);
                }
                return;
            }
        };
        if !profile.contexts.is_empty() && !self.context_allows(&profile.contexts, resource_type, holder, holder_value)
        {
            let shown = if holder.is_empty() { resource_type.to_owned() } else { format!("{resource_type}.{holder}") };
            let allowed: Vec<&str> = profile.contexts.iter().map(|(_, e)| e.as_str()).collect();
            let message = format!("extension `{url}` is not allowed on `{shown}` (allowed: {})", allowed.join(", "));
            self.issue(path.to_owned(), IssueType::Structure, message);
        }
        for invariant in &profile.context_invariants {
            if self.context_invariant_fails(invariant, resource_type, holder, holder_value) {
                let message =
                    format!("extension `{url}` is not allowed here: its context invariant `{invariant}` is not true");
                self.issue(path.to_owned(), IssueType::Structure, message);
            }
        }
        let found =
            Found { value: Some(ext), ext: None, type_name: Some("Extension".to_owned()), path: path.to_owned() };
        self.against(&profile, &found);
    }

    /// Whether an extension may be used on `holder` (a path in `resource_type`, empty for the
    /// resource itself).
    fn context_allows(
        &mut self,
        contexts: &[(String, String)],
        resource_type: &str,
        holder: &str,
        holder_value: &'r Value,
    ) -> bool {
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
                matches!(expression, "Element" | "Base")
                    // `Resource`, `DomainResource`: on a resource itself, not on its elements.
                    || (matches!(expression, "Resource" | "DomainResource") && holder.is_empty())
                    || (expression == "BackboneElement" && holder_type.as_deref() == Some("BackboneElement"))
                    || ["Resource.", "DomainResource."].iter().any(|p| expression.strip_prefix(p) == Some(holder))
                    || expression == full
                    || definition_path.as_deref() == Some(expression)
                    || holder_type.as_deref() == Some(expression)
                    || holder_type.as_deref().is_some_and(|t| defs.type_def(t).and_then(|d| d.base.as_deref()) == Some(expression))
                    || expression.strip_suffix("[x]").is_some_and(|stem| full.starts_with(stem))
                    // A type of a later FHIR version (`CanonicalResource`): not checkable here.
                    || defs.type_def(expression.split('.').next().unwrap_or_default()).is_none()
            }
            "extension" => self.enclosing_extension == Some(expression.as_str()),
            "fhirpath" => self.selects(expression, holder_value),
            _ => false,
        })
    }
}

impl<'r> Walker<'_, 'r> {
    /// Whether a `contextInvariant` is false on what holds the extension (`holder` in
    /// `resource_type`, empty for the resource). One that cannot be evaluated does not fail.
    fn context_invariant_fails(
        &mut self,
        expression: &str,
        resource_type: &str,
        holder: &str,
        holder_value: &'r Value,
    ) -> bool {
        use crate::fhirpath::{Item, Node};
        let node = if holder.is_empty() {
            Node::resource(holder_value)
        } else {
            let defs = Definitions::r4();
            let Some(found) = defs.element(resource_type, holder) else { return false };
            match found.type_code.map(str::to_owned).or_else(|| found.element.types.first().cloned()) {
                Some(t) if t != "BackboneElement" => Node::typed(holder_value, &t),
                _ => return false,
            }
        };
        let Ok(expr) = crate::fhirpath::parse(expression) else { return false };
        let env = crate::fhirpath::Env::new().with_budget(super::invariants::INVARIANT_BUDGET);
        match crate::fhirpath::evaluate_on(&expr, self.current, &[Item::Node(node)], &env) {
            Ok(items) => matches!(items.as_slice(), [Item::Boolean(false)]),
            Err(_) => false,
        }
    }

    /// Whether the FHIRPath `expression` on the current resource selects `value` (a context of
    /// type `fhirpath`).
    fn selects(&mut self, expression: &str, value: &'r Value) -> bool {
        let Ok(expr) = crate::fhirpath::parse(expression) else { return false };
        let env = crate::fhirpath::Env::new().with_budget(super::invariants::INVARIANT_BUDGET);
        let Ok(items) = crate::fhirpath::evaluate(&expr, self.current, &env) else { return false };
        items.iter().any(|i| {
            i.node().is_some_and(|n| {
                n.value().is_some_and(|v| std::ptr::eq(v, value)) || n.ext.is_some_and(|v| std::ptr::eq(v, value))
            })
        })
    }
}

/// Unknown extensions the reference validator accepts even when it refuses the others: those of
/// example domains (unless `refuse_examples`).
fn allowed_unknown(url: &str, refuse_examples: bool) -> bool {
    // HL7's own (it finds those of its extension packages that a server does not have).
    (!refuse_examples && ["example.org", "acme.com", "nema.org"].iter().any(|d| url.contains(d)))
        || url.starts_with("http://hl7.org/fhir/")
}
