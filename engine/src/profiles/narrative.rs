//! A profile's controls over a narrative, set on the element holding it (`[Type].text`) with
//! two extensions the reference validator applies to R4 profiles:
//!
//! - `narrative-source-control`: every top-level part of the `div` (each child element, and each
//!   run of text directly in it) must say where it comes from with a `class` of `boilerplate`,
//!   `generated` or `original`;
//! - `narrative-language-control`: `_no` — no language sections (child `div`s with a `lang` or
//!   `xml:lang`); `_yes` — language sections required; `_resource` — a section in the
//!   resource's own `language` required.
//!
//! Both are errors, as the reference grades them (whatever severity code the source control
//! carries). Bounded: only the root's direct children are read, and the reader stops at
//! [`MAX_PARTS`] of them.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::Value;

use super::walk::{Found, Walker};
use crate::outcome::IssueType;

pub(crate) const SOURCE_CONTROL: &str = "http://hl7.org/fhir/StructureDefinition/narrative-source-control";
pub(crate) const LANGUAGE_CONTROL: &str = "http://hl7.org/fhir/StructureDefinition/narrative-language-control";

/// How many top-level parts of a narrative are looked at.
const MAX_PARTS: usize = 10_000;

/// The classes that say where a part of a narrative comes from.
const SOURCES: &[&str] = &["boilerplate", "generated", "original"];

/// What a profile asks of a narrative.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Controls {
    /// Whether each top-level part must carry a source class.
    pub(crate) source: bool,
    /// `_no`, `_yes` or `_resource`.
    pub(crate) language: Option<String>,
}

impl Controls {
    /// The controls an element definition states.
    pub(crate) fn of(element: &Value) -> Option<Controls> {
        let extensions = element.get("extension").and_then(Value::as_array)?;
        let code = |url: &str| {
            extensions
                .iter()
                .find(|x| x["url"] == url)
                .and_then(|x| x.get("valueCode"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let controls = Controls { source: code(SOURCE_CONTROL).is_some(), language: code(LANGUAGE_CONTROL) };
        (controls != Controls::default()).then_some(controls)
    }
}

/// One top-level part of a narrative.
enum Part {
    /// A child element: its `class` and its `lang`/`xml:lang`, and its name.
    Element { name: String, class: Option<String>, lang: Option<String> },
    /// A run of non-whitespace text directly in the root.
    Text(String),
}

/// The root's direct children (`None`: not readable XHTML, which the base checks report).
fn parts(div: &str) -> Option<Vec<Part>> {
    let mut reader = Reader::from_str(div);
    let mut depth = 0usize;
    let mut out = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                if depth == 1 {
                    out.push(element(&e));
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 1 => out.push(element(&e)),
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth == 1 => {
                let text = String::from_utf8_lossy(&t).trim().to_owned();
                if !text.is_empty() {
                    out.push(Part::Text(text));
                }
            }
            Event::Eof => return Some(out),
            _ => {}
        }
        if out.len() >= MAX_PARTS {
            return Some(out);
        }
    }
}

fn element(start: &BytesStart<'_>) -> Part {
    let mut class = None;
    let mut lang = None;
    for attribute in start.attributes().flatten() {
        let value = String::from_utf8_lossy(&attribute.value).into_owned();
        match attribute.key.as_ref() {
            b"class" => class = Some(value),
            b"lang" | b"xml:lang" => lang = Some(value),
            _ => {}
        }
    }
    Part::Element { name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(), class, lang }
}

impl Walker<'_, '_> {
    /// Checks the narrative `item` (a Narrative: `status`, `div`) against `controls` of `profile`.
    pub(crate) fn narrative_controls(&mut self, profile: &str, controls: &Controls, item: &Found<'_>) {
        let Some(div) = item.value.and_then(|v| v.get("div")).and_then(Value::as_str) else { return };
        let Some(parts) = parts(div) else { return };
        let path = format!("{}.div", item.path);
        if controls.source {
            for part in &parts {
                let shown = match part {
                    Part::Text(text) => text.clone(),
                    Part::Element { class, .. }
                        if class.as_deref().is_some_and(|c| c.split_whitespace().any(|c| SOURCES.contains(&c))) =>
                    {
                        continue;
                    }
                    Part::Element { name, .. } => format!("<{name}>"),
                };
                let message = format!(
                    "the narrative part `{}` has no class saying its source (boilerplate, generated or original), \
                     which profile `{profile}` requires",
                    crate::validation::shorten(&shown)
                );
                self.issue(path.clone(), IssueType::Invariant, message);
            }
        }
        let mut sections: Vec<&str> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Element { name, lang: Some(lang), .. } if name == "div" => Some(lang.as_str()),
                _ => None,
            })
            .collect();
        sections.sort_unstable();
        sections.dedup();
        let message = match controls.language.as_deref() {
            Some("_no") if !sections.is_empty() => format!(
                "the narrative has language sections ({}), which profile `{profile}` prohibits",
                sections.join(", ")
            ),
            Some("_yes") if sections.is_empty() => {
                format!("the narrative has no language sections, which profile `{profile}` requires")
            }
            Some("_resource") => {
                let Some(language) = self.current.get("language").and_then(Value::as_str) else { return };
                if sections.contains(&language) {
                    return;
                }
                format!(
                    "profile `{profile}` requires a narrative section in the resource's language ({language}); \
                     found {}",
                    if sections.is_empty() { "none".to_owned() } else { sections.join(", ") }
                )
            }
            _ => return,
        };
        self.issue(path, IssueType::Invariant, message);
    }
}

#[cfg(test)]
mod tests {
    use super::Part;

    #[test]
    fn only_the_roots_children_are_parts() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"> text <p class="generated">a <b>b</b></p><div lang="de"/></div>"#;
        let parts = super::parts(div).unwrap_or_default();
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[0], Part::Text(t) if t == "text"));
        assert!(matches!(&parts[1], Part::Element { class: Some(c), .. } if c == "generated"));
        assert!(matches!(&parts[2], Part::Element { lang: Some(l), .. } if l == "de"));
    }
}
