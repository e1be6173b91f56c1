//! The rules R4 sets for narrative XHTML (<https://hl7.org/fhir/R4/narrative.html#xhtml> and the
//! invariants txt-1 and txt-2): a `div` root in the XHTML namespace, only the basic HTML
//! formatting elements and attributes (no scripts, forms, frames, objects, `head`/`body`,
//! external stylesheets or event attributes such as `onclick`), hyperlinks only to schemes a
//! reader can follow (never `javascript:`). Whether it has some non-whitespace content (txt-2)
//! is [`has_content`], which `$validate` reports and writes do not enforce (R4 examples break it).
//!
//! These are what keeps a stored narrative from carrying script to whoever displays it, so a
//! write breaking them is refused. The element and attribute lists are those of the reference
//! validator, which follows the HTML 4.0 chapters txt-1 names.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The XHTML namespace the narrative's `div` must declare.
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// How deep elements may nest in a narrative.
const MAX_DEPTH: usize = 256;

/// Elements txt-1 allows (HTML 4.0 chapters 7–11 and 15, `a`, `img`).
const ELEMENTS: &[&str] = &[
    "p",
    "br",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "b",
    "em",
    "i",
    "strong",
    "small",
    "big",
    "tt",
    "dfn",
    "q",
    "var",
    "abbr",
    "acronym",
    "cite",
    "blockquote",
    "hr",
    "address",
    "bdo",
    "kbd",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "table",
    "caption",
    "colgroup",
    "col",
    "thead",
    "tr",
    "tfoot",
    "tbody",
    "th",
    "td",
    "code",
    "samp",
    "img",
    "map",
    "area",
];

/// Attributes allowed on every element.
const ATTRIBUTES: &[&str] = &[
    "title",
    "style",
    "class",
    "id",
    "lang",
    "xml:lang",
    "dir",
    "accesskey",
    "tabindex",
    "span",
    "width",
    "align",
    "valign",
    "char",
    "charoff",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
];

/// Attributes allowed on one element (`element.attribute`).
const ELEMENT_ATTRIBUTES: &[&str] = &[
    "a.href",
    "a.name",
    "a.type",
    "a.rel",
    "a.rev",
    "a.hreflang",
    "a.shape",
    "a.coords",
    "a.charset",
    "img.src",
    "img.border",
    "img.alt",
    "img.longdesc",
    "img.height",
    "img.usemap",
    "img.ismap",
    "map.name",
    "area.shape",
    "area.coords",
    "area.href",
    "area.nohref",
    "area.alt",
    "blockquote.cite",
    "q.cite",
    "table.summary",
    "table.border",
    "table.frame",
    "table.rules",
    "table.cellspacing",
    "table.cellpadding",
    "pre.space",
    "pre.xml:space",
    "td.nowrap",
    "ol.start",
    "ol.type",
    "ul.type",
    "li.value",
];

/// URL schemes a narrative may link to (`a`/`area` `href`); images may also be `data:`.
const LINK_SCHEMES: &[&str] = &["http", "https", "ftp", "mailto", "tel"];

/// Checks a narrative `div`; the error names the first rule broken.
pub(crate) fn check(text: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| format!("the narrative is not well-formed XHTML: {e}"))?;
        let (start, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err("the narrative has text outside its `div`".to_owned());
                }
                continue;
            }
            Event::DocType(_) => return Err("a DTD (`<!DOCTYPE`) is not allowed in a narrative".to_owned()),
            Event::Eof => break,
            Event::CData(_) | Event::GeneralRef(_) | Event::Decl(_) | Event::Comment(_) | Event::PI(_) => continue,
        };
        if depth == 0 {
            if root_seen {
                return Err("the narrative must be a single `div` element".to_owned());
            }
            root_seen = true;
            root(&start)?;
        }
        let name = element_name(&start)?;
        attributes(&start, &name, depth == 0)?;
        if !empty {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(format!("the narrative nests deeper than {MAX_DEPTH} elements"));
            }
        }
    }
    if !root_seen {
        return Err("the narrative must be a `div` element".to_owned());
    }
    if depth > 0 {
        return Err("the narrative ends inside an element".to_owned());
    }
    Ok(())
}

/// Whether a narrative has some non-whitespace text (or an image): txt-2.
pub(crate) fn has_content(text: &str) -> bool {
    let mut reader = Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(Event::Text(t)) if !t.iter().all(u8::is_ascii_whitespace) => return true,
            Ok(Event::CData(t)) if !t.iter().all(u8::is_ascii_whitespace) => return true,
            Ok(Event::GeneralRef(_)) => return true,
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"img" => return true,
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// The root: a `div` in the XHTML namespace.
fn root(start: &BytesStart<'_>) -> Result<(), String> {
    if start.local_name().as_ref() != b"div" {
        return Err("the narrative's root element must be `div`".to_owned());
    }
    let declares = start
        .attributes()
        .with_checks(false)
        .flatten()
        .any(|a| a.key.as_ref().starts_with(b"xmlns") && a.value.as_ref() == XHTML_NS.as_bytes());
    if declares { Ok(()) } else { Err(format!("the narrative's `div` must be in the XHTML namespace `{XHTML_NS}`")) }
}

/// An element's local name, if txt-1 allows it.
fn element_name(start: &BytesStart<'_>) -> Result<String, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    if ELEMENTS.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(format!("txt-1: the element `{}` is not allowed in a narrative", super::primitive::shorten(&name)))
    }
}

/// The element's attributes: allowed by txt-1, links to followable schemes only.
fn attributes(start: &BytesStart<'_>, element: &str, is_root: bool) -> Result<(), String> {
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| format!("the narrative has a bad attribute: {e}"))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let namespace = key == "xmlns" || key.starts_with("xmlns:");
        let allowed = ATTRIBUTES.contains(&key.as_str())
            || ELEMENT_ATTRIBUTES.iter().any(|a| a.split_once('.') == Some((element, key.as_str())))
            || (namespace && (is_root || attr.value.as_ref() == XHTML_NS.as_bytes()));
        if !allowed {
            return Err(format!(
                "txt-1: the attribute `{}` is not allowed on `{element}` in a narrative",
                super::primitive::shorten(&key)
            ));
        }
        let link = matches!((element, key.as_str()), ("a" | "area", "href") | ("img", "src"));
        if link {
            let value = attr.unescape_value().map_err(|e| format!("the narrative has a bad attribute value: {e}"))?;
            if let Some(scheme) = scheme(&value) {
                let ok = LINK_SCHEMES.contains(&scheme.as_str()) || (element == "img" && scheme == "data");
                if !ok {
                    return Err(format!(
                        "the hyperlink scheme `{}` of `{}` in a narrative is not one a reader can follow",
                        super::primitive::shorten(&scheme),
                        super::primitive::shorten(&value)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The scheme of an absolute URL, lowercase, read as a browser would (whitespace and control
/// characters dropped); `None` for a relative reference or a fragment.
fn scheme(url: &str) -> Option<String> {
    let mut scheme = String::new();
    for c in url.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()) {
        match c {
            ':' if !scheme.is_empty() => return Some(scheme),
            c if c.is_ascii_alphabetic() || (!scheme.is_empty() && (c.is_ascii_digit() || "+.-".contains(c))) => {
                scheme.push(c.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    fn div(inner: &str) -> String {
        format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>")
    }

    #[test]
    fn plain_narratives_pass() {
        assert_eq!(check(&div("<p>Hello <b>you</b> <a href=\"http://x.org/a\">link</a></p>")), Ok(()));
        assert_eq!(
            check(&div("<a href=\"#frag\">x</a><a href=\"Patient/1\">p</a><img src=\"data:image/png;base64,AA\"/>")),
            Ok(())
        );
        assert_eq!(check(&div("<table><tr><td colspan=\"2\" style=\"color:red\">x</td></tr></table>")), Ok(()));
    }

    #[test]
    fn scripts_and_event_attributes_are_refused() {
        assert!(check(&div("<script>alert(1)</script>x")).is_err());
        assert!(check(&div("<p onclick=\"alert(1)\">x</p>")).is_err());
        assert!(check(&div("<iframe src=\"http://x\"/>x")).is_err());
        assert!(check(&div("<a href=\"javascript:alert(1)\">x</a>")).is_err());
        assert!(check(&div("<a href=\"java&#9;script:alert(1)\">x</a>")).is_err());
        assert!(check(&div("<a href=\" JavaScript:alert(1)\">x</a>")).is_err());
        assert!(check(&div("<img src=\"urn:uuid:1\"/>x")).is_err());
    }

    #[test]
    fn the_root_and_content_are_checked() {
        assert!(check("<div>x</div>").is_err());
        assert!(check("<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>").is_err());
        assert!(check(&div("  <p> </p> ")).is_ok() && !super::has_content(&div("  <p> </p> ")));
        assert!(super::has_content(&div("<p>x</p>")) && super::has_content(&div("<img src=\"a.png\"/>")));
        assert!(check(&format!("{}{}", div("x"), div("y"))).is_err());
        assert!(check(&div("<p>x")).is_err());
    }
}
