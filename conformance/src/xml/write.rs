//! FHIR JSON → FHIR XML, the reverse of [`super::to_json`], so a JSON fixture can be sent when
//! an operation asks for `contentType: xml`. Elements are written in definition order (the R4
//! snapshot order of the engine's definitions); `Element.id` and `Extension.url` become
//! attributes, `_name` siblings the `id` and extensions of primitives, the narrative `div` is
//! written as it is. Properties the definitions do not know are written last, as JSON gives them.

use fhirgate_engine::definitions::{Definitions, Kind};
use serde_json::{Map, Value};

use super::dom::escape_into;
use crate::error::{Error, Result};

/// The FHIR XML of a resource.
pub fn from_json(resource: &Value) -> Result<String> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    write_resource(Definitions::r4(), &mut out, resource, true)?;
    Ok(out)
}

fn write_resource(defs: &Definitions, out: &mut String, resource: &Value, namespace: bool) -> Result<()> {
    let object = resource.as_object().ok_or_else(|| Error::Xml("a resource must be a JSON object".into()))?;
    let resource_type = object
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Xml("a resource without `resourceType`".into()))?;
    out.push('<');
    out.push_str(resource_type);
    if namespace {
        out.push_str(" xmlns=\"http://hl7.org/fhir\"");
    }
    out.push('>');
    write_children(defs, out, object, resource_type, "", true)?;
    out.push_str("</");
    out.push_str(resource_type);
    out.push('>');
    Ok(())
}

/// The children of an object whose definition is `path` below `type_name`.
fn write_children(
    defs: &Definitions,
    out: &mut String,
    object: &Map<String, Value>,
    type_name: &str,
    path: &str,
    resource_root: bool,
) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for key in object.keys() {
        let name = key.strip_prefix('_').unwrap_or(key);
        let attribute =
            !resource_root && (name == "id" || (name == "url" && type_name == "Extension" && path.is_empty()));
        if key != "resourceType" && key != "fhir_comments" && !attribute && !names.contains(&name) {
            names.push(name);
        }
    }
    let order = child_order(defs, type_name, path);
    names.sort_by_key(|name| rank(&order, name));
    for name in names {
        let child_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        let found = defs.element(type_name, &child_path);
        let type_code = found.and_then(|m| m.type_code);
        let values = items(object.get(name));
        let extensions = items(object.get(&format!("_{name}")));
        for i in 0..values.len().max(extensions.len()) {
            let value = values.get(i).copied().filter(|v| !v.is_null());
            let extension = extensions.get(i).copied().filter(|v| !v.is_null());
            match (type_code, value) {
                (Some("xhtml"), Some(Value::String(div))) => out.push_str(div),
                (Some(t), Some(v)) if defs.type_def(t).is_some_and(|d| d.kind == Kind::Resource) => {
                    open(out, name, None);
                    write_resource(defs, out, v, false)?;
                    close(out, name);
                }
                (_, Some(Value::Object(child))) => {
                    let (child_type, child_path) = match type_code {
                        Some(t) if t != "BackboneElement" && t != "Element" => (t, String::new()),
                        _ => (type_name, child_path.clone()),
                    };
                    open(out, name, Some(child));
                    write_children(defs, out, child, child_type, &child_path, false)?;
                    close(out, name);
                }
                (_, value) => write_primitive(defs, out, name, value, extension)?,
            }
        }
    }
    Ok(())
}

/// `<name id=".." value="..">` with the extensions of its `_name` sibling.
fn write_primitive(
    defs: &Definitions,
    out: &mut String,
    name: &str,
    value: Option<&Value>,
    extension: Option<&Value>,
) -> Result<()> {
    out.push('<');
    out.push_str(name);
    if let Some(id) = extension.and_then(|e| e.get("id")).and_then(Value::as_str) {
        attribute(out, "id", id);
    }
    match value {
        Some(Value::String(s)) => attribute(out, "value", s),
        Some(Value::Bool(b)) => attribute(out, "value", if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => attribute(out, "value", &n.to_string()),
        Some(other) => return Err(Error::Xml(format!("`{name}` is not a primitive: {other}"))),
        None => {}
    }
    let nested = extension.and_then(|e| e.get("extension")).map(|e| items(Some(e))).unwrap_or_default();
    if nested.is_empty() {
        out.push_str("/>");
        return Ok(());
    }
    out.push('>');
    for item in nested {
        let object =
            item.as_object().ok_or_else(|| Error::Xml(format!("an extension of `{name}` is not an object")))?;
        open(out, "extension", Some(object));
        write_children(defs, out, object, "Extension", "", false)?;
        close(out, "extension");
    }
    close(out, name);
    Ok(())
}

/// Opens a complex element, with its `id` (and an extension's `url`) as attributes.
fn open(out: &mut String, name: &str, object: Option<&Map<String, Value>>) {
    out.push('<');
    out.push_str(name);
    for key in ["id", "url"] {
        if key == "url" && name != "extension" && name != "modifierExtension" {
            continue;
        }
        if let Some(value) = object.and_then(|o| o.get(key)).and_then(Value::as_str) {
            attribute(out, key, value);
        }
    }
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value, true);
    out.push('"');
}

/// A property's values: the items of an array, or the value itself.
fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
        None => Vec::new(),
    }
}

/// The names of the children of `path` below `type_name`, in definition order.
fn child_order<'d>(defs: &'d Definitions, type_name: &str, path: &str) -> Vec<&'d str> {
    let parent = if path.is_empty() { type_name.to_owned() } else { format!("{type_name}.{path}") };
    defs.elements_of(type_name)
        .iter()
        .filter(|e| {
            e.path.strip_prefix(parent.as_str()).and_then(|r| r.strip_prefix('.')).is_some_and(|r| !r.contains('.'))
        })
        .map(|e| e.name.as_str())
        .collect()
}

/// Where a JSON name comes in the definition order (`valueQuantity` at `value[x]`); unknown
/// names last.
fn rank(order: &[&str], name: &str) -> usize {
    order
        .iter()
        .position(|defined| match defined.strip_suffix("[x]") {
            Some(stem) => {
                name.strip_prefix(stem).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            }
            None => *defined == name,
        })
        .unwrap_or(usize::MAX)
}
