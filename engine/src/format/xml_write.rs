//! FHIR JSON → FHIR XML (<https://hl7.org/fhir/R4/xml.html>), driven by the R4 definitions
//! ([`super::xml_shape`]), written with quick-xml's `Writer`.
//!
//! The JSON is the engine's own (validated resources, bundles, outcomes) or a remote target's;
//! a property the definitions do not know, or a narrative that is not well-formed XHTML, is an
//! error (406: the answer has no XML form) rather than XML a reader would take differently.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use serde_json::{Map, Value};

use super::xml_shape::{FHIR_NS, MAX_DEPTH, Prop, Shape, escape_attribute, prop, resource_node};
use crate::definitions::{Definitions, NodeId};
use crate::error::{Error, Result};

/// Renders a FHIR resource (a JSON object with `resourceType`) as an XML document.
pub(crate) fn to_xml(resource: &Value, pretty: bool) -> Result<Vec<u8>> {
    let mut out = XmlOut {
        defs: Definitions::r4(),
        writer: if pretty { Writer::new_with_indent(Vec::new(), b' ', 2) } else { Writer::new(Vec::new()) },
    };
    out.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let Value::Object(resource) = resource else {
        return Err(no_xml("the body is not a FHIR resource"));
    };
    out.resource(resource, true, 0)?;
    Ok(out.writer.into_inner())
}

/// The answer cannot be given as XML.
fn no_xml(why: impl std::fmt::Display) -> Error {
    Error::NotAcceptable(format!("cannot render the answer as FHIR XML: {why}"))
}

struct XmlOut {
    defs: &'static Definitions,
    writer: Writer<Vec<u8>>,
}

impl XmlOut {
    fn event(&mut self, event: Event<'_>) -> Result<()> {
        self.writer.write_event(event).map_err(no_xml)
    }

    /// `<Patient xmlns=…>…</Patient>`; the namespace on the document's root only.
    fn resource(&mut self, resource: &Map<String, Value>, root: bool, depth: usize) -> Result<()> {
        let Some(Value::String(name)) = resource.get("resourceType") else {
            return Err(no_xml("a resource has no `resourceType`"));
        };
        let node =
            resource_node(self.defs, name).map_err(|_| no_xml(format!("`{name}` is not an R4 resource type")))?;
        self.element(name, node, resource, root.then_some(("xmlns", FHIR_NS)), depth)
    }

    /// An element for the object `object` of `node`, with an extra attribute (a primitive's
    /// `value`, the root's namespace).
    fn element(
        &mut self,
        name: &str,
        node: NodeId,
        object: &Map<String, Value>,
        extra: Option<(&str, &str)>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(no_xml(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let mut start = BytesStart::new(name);
        let mut children: Vec<(Prop, &str)> = Vec::new();
        for key in object.keys() {
            let base = key.strip_prefix('_').unwrap_or(key);
            let found = prop(self.defs, node, base);
            // A resource's type is its element's name (`ExampleScenario.instance.resourceType`
            // is an element of its own).
            if key == "resourceType" && found.is_none() {
                continue;
            }
            let Some(p) = found else {
                return Err(no_xml(format!("`{key}` is not an element of `{name}`")));
            };
            if p.shape == Shape::Attribute {
                let text = scalar_text(&object[key]).ok_or_else(|| no_xml(format!("`{key}` is not a string")))?;
                push_attribute(&mut start, base, &text)?;
            } else if !children.iter().any(|(_, k)| *k == base) {
                children.push((p, base));
            }
        }
        if let Some((key, value)) = extra {
            push_attribute(&mut start, key, value)?;
        }
        if children.is_empty() {
            return self.event(Event::Empty(start));
        }
        children.sort_by_key(|(p, _)| p.order);
        self.event(Event::Start(start))?;
        for (p, key) in children {
            self.property(object, key, p, depth + 1)?;
        }
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// Every element of property `key` (and its `_key` sibling for primitives).
    fn property(&mut self, object: &Map<String, Value>, key: &str, p: Prop, depth: usize) -> Result<()> {
        if let Shape::Primitive(_) = p.shape {
            let underscored = format!("_{key}");
            let values = items(object.get(key));
            let elements = items(object.get(&underscored));
            for i in 0..values.len().max(elements.len()) {
                let value = values.get(i).copied().filter(|v| !v.is_null());
                let element = elements.get(i).copied().filter(|v| !v.is_null());
                self.primitive(key, value, element, depth)?;
            }
            return Ok(());
        }
        for item in items(object.get(key)) {
            match (p.shape, item) {
                (Shape::Xhtml, Value::String(div)) => self.xhtml(div)?,
                (Shape::Resource, Value::Object(resource)) => {
                    self.event(Event::Start(BytesStart::new(key)))?;
                    self.resource(resource, false, depth + 1)?;
                    self.event(Event::End(BytesEnd::new(key)))?;
                }
                (Shape::Complex(node), Value::Object(o)) => self.element(key, node, o, None, depth)?,
                _ => return Err(no_xml(format!("`{key}` does not hold what its type needs"))),
            }
        }
        Ok(())
    }

    /// `<key value="…" id="…"><extension …/></key>`.
    fn primitive(&mut self, key: &str, value: Option<&Value>, element: Option<&Value>, depth: usize) -> Result<()> {
        let text = match value {
            Some(v) => Some(scalar_text(v).ok_or_else(|| no_xml(format!("`{key}` is not a primitive value")))?),
            None => None,
        };
        let empty = Map::new();
        let element = match element {
            Some(Value::Object(o)) => o,
            Some(_) => return Err(no_xml(format!("`_{key}` is not an object"))),
            None if text.is_none() => return Ok(()),
            None => &empty,
        };
        let node = self.defs.root_node("Element").ok_or_else(|| no_xml("the definitions lack `Element`"))?;
        self.element(key, node, element, text.as_deref().map(|t| ("value", t)), depth)
    }

    /// The narrative, written as the XHTML it is once it is known to be one well-formed element.
    fn xhtml(&mut self, div: &str) -> Result<()> {
        if !is_single_element(div) {
            return Err(no_xml("a narrative `div` is not well-formed XHTML"));
        }
        // Indented output starts it on a line of its own (its text is kept as it is).
        self.writer.write_indent().map_err(no_xml)?;
        self.event(Event::Text(BytesText::from_escaped(div)))
    }
}

/// The items of a property: its array's, or the value itself.
fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    }
}

/// A primitive's text: strings as they are, numbers as written (decimals keep their digits),
/// booleans as `true`/`false`.
fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Adds an attribute; a value with a character XML 1.0 cannot carry (a control character
/// other than tab, line feed and carriage return) has no XML form.
fn push_attribute(start: &mut BytesStart<'_>, key: &str, value: &str) -> Result<()> {
    if value.chars().any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')) {
        return Err(no_xml(format!("`{key}` holds a character XML 1.0 cannot carry")));
    }
    start.push_attribute(Attribute {
        key: QName(key.as_bytes()),
        value: Cow::Owned(escape_attribute(value).into_bytes()),
    });
    Ok(())
}

/// Whether `text` is exactly one well-formed XML element (no declaration, DTD, or text around
/// it), so writing it as it is cannot add or close elements of the document around it.
fn is_single_element(text: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut roots = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return depth == 0 && roots == 1,
            Ok(Event::Decl(_) | Event::DocType(_) | Event::PI(_)) | Err(_) => return false,
            Ok(Event::Text(t)) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => return false,
            Ok(Event::GeneralRef(_) | Event::CData(_)) if depth == 0 => return false,
            Ok(_) => {}
        }
    }
}
