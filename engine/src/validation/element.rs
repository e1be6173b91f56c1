//! The walk over a JSON object's properties: unknown elements, cardinality (array or not, min,
//! max), `_name` extension siblings of primitives, and the descent into complex values and
//! nested resources.

use serde_json::{Map, Value};

use super::{MAX_DEPTH, Validator, json_kind, primitive};
use crate::definitions::{Child, Kind, NodeId};
use crate::outcome::IssueType;

impl Validator<'_> {
    /// Checks an object against a node (a type's root or a backbone element). `resource_root`
    /// allows its `resourceType` property.
    pub(super) fn object(&mut self, object: &Map<String, Value>, node_id: NodeId, depth: usize, resource_root: bool) {
        if depth >= MAX_DEPTH {
            self.issue(IssueType::TooCostly, format!("nesting deeper than {MAX_DEPTH} levels is not allowed"));
            return;
        }
        if object.is_empty() {
            self.issue(IssueType::Structure, "empty object is not allowed".to_owned());
            return;
        }
        let defs = self.defs;
        let node = defs.node(node_id);
        // Choice elements seen so far: (element, JSON name), to report two values of one choice.
        let mut choices: Vec<(usize, &str)> = Vec::new();
        for (key, value) in object {
            if resource_root && key == "resourceType" {
                continue;
            }
            if let Some(name) = key.strip_prefix('_') {
                match node.children.get(name) {
                    Some(child) if self.is_primitive(child) && !defs.element_at(child.element).system => {
                        if !object.contains_key(name) {
                            self.primitive_property(name, None, Some(value), child, depth);
                        }
                    }
                    _ => self.unknown(key),
                }
                continue;
            }
            let Some(child) = node.children.get(key.as_str()) else {
                self.unknown(key);
                continue;
            };
            let element = defs.element_at(child.element);
            if element.is_choice() {
                if let Some((_, other)) = choices.iter().find(|(e, _)| *e == child.element) {
                    let message =
                        format!("only one of `{other}` and `{key}` is allowed (`{}` is a choice)", element.name);
                    self.issue_in(key, IssueType::Structure, message);
                }
                choices.push((child.element, key));
            }
            if self.is_primitive(child) {
                let extension = if element.system {
                    None
                } else {
                    self.scratch.clear();
                    self.scratch.push('_');
                    self.scratch.push_str(key);
                    object.get(self.scratch.as_str())
                };
                self.primitive_property(key, Some(value), extension, child, depth);
            } else {
                self.complex_property(key, value, child, depth);
            }
        }
        for required in &node.required {
            if !required.keys.iter().any(|k| object.contains_key(&**k)) {
                let name = &defs.element_at(required.element).name;
                self.issue_in(name, IssueType::Required, format!("missing required element `{name}`"));
            }
        }
    }

    fn is_primitive(&self, child: &Child) -> bool {
        child.type_index.is_some_and(|t| self.defs.type_at(t).kind == Kind::PrimitiveType)
    }

    fn unknown(&mut self, key: &str) {
        let message = format!("unknown element `{}`", primitive::shorten(key));
        self.issue_in(key, IssueType::Structure, message);
    }

    /// A complex (or backbone, or resource) element: one value or an array of them.
    fn complex_property(&mut self, key: &str, value: &Value, child: &Child, depth: usize) {
        let element = self.defs.element_at(child.element);
        let mark = self.enter(key);
        match value {
            Value::Array(items) if element.is_repeating() => {
                self.check_count(items.len(), element.max);
                for (i, item) in items.iter().enumerate() {
                    let item_mark = self.enter_index(i);
                    self.complex_value(item, child, depth);
                    self.path.truncate(item_mark);
                }
            }
            Value::Array(_) => {
                self.issue(IssueType::Structure, format!("`{key}` must be a single value, not an array"));
            }
            other if element.is_repeating() => {
                self.issue(IssueType::Structure, format!("`{key}` must be an array"));
                self.complex_value(other, child, depth);
            }
            other => self.complex_value(other, child, depth),
        }
        self.path.truncate(mark);
    }

    fn complex_value(&mut self, value: &Value, child: &Child, depth: usize) {
        let Value::Object(object) = value else {
            self.issue(IssueType::Structure, format!("expected a JSON object, found {}", json_kind(value)));
            return;
        };
        let is_resource = child.type_index.is_some_and(|t| self.defs.type_at(t).kind == Kind::Resource);
        if is_resource {
            self.resource(value, depth + 1);
        } else if let Some(node) = child.node {
            self.object(object, node, depth + 1, false);
        }
    }

    /// An array's length against the element's max (min is checked as presence: FHIR JSON has
    /// no empty arrays, and no base element requires more than one value).
    fn check_count(&mut self, len: usize, max: Option<u32>) {
        if len == 0 {
            self.issue(IssueType::Structure, "empty array is not allowed".to_owned());
        }
        if let Some(max) = max {
            if len > max as usize {
                self.issue(IssueType::Structure, format!("at most {max} values are allowed, found {len}"));
            }
        }
    }

    /// A primitive element: its value (`name`) and/or its extension sibling (`_name`).
    fn primitive_property(
        &mut self,
        key: &str,
        value: Option<&Value>,
        extension: Option<&Value>,
        child: &Child,
        depth: usize,
    ) {
        let element = self.defs.element_at(child.element);
        let mark = self.enter(key);
        if element.is_repeating() {
            self.primitive_array(key, value, extension, child, depth);
        } else {
            match value {
                Some(Value::Array(_)) => {
                    self.issue(IssueType::Structure, format!("`{key}` must be a single value, not an array"));
                }
                Some(v) => self.primitive_value(v, child),
                None => {}
            }
            match extension {
                Some(Value::Object(object)) => {
                    self.primitive_extension(object, child, depth);
                    self.value_or_children(value.is_some_and(|v| !v.is_null()), object);
                }
                Some(other) => self
                    .issue(IssueType::Structure, format!("`_{key}` must be a JSON object, found {}", json_kind(other))),
                None => {}
            }
        }
        self.path.truncate(mark);
    }

    /// A repeating primitive: `name` and `_name` are arrays aligned by index, where `null`
    /// stands for "no value" or "no extension" but never both.
    fn primitive_array(
        &mut self,
        key: &str,
        value: Option<&Value>,
        extension: Option<&Value>,
        child: &Child,
        depth: usize,
    ) {
        let max = self.defs.element_at(child.element).max;
        let values = match value {
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => {
                self.issue(IssueType::Structure, format!("`{key}` must be an array"));
                std::slice::from_ref(other)
            }
            None => &[],
        };
        let extensions = match extension {
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => {
                self.issue(IssueType::Structure, format!("`_{key}` must be an array, found {}", json_kind(other)));
                &[]
            }
            None => &[],
        };
        if value.is_some() {
            self.check_count(values.len(), max);
        } else if extensions.is_empty() {
            self.issue(IssueType::Structure, format!("`_{key}` must not be an empty array"));
        } else {
            self.check_count(extensions.len(), max);
        }
        if value.is_some() && matches!(extension, Some(Value::Array(_))) && values.len() != extensions.len() {
            self.issue(
                IssueType::Structure,
                format!("`_{key}` has {} items but `{key}` has {}: they must align", extensions.len(), values.len()),
            );
        }
        for i in 0..values.len().max(extensions.len()) {
            let v = values.get(i).filter(|v| !v.is_null());
            let e = extensions.get(i).filter(|e| !e.is_null());
            let item_mark = self.enter_index(i);
            match (v, e) {
                (None, None) => self.issue(IssueType::Structure, "null is not allowed without an extension".to_owned()),
                _ => {
                    if let Some(v) = v {
                        self.primitive_value(v, child);
                    }
                    match e {
                        Some(Value::Object(object)) => {
                            self.primitive_extension(object, child, depth);
                            self.value_or_children(v.is_some(), object);
                        }
                        Some(other) => self.issue(
                            IssueType::Structure,
                            format!("items of `_{key}` must be JSON objects, found {}", json_kind(other)),
                        ),
                        None => {}
                    }
                }
            }
            self.path.truncate(item_mark);
        }
    }

    fn primitive_value(&mut self, value: &Value, child: &Child) {
        let Some(type_index) = child.type_index else { return };
        if value.is_null() {
            self.issue(IssueType::Structure, "null is not allowed".to_owned());
            return;
        }
        let type_name = &self.defs.type_at(type_index).name;
        if let Err(message) = primitive::check(type_name, value) {
            self.issue(IssueType::Value, message);
        }
    }

    /// ele-1 ("All FHIR elements must have a @value or children") for a primitive: without a
    /// value its `_name` object needs an extension; an `id` alone is not a child that counts.
    fn value_or_children(&mut self, has_value: bool, object: &Map<String, Value>) {
        let has_extension = object.get("extension").and_then(Value::as_array).is_some_and(|x| !x.is_empty());
        if !has_value && !has_extension && object.contains_key("id") {
            self.issue(
                IssueType::Invariant,
                "ele-1: a primitive element must have a value or extensions (an `id` alone is not enough)".to_owned(),
            );
        }
    }

    /// The `_name` object of a primitive: its `id` and `extension`, at the primitive's path.
    fn primitive_extension(&mut self, object: &Map<String, Value>, child: &Child, depth: usize) {
        if let Some(node) = child.node {
            self.object(object, node, depth + 1, false);
        }
    }
}
