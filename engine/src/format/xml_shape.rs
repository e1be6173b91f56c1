//! What the two XML directions share: how a JSON property of a FHIR object is written in XML
//! (<https://hl7.org/fhir/R4/xml.html>), read from the loaded R4 definitions, and the bounds.
//!
//! Element order is the definitions' (snapshot) order; a choice (`value[x]`) is named by its
//! JSON name (`valueQuantity`); `Element.id` and `Extension.url` are attributes; a primitive is
//! an element with a `value` attribute whose `id` and extensions are the JSON `_name` sibling;
//! a resource inside a resource (`contained`, `Bundle.entry.resource`) is wrapped in an element
//! named for the property; the narrative `div` is XHTML, kept as it is written.

use crate::definitions::{Definitions, Kind, NodeId};
use crate::error::Error;

/// The FHIR namespace.
pub(super) const FHIR_NS: &str = "http://hl7.org/fhir";

/// Most levels of elements a document may nest, as the JSON path allows
/// ([`crate::validation::MAX_DEPTH`]).
pub(super) const MAX_DEPTH: usize = crate::validation::MAX_DEPTH;

/// Most attributes one FHIR element may carry (`id`, `url`, `value` and namespace
/// declarations); more is refused before any is looked at twice.
pub(super) const MAX_ATTRIBUTES: usize = 8;

/// How a property is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// An XML attribute (`Element.id`, `Extension.url`).
    Attribute,
    /// A primitive: `value` attribute plus `id`/extensions; the type code chooses the JSON form.
    Primitive(&'static str),
    /// The narrative's XHTML `div`.
    Xhtml,
    /// A resource wrapped in an element named for the property.
    Resource,
    /// A complex type or backbone element, with the lookup node of its children.
    Complex(NodeId),
}

/// A JSON property of an object, as the definitions describe it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prop {
    /// The element's index in snapshot order (the XML order).
    pub(super) order: usize,
    pub(super) repeating: bool,
    pub(super) shape: Shape,
}

/// The property `key` (a JSON name without `_`) of objects of `node`.
pub(super) fn prop(defs: &'static Definitions, node: NodeId, key: &str) -> Option<Prop> {
    let child = defs.node(node).children.get(key)?;
    let element = defs.element_at(child.element);
    let shape = if element.system {
        Shape::Attribute
    } else {
        match child.type_index.map(|i| defs.type_at(i)) {
            Some(t) if t.name == "xhtml" => Shape::Xhtml,
            Some(t) if t.kind == Kind::PrimitiveType => Shape::Primitive(t.name.as_str()),
            Some(t) if t.kind == Kind::Resource => Shape::Resource,
            _ => Shape::Complex(child.node?),
        }
    };
    Some(Prop { order: child.element, repeating: element.is_repeating(), shape })
}

/// The lookup node of a resource type's root, or why there is none.
pub(super) fn resource_node(defs: &'static Definitions, name: &str) -> Result<NodeId, Error> {
    if !defs.is_resource_type(name) {
        return Err(Error::bad_request(format!("`{name}` is not an R4 resource type")));
    }
    defs.root_node(name).ok_or_else(|| Error::bad_request(format!("`{name}` is not an R4 resource type")))
}

/// Escapes an attribute value: markup characters and the whitespace an XML reader would
/// normalise (so `\n` survives a round trip).
pub(super) fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}
