//! A minimal XML tree (elements, attributes, text) read with quick-xml, and its serialisation
//! back to text for the XHTML narrative. Comments, processing instructions and DTDs are dropped.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{Error, Result};

/// An element: its local name (prefix dropped), its attributes by qualified name, its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Content>,
}

/// A piece of element content.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Element(Element),
    Text(String),
}

impl Element {
    /// The value of attribute `name` (qualified name as written).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The child elements, text left out.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Content::Element(e) => Some(e),
            Content::Text(_) => None,
        })
    }

    /// Writes the element as XML text; `xmlns` is set on this element when given.
    pub fn write(&self, out: &mut String, xmlns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if let Some(ns) = xmlns {
            out.push_str(" xmlns=\"");
            escape_into(out, ns, true);
            out.push('"');
        }
        for (k, v) in &self.attributes {
            if k == "xmlns" || k.starts_with("xmlns:") {
                continue;
            }
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v, true);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Content::Element(e) => e.write(out, None),
                Content::Text(t) => escape_into(out, t, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes text or an attribute value.
pub fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attribute => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

/// Parses a document and returns its root element.
pub fn parse(text: &str) -> Result<Element> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        match event {
            Event::Start(start) => stack.push(element_of(&start)?),
            Event::Empty(start) => {
                let element = element_of(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Content::Element(element)),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| Error::Xml("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Content::Element(element)),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => {
                let text = text.xml_content().map_err(|e| Error::Xml(e.to_string()))?;
                push_text(&mut stack, &text);
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| Error::Xml(e.to_string()))?;
                push_text(&mut stack, &text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| Error::Xml(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| Error::Xml(e.to_string()))?;
                        match &*name {
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "amp" => "&".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            "nbsp" => "\u{a0}".into(),
                            other => return Err(Error::Xml(format!("unknown entity `&{other};`"))),
                        }
                    }
                };
                push_text(&mut stack, &resolved);
            }
            Event::Eof => return Err(Error::Xml("no root element, or it is not closed".into())),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

fn xml_error(reader: &Reader<&[u8]>, error: quick_xml::Error) -> Error {
    Error::Xml(format!("at byte {}: {error}", reader.error_position()))
}

fn push_text(stack: &mut [Element], text: &str) {
    let Some(parent) = stack.last_mut() else { return };
    if let Some(Content::Text(previous)) = parent.children.last_mut() {
        previous.push_str(text);
    } else {
        parent.children.push(Content::Text(text.to_owned()));
    }
}

fn element_of(start: &BytesStart<'_>) -> Result<Element> {
    let local = start.local_name();
    let name = std::str::from_utf8(local.as_ref()).map_err(|e| Error::Xml(e.to_string()))?.to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| Error::Xml(e.to_string()))?;
        let key = std::str::from_utf8(attribute.key.as_ref()).map_err(|e| Error::Xml(e.to_string()))?.to_owned();
        let value = attribute.unescape_value().map_err(|e| Error::Xml(e.to_string()))?.into_owned();
        attributes.push((key, value));
    }
    Ok(Element { name, attributes, children: Vec::new() })
}
