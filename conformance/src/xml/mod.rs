//! FHIR XML → FHIR JSON (and back, in `write.rs`), driven by the R4 definitions: they say which elements repeat (JSON
//! arrays), which are primitives (the `value` attribute, typed as the JSON rules want, with `id`
//! and extensions in the `_name` sibling), where a nested resource starts (`contained`,
//! `Bundle.entry.resource`) and which element is XHTML (`Narrative.div`, kept as a string).
//! See <https://hl7.org/fhir/R4/xml.html> and <https://hl7.org/fhir/R4/json.html>.
//!
//! Elements the definitions do not know (STU3 leftovers, typos) are still converted, as a single
//! string when they carry `value` and as an object otherwise, so a script stays readable.

pub mod dom;
#[cfg(test)]
mod tests;
mod write;

pub use write::from_json;

use fhirgate_engine::definitions::{Definitions, Kind};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use dom::Element;

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Converts a FHIR XML document (a resource at the root) to FHIR JSON.
pub fn to_json(text: &str) -> Result<Value> {
    resource(Definitions::r4(), &dom::parse(text)?)
}

/// Converts a resource element (`<Patient>`).
fn resource(defs: &Definitions, element: &Element) -> Result<Value> {
    let resource_type = element.name.as_str();
    if defs.type_def(resource_type).is_none_or(|t| t.kind != Kind::Resource) {
        return Err(Error::Xml(format!("`{resource_type}` is not an R4 resource type")));
    }
    let mut map = Map::new();
    map.insert("resourceType".into(), Value::String(resource_type.to_owned()));
    object_into(defs, &mut map, element, resource_type, "")?;
    Ok(Value::Object(map))
}

/// One JSON property being built: its values and `_name` extension objects, in element order.
struct Property {
    name: String,
    repeating: bool,
    values: Vec<(Option<Value>, Option<Value>)>,
}

/// Fills `map` with the attributes and children of `element`, whose definition is `path` below
/// the type `type_name` (`path` empty for the type's root).
fn object_into(
    defs: &Definitions,
    map: &mut Map<String, Value>,
    element: &Element,
    type_name: &str,
    path: &str,
) -> Result<()> {
    for (key, value) in &element.attributes {
        if key == "id" || key == "url" {
            map.insert(key.clone(), Value::String(value.clone()));
        }
    }
    let mut properties: Vec<Property> = Vec::new();
    for child in element.elements() {
        let child_path = if path.is_empty() { child.name.clone() } else { format!("{path}.{}", child.name) };
        let found = defs.element(type_name, &child_path);
        let repeating = found.is_some_and(|m| m.element.is_repeating());
        let type_code = found.and_then(|m| m.type_code);
        let (value, extension) = match (found, type_code) {
            (None, _) => unknown(child),
            (Some(_), Some("xhtml")) => {
                let mut text = String::new();
                child.write(&mut text, Some(XHTML_NS));
                (Some(Value::String(text)), None)
            }
            (Some(_), Some(t)) if defs.type_def(t).is_some_and(|d| d.kind == Kind::PrimitiveType) => {
                primitive(defs, child, t)?
            }
            (Some(_), Some(t)) if defs.type_def(t).is_some_and(|d| d.kind == Kind::Resource) => {
                let inner =
                    child.elements().next().ok_or_else(|| Error::Xml(format!("`{child_path}` holds no resource")))?;
                (Some(resource(defs, inner)?), None)
            }
            (Some(_), Some(t)) if t != "BackboneElement" && t != "Element" => {
                let mut object = Map::new();
                object_into(defs, &mut object, child, t, "")?;
                (Some(Value::Object(object)), None)
            }
            // Backbone elements and contentReferences go on along the same type.
            (Some(_), _) => {
                let mut object = Map::new();
                object_into(defs, &mut object, child, type_name, &child_path)?;
                (Some(Value::Object(object)), None)
            }
        };
        match properties.iter_mut().find(|p| p.name == child.name) {
            Some(property) => property.values.push((value, extension)),
            None => properties.push(Property { name: child.name.clone(), repeating, values: vec![(value, extension)] }),
        }
    }
    for Property { name, repeating, values } in properties {
        let has_extension = values.iter().any(|(_, e)| e.is_some());
        let has_value = values.iter().any(|(v, _)| v.is_some());
        if repeating || values.len() > 1 {
            let (main, extensions): (Vec<_>, Vec<_>) =
                values.into_iter().map(|(v, e)| (v.unwrap_or(Value::Null), e.unwrap_or(Value::Null))).unzip();
            if has_value {
                map.insert(name.clone(), Value::Array(main));
            }
            if has_extension {
                map.insert(format!("_{name}"), Value::Array(extensions));
            }
        } else if let Some((value, extension)) = values.into_iter().next() {
            if let Some(v) = value {
                map.insert(name.clone(), v);
            }
            if let Some(e) = extension {
                map.insert(format!("_{name}"), e);
            }
        }
    }
    Ok(())
}

/// A primitive element: the typed `value` attribute, and its `id` and extensions as the `_name`
/// object.
fn primitive(defs: &Definitions, element: &Element, type_code: &str) -> Result<(Option<Value>, Option<Value>)> {
    let value = element.attribute("value").map(|v| typed(v, type_code));
    let mut extension = Map::new();
    if let Some(id) = element.attribute("id") {
        extension.insert("id".into(), Value::String(id.to_owned()));
    }
    let mut extensions = Vec::new();
    for child in element.elements().filter(|e| e.name == "extension") {
        let mut object = Map::new();
        object_into(defs, &mut object, child, "Extension", "")?;
        extensions.push(Value::Object(object));
    }
    if !extensions.is_empty() {
        extension.insert("extension".into(), Value::Array(extensions));
    }
    Ok((value, (!extension.is_empty()).then_some(Value::Object(extension))))
}

/// A primitive value as the JSON rules want it: booleans and numbers unquoted.
fn typed(value: &str, type_code: &str) -> Value {
    match type_code {
        "boolean" => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value.to_owned()),
        },
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => match serde_json::from_str::<Value>(value.trim()) {
            Ok(number @ Value::Number(_)) => number,
            _ => Value::String(value.to_owned()),
        },
        _ => Value::String(value.to_owned()),
    }
}

/// An element the definitions do not know: a string when it has `value`, an object otherwise.
fn unknown(element: &Element) -> (Option<Value>, Option<Value>) {
    if let Some(v) = element.attribute("value") {
        return (Some(Value::String(v.to_owned())), None);
    }
    let mut map = Map::new();
    for (k, v) in &element.attributes {
        if !k.starts_with("xmlns") {
            map.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for child in element.elements() {
        if let (Some(v), _) = unknown(child) {
            map.insert(child.name.clone(), v);
        }
    }
    (Some(Value::Object(map)), None)
}
