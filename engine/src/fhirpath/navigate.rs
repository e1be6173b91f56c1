//! Member navigation over FHIR JSON: `name` finds `name` and its `_name` sibling, `value` finds
//! `valueQuantity` (typed `Quantity` from the JSON name suffix), children are typed by the R4
//! element definitions.

use serde_json::Value;

use super::value::{Item, Node};
use crate::definitions::Definitions;

/// The items `name` selects on `item` (empty for System values and primitives, except
/// `extension`/`id` of a primitive, which come from its `_name` sibling).
pub(crate) fn member<'a>(item: &Item<'a>, name: &str, out: &mut Vec<Item<'a>>) {
    if let Item::TypeInfo { namespace, name: type_name } = item {
        match name {
            "namespace" => out.push(Item::String((*namespace).to_owned())),
            "name" => out.push(Item::String(type_name.clone())),
            _ => {}
        }
        return;
    }
    let Item::Node(node) = item else { return };
    if let Some(ext) = node.ext.and_then(Value::as_object) {
        if let Some(value) = ext.get(name) {
            let child = child_node(node, name, Some(value), None);
            push_all(child, out);
        }
    }
    let Some(Value::Object(object)) = node.value else { return };
    let value = object.get(name);
    let ext = object.get(&format!("_{name}"));
    if value.is_some() || ext.is_some() {
        push_all(child_node(node, name, value, ext), out);
        return;
    }
    // A choice element: `value` matches `valueQuantity`, `valueString`, ...
    for (key, value) in object {
        let Some(suffix) = key.strip_prefix(name) else { continue };
        if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) || !is_choice_of(node, key, name) {
            continue;
        }
        let ext = object.get(&format!("_{key}"));
        push_all(child_node(node, key, Some(value), ext), out);
    }
    if let Some((key, ext)) = object.iter().find(|(key, _)| {
        key.strip_prefix('_')
            .and_then(|k| k.strip_prefix(name))
            .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
            && !object.contains_key(&key[1..])
    }) {
        if is_choice_of(node, &key[1..], name) {
            push_all(child_node(node, &key[1..], None, Some(ext)), out);
        }
    }
}

/// Every child of `item` (`children()`), in JSON order.
pub(crate) fn children<'a>(item: &Item<'a>, out: &mut Vec<Item<'a>>) {
    let Item::Node(node) = item else { return };
    let Some(Value::Object(object)) = node.value else {
        if let Some(Value::Object(ext)) = node.ext {
            for (key, value) in ext {
                push_all(child_node(node, key, Some(value), None), out);
            }
        }
        return;
    };
    for (key, value) in object {
        if key == "resourceType" {
            continue;
        }
        if let Some(bare) = key.strip_prefix('_') {
            if !object.contains_key(bare) {
                push_all(child_node(node, bare, None, Some(value)), out);
            }
            continue;
        }
        push_all(child_node(node, key, Some(value), object.get(&format!("_{key}"))), out);
    }
}

fn is_choice_of(node: &Node<'_>, key: &str, name: &str) -> bool {
    match node.root {
        Some(root) => Definitions::r4()
            .element(root, &join(&node.path, key))
            .is_some_and(|m| m.element.name.strip_suffix("[x]") == Some(name)),
        None => true,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// The node(s) for JSON property `key` of `parent`, arrays not yet split.
struct Child<'a> {
    value: Option<&'a Value>,
    ext: Option<&'a Value>,
    fhir_type: Option<&'static str>,
    root: Option<&'static str>,
    path: String,
    code_system: Option<&'static str>,
}

fn child_node<'a>(parent: &Node<'a>, key: &str, value: Option<&'a Value>, ext: Option<&'a Value>) -> Child<'a> {
    let defs = Definitions::r4();
    let (mut fhir_type, mut root, mut path, mut code_system) = (None, None, String::new(), None);
    if let Some(parent_root) = parent.root {
        let full = join(&parent.path, key);
        if let Some(m) = defs.element(parent_root, &full) {
            let type_code = m.type_code.or_else(|| m.element.content_reference.as_ref().map(|_| "BackboneElement"));
            match type_code {
                Some("BackboneElement" | "Element") | None => {
                    fhir_type = Some(if m.type_code == Some("Element") { "Element" } else { "BackboneElement" });
                    root = Some(parent_root);
                    path = full;
                }
                Some(code) => {
                    let name = defs.type_def(code).map(|t| t.name.as_str());
                    fhir_type = name;
                    root = name;
                    code_system = m.element.code_system.as_deref();
                }
            }
        }
    }
    Child { value, ext, fhir_type, root, path, code_system }
}

fn push_all<'a>(child: Child<'a>, out: &mut Vec<Item<'a>>) {
    let make = |value: Option<&'a Value>, ext: Option<&'a Value>| {
        let ext = ext.filter(|e| !e.is_null());
        let value = value.filter(|v| !v.is_null());
        if value.is_none() && ext.is_none() {
            return None;
        }
        let mut node = Node {
            value,
            ext,
            fhir_type: child.fhir_type,
            root: child.root,
            path: child.path.clone(),
            code_system: child.code_system,
        };
        // Contained resources and Bundle entries are typed by their own `resourceType`.
        if matches!(child.fhir_type, Some("Resource" | "DomainResource") | None) {
            if let Some(Value::Object(object)) = value {
                if object.contains_key("resourceType") {
                    let path = std::mem::take(&mut node.path);
                    node = Node::resource(value?);
                    node.path = if node.root.is_some() { String::new() } else { path };
                }
            }
        }
        Some(Item::Node(node))
    };
    match (child.value, child.ext) {
        (Some(Value::Array(values)), ext) => {
            let exts = ext.and_then(Value::as_array);
            for (i, value) in values.iter().enumerate() {
                out.extend(make(Some(value), exts.and_then(|e| e.get(i))));
            }
        }
        (None, Some(Value::Array(exts))) => {
            for ext in exts {
                out.extend(make(None, Some(ext)));
            }
        }
        (value, ext) => out.extend(make(value, ext)),
    }
}
