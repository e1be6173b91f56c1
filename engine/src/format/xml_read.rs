//! FHIR XML → FHIR JSON (<https://hl7.org/fhir/R4/xml.html>), driven by the R4 definitions
//! ([`super::xml_shape`]), read with quick-xml's streaming `Reader`.
//!
//! Hostile input is refused with a 400, never expanded: a DTD (`<!DOCTYPE`, so no entity
//! declarations: no billion laughs, no external entities), an entity other than XML's five and
//! character references, nesting deeper than the JSON path allows, more attributes on an element
//! than FHIR uses (so no attribute is compared with every other). Everything else is linear in
//! the input, whose size the front end limits.
//!
//! Read [`Leniency::Lenient`]ly (a client reading what other servers and suites wrote: the
//! conformance runner), the same rules hold but for what a reader can pass over without
//! guessing: an element R4 does not define is kept as JSON (its `value` as a string, else an
//! object of its attributes and children) so the reader can name it, an attribute R4 does not
//! define and text between elements are skipped, a primitive value of the wrong form stays a
//! string, and the root may lack the FHIR namespace. DTDs and undefined entities are refused
//! all the same.

use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Number, Value};

use super::xml_shape::{FHIR_NS, MAX_ATTRIBUTES, MAX_DEPTH, Prop, Shape, prop, resource_node};
use crate::definitions::{Definitions, NodeId};
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType};

/// How much a reader forgives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leniency {
    /// Exactly R4: anything else is a 400.
    Strict,
    /// What R4 does not define is kept or passed over (see the module documentation).
    Lenient,
}

/// Reads a FHIR XML document (one resource) into its FHIR JSON form.
pub(crate) fn from_xml(bytes: &[u8], leniency: Leniency) -> Result<Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("the body is not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = false;
    config.check_end_names = true;
    let lenient = leniency == Leniency::Lenient;
    let mut parser = Parser { reader, input: text, defs: Definitions::r4(), before: 0, lenient };
    parser.document().map(Value::Object)
}

/// A 400 about the XML's structure.
fn invalid(message: impl Into<String>) -> Error {
    Error::BadRequest(vec![Issue::error(IssueType::Structure, message)])
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    input: &'a str,
    defs: &'static Definitions,
    /// Where the last event read started.
    before: usize,
    lenient: bool,
}

/// A primitive's value and its `id`/extensions (the JSON `_name` object).
type PrimitiveItem = (Option<Value>, Option<Map<String, Value>>);

/// What one property has gathered, in document order.
enum Gathered {
    /// Complex values, resources, narratives.
    Items(Vec<Value>),
    /// Primitives: each one's value and its `id`/extensions (the JSON `_name` object).
    Primitives(Vec<PrimitiveItem>),
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<Event<'a>> {
        self.before = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        let event = self.reader.read_event().map_err(|e| {
            invalid(format!("the body is not well-formed XML (at byte {}): {e}", self.reader.error_position()))
        })?;
        match event {
            Event::DocType(_) => Err(invalid("a DTD (`<!DOCTYPE`) is not accepted in FHIR XML")),
            Event::GeneralRef(r) if r.is_char_ref() || is_predefined(&r) => Ok(Event::GeneralRef(r)),
            Event::GeneralRef(r) => Err(invalid(format!(
                "the entity `&{};` is not defined: FHIR XML has no DTD",
                String::from_utf8_lossy(&r)
            ))),
            event => Ok(event),
        }
    }

    /// The document: an optional declaration, comments, one resource.
    fn document(&mut self) -> Result<Map<String, Value>> {
        let mut root = None;
        loop {
            match self.next()? {
                Event::Start(e) if root.is_none() => root = Some(self.resource(&e, false, 0)?),
                Event::Empty(e) if root.is_none() => root = Some(self.resource(&e, true, 0)?),
                Event::Eof => return root.ok_or_else(|| invalid("the body holds no FHIR resource")),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                _ => return Err(invalid("the body must be one FHIR resource element")),
            }
        }
    }

    /// A resource element: its name is its type.
    fn resource(&mut self, start: &BytesStart<'_>, empty: bool, depth: usize) -> Result<Map<String, Value>> {
        let name = local_name(start)?;
        let node = resource_node(self.defs, &name)?;
        let namespace = attribute(start, "xmlns")?;
        let unnamed_root = depth == 0 && namespace.is_none() && !self.lenient;
        if namespace.as_deref().is_some_and(|ns| ns != FHIR_NS) || unnamed_root {
            return Err(invalid(format!("`{name}` is not in the FHIR namespace `{FHIR_NS}`")));
        }
        let mut out = Map::new();
        out.insert("resourceType".into(), Value::String(name.clone()));
        self.object(&name, node, start, empty, depth, &mut out, None)?;
        Ok(out)
    }

    /// The attributes and child elements of an element of `node` into `out`; `value`, when
    /// given, receives the `value` attribute (primitives).
    #[expect(clippy::too_many_arguments, reason = "one recursive step with its context")]
    fn object(
        &mut self,
        name: &str,
        node: NodeId,
        start: &BytesStart<'_>,
        empty: bool,
        depth: usize,
        out: &mut Map<String, Value>,
        mut value: Option<&mut Option<String>>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the XML is nested deeper than {MAX_DEPTH} levels")));
        }
        for (i, attr) in start.attributes().with_checks(false).enumerate() {
            let attr = attr.map_err(|e| invalid(format!("bad attribute on `{name}`: {e}")))?;
            if i >= MAX_ATTRIBUTES {
                return Err(invalid(format!("`{name}` has more attributes than FHIR XML uses")));
            }
            let key = std::str::from_utf8(attr.key.as_ref()).unwrap_or_default();
            // Namespace declarations, and the schema hints (`xsi:schemaLocation`) documents carry.
            if key == "xmlns" || key.starts_with("xmlns:") || key.starts_with("xsi:") {
                continue;
            }
            let text = unescape(&attr, name)?;
            match (key, value.as_deref_mut()) {
                ("value", Some(slot)) if slot.is_none() => *slot = Some(text),
                _ if prop(self.defs, node, key).is_some_and(|p| p.shape == Shape::Attribute)
                    && !out.contains_key(key) =>
                {
                    out.insert(key.to_owned(), Value::String(text));
                }
                _ if self.lenient => {}
                _ => return Err(invalid(format!("`{name}` has an unexpected attribute `{key}`"))),
            }
        }
        if empty {
            return Ok(());
        }
        let mut gathered: Vec<(String, Prop, Gathered)> = Vec::new();
        let mut unknown: Vec<(String, Vec<Value>)> = Vec::new();
        loop {
            let (child, empty) = match self.next()? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => break,
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => return Err(invalid(format!("the document ends inside `{name}`"))),
                _ if self.lenient => continue,
                _ => return Err(invalid(format!("`{name}` has text content: FHIR XML puts values in `value`"))),
            };
            if self.lenient {
                let key = local_name(&child)?;
                if prop(self.defs, node, &key).is_none_or(|p| p.shape == Shape::Attribute) {
                    let value = self.unknown(&key, &child, empty, depth + 1)?;
                    push_named(&mut unknown, key, value);
                    continue;
                }
            }
            self.child(name, node, &child, empty, depth + 1, &mut gathered)?;
        }
        for (key, p, items) in gathered {
            into_json(out, &key, p, items)?;
        }
        insert_named(out, unknown);
        Ok(())
    }

    /// An element R4 does not define, read leniently: its `value` as a string, else an object
    /// of its other attributes and child elements (text is passed over).
    fn unknown(&mut self, name: &str, start: &BytesStart<'_>, empty: bool, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the XML is nested deeper than {MAX_DEPTH} levels")));
        }
        let mut value = None;
        let mut object = Map::new();
        for attr in start.attributes().with_checks(false).take(MAX_ATTRIBUTES) {
            let attr = attr.map_err(|e| invalid(format!("bad attribute on `{name}`: {e}")))?;
            let key = std::str::from_utf8(attr.key.as_ref()).unwrap_or_default();
            if key.starts_with("xmlns") {
                continue;
            }
            let text = unescape(&attr, name)?;
            if key == "value" {
                value = Some(text);
            } else {
                object.insert(key.to_owned(), Value::String(text));
            }
        }
        let mut children: Vec<(String, Vec<Value>)> = Vec::new();
        if !empty {
            loop {
                let (child, empty) = match self.next()? {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    Event::End(_) => break,
                    Event::Eof => return Err(invalid(format!("the document ends inside `{name}`"))),
                    _ => continue,
                };
                let key = local_name(&child)?;
                let item = self.unknown(&key, &child, empty, depth + 1)?;
                push_named(&mut children, key, item);
            }
        }
        if let Some(value) = value {
            return Ok(Value::String(value));
        }
        insert_named(&mut object, children);
        Ok(Value::Object(object))
    }

    /// One child element of an element of `node`.
    fn child(
        &mut self,
        parent: &str,
        node: NodeId,
        start: &BytesStart<'_>,
        empty: bool,
        depth: usize,
        gathered: &mut Vec<(String, Prop, Gathered)>,
    ) -> Result<()> {
        let key = local_name(start)?;
        let p = prop(self.defs, node, &key)
            .filter(|p| p.shape != Shape::Attribute)
            .ok_or_else(|| invalid(format!("`{key}` is not an element of `{parent}`")))?;
        let index = match gathered.iter().position(|(k, _, _)| *k == key) {
            Some(_) if !p.repeating => return Err(invalid(format!("`{key}` may appear only once in `{parent}`"))),
            Some(i) => i,
            None => {
                let empty_list = match p.shape {
                    Shape::Primitive(_) => Gathered::Primitives(Vec::new()),
                    _ => Gathered::Items(Vec::new()),
                };
                gathered.push((key.clone(), p, empty_list));
                gathered.len() - 1
            }
        };
        let item = match p.shape {
            Shape::Primitive(code) => {
                let mut text = None;
                let mut element = Map::new();
                let element_node =
                    self.defs.root_node("Element").ok_or_else(|| invalid("the definitions lack `Element`"))?;
                self.object(&key, element_node, start, empty, depth, &mut element, Some(&mut text))?;
                let value = match text {
                    // Leniently, a value of the wrong form stays the string it is.
                    Some(t) if self.lenient => Some(primitive_json(code, &key, t.clone()).unwrap_or(Value::String(t))),
                    Some(t) => Some(primitive_json(code, &key, t)?),
                    None => None,
                };
                if value.is_none() && element.is_empty() {
                    return Err(invalid(format!("`{key}` has neither a `value` nor extensions")));
                }
                (value, (!element.is_empty()).then_some(element))
            }
            shape => {
                let item = match shape {
                    Shape::Xhtml => Value::String(self.xhtml(start, empty)?),
                    Shape::Resource => Value::Object(self.wrapped_resource(&key, start, empty, depth)?),
                    Shape::Complex(child_node) => {
                        let mut object = Map::new();
                        self.object(&key, child_node, start, empty, depth, &mut object, None)?;
                        Value::Object(object)
                    }
                    Shape::Primitive(_) | Shape::Attribute => Value::Null,
                };
                if let Gathered::Items(list) = &mut gathered[index].2 {
                    list.push(item);
                }
                return Ok(());
            }
        };
        if let Gathered::Primitives(list) = &mut gathered[index].2 {
            list.push(item);
        }
        Ok(())
    }

    /// `<contained><Patient>…</Patient></contained>`: the one resource inside the wrapper.
    fn wrapped_resource(
        &mut self,
        key: &str,
        start: &BytesStart<'_>,
        empty: bool,
        depth: usize,
    ) -> Result<Map<String, Value>> {
        if start.attributes().with_checks(false).any(|a| a.is_ok_and(|a| !a.key.as_ref().starts_with(b"xmlns"))) {
            return Err(invalid(format!("`{key}` wraps a resource and has no attributes")));
        }
        let mut resource = None;
        if !empty {
            loop {
                match self.next()? {
                    Event::Start(e) if resource.is_none() => resource = Some(self.resource(&e, false, depth + 1)?),
                    Event::Empty(e) if resource.is_none() => resource = Some(self.resource(&e, true, depth + 1)?),
                    Event::End(_) => break,
                    Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                    Event::Comment(_) | Event::PI(_) => {}
                    _ => return Err(invalid(format!("`{key}` must hold exactly one resource"))),
                }
            }
        }
        resource.ok_or_else(|| invalid(format!("`{key}` must hold exactly one resource")))
    }

    /// The narrative `div`, as the XHTML text it is written with (no entity expanded, nothing
    /// re-serialised), read without recursion.
    fn xhtml(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<String> {
        let from = self.before;
        if local_name(start)? != "div" {
            return Err(invalid("the narrative must be an XHTML `div`"));
        }
        if !empty {
            let mut depth = 1usize;
            while depth > 0 {
                match self.next()? {
                    Event::Start(_) => depth += 1,
                    Event::End(_) => depth -= 1,
                    Event::Eof => return Err(invalid("the document ends inside the narrative")),
                    Event::Decl(_) => return Err(invalid("an XML declaration inside the narrative")),
                    _ => {}
                }
            }
        }
        let to = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        self.input.get(from..to).map(str::to_owned).ok_or_else(|| invalid("the narrative cannot be read"))
    }
}

/// Adds `value` to the values gathered under `key`.
fn push_named(list: &mut Vec<(String, Vec<Value>)>, key: String, value: Value) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) => values.push(value),
        None => list.push((key, vec![value])),
    }
}

/// Adds elements R4 does not define to `out`: one value as it is, several as an array; never
/// over a property already read.
fn insert_named(out: &mut Map<String, Value>, list: Vec<(String, Vec<Value>)>) {
    for (key, mut values) in list {
        let value = if values.len() == 1 { values.swap_remove(0) } else { Value::Array(values) };
        out.entry(key).or_insert(value);
    }
}

/// Adds what one property gathered to `out`: `key` (an array when the element repeats, with
/// `null` where only extensions are) and for primitives with an `id` or extensions, `_key`.
fn into_json(out: &mut Map<String, Value>, key: &str, p: Prop, gathered: Gathered) -> Result<()> {
    let shaped = |mut list: Vec<Value>| if p.repeating { Value::Array(list) } else { list.swap_remove(0) };
    match gathered {
        Gathered::Items(list) => {
            out.insert(key.to_owned(), shaped(list));
        }
        Gathered::Primitives(list) => {
            let (values, elements): (Vec<_>, Vec<_>) = list.into_iter().unzip();
            if values.iter().any(Option::is_some) {
                out.insert(key.to_owned(), shaped(values.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()));
            }
            if elements.iter().any(Option::is_some) {
                let elements = elements.into_iter().map(|e| e.map_or(Value::Null, Value::Object)).collect();
                out.insert(format!("_{key}"), shaped(elements));
            }
        }
    }
    Ok(())
}

/// A primitive's `value` in its JSON form: booleans and numbers as JSON literals (a decimal
/// keeps its digits exactly), everything else a string.
fn primitive_json(code: &str, key: &str, text: String) -> Result<Value> {
    let bad = |what: &str| invalid(format!("`{key}` has the value `{text}`, which is not {what}"));
    match code {
        "boolean" => match text.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad("a boolean")),
        },
        "integer" | "positiveInt" | "unsignedInt" => {
            let digits = text.strip_prefix('-').unwrap_or(&text);
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            match text.parse::<i64>() {
                Ok(n) if canonical => Ok(Value::Number(n.into())),
                _ => Err(bad("an integer")),
            }
        }
        "decimal" => {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b)) {
                return Err(bad("a decimal"));
            }
            serde_json::from_str::<Number>(&text).map(Value::Number).map_err(|_| bad("a decimal"))
        }
        _ => Ok(Value::String(text)),
    }
}

/// An element's name without a namespace prefix.
fn local_name(start: &BytesStart<'_>) -> Result<String> {
    std::str::from_utf8(start.local_name().as_ref())
        .map(str::to_owned)
        .map_err(|_| invalid("an element name is not UTF-8"))
}

/// The unescaped value of attribute `key`, if the element has it.
fn attribute(start: &BytesStart<'_>, key: &str) -> Result<Option<String>> {
    for attr in start.attributes().with_checks(false).take(MAX_ATTRIBUTES + 1) {
        let attr = attr.map_err(|e| invalid(format!("bad attribute: {e}")))?;
        if attr.key.as_ref() == key.as_bytes() {
            return unescape(&attr, key).map(Some);
        }
    }
    Ok(None)
}

fn unescape(attr: &Attribute<'_>, element: &str) -> Result<String> {
    attr.unescape_value().map(std::borrow::Cow::into_owned).map_err(|e| {
        invalid(format!(
            "an attribute of `{element}` has an undefined entity or a bad character reference (FHIR XML has no DTD): {e}"
        ))
    })
}

fn is_predefined(name: &[u8]) -> bool {
    matches!(name, b"lt" | b"gt" | b"amp" | b"apos" | b"quot")
}
