//! Rules on the content of primitive values that `$validate` (and profiled writes) report, as
//! the reference validator grades them, but plain writes do not enforce (R4 allows the data):
//!
//! - a `string` that looks like it holds HTML tags (`<script>`): a warning, an error when the
//!   server runs with security checks ([`Conformance::security_checks`]) — shown as HTML
//!   without escaping it would be a script injection;
//! - a `markdown` with an embedded HTML tag: a warning, an error under
//!   [`Conformance::no_html_in_markdown`] (R4's markdown is CommonMark without HTML);
//! - a `uri`/`url`/`canonical` in an example domain (`example.org`, `acme.com`) when example
//!   content is refused ([`Conformance::refuse_example_extensions`]);
//! - a `Coding.system` that is not an absolute URI: R4 requires the system to be an absolute
//!   reference (<https://hl7.org/fhir/R4/datatypes.html#Coding>).
//!
//! Bounded: each value is scanned once ([`html_tag`] stops every look-ahead at the next `<`).

use serde_json::Value;

use super::Conformance;
use super::snapshot::Elem;
use super::walk::{Found, Walker};
use crate::outcome::{Issue, IssueType};

/// The domains the reference validator counts as example content.
const EXAMPLE_DOMAINS: &[&str] = &["example.org", "example.com", "acme.com"];

/// Whether `url` is in an example domain.
pub(crate) fn is_example(url: &str) -> bool {
    let host = url.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    EXAMPLE_DOMAINS.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// Where the first thing that looks like an HTML tag starts: `<` (or `</`) and a letter, then
/// no `<` before a `>`.
pub(crate) fn html_tag(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset;
        let mut j = start + 1;
        if bytes.get(j) == Some(&b'/') {
            j += 1;
        }
        if !bytes.get(j).is_some_and(u8::is_ascii_alphabetic) {
            i = start + 1;
            continue;
        }
        match bytes[j..].iter().position(|&b| b == b'<' || b == b'>') {
            Some(end) if bytes[j + end] == b'>' => return Some(start),
            Some(end) => i = j + end,
            None => return None,
        }
    }
    None
}

impl Walker<'_, '_> {
    /// The content rules on one primitive value of a core element (see the module doc).
    pub(crate) fn primitive_content(&mut self, elem: &Elem, item: &Found<'_>) {
        let Some(Value::String(text)) = item.value else { return };
        let type_name = match &item.type_name {
            Some(t) => t.as_str(),
            None if elem.types.len() == 1 => elem.types[0].code.as_str(),
            None => return,
        };
        let conformance: &Conformance = self.conformance;
        let path = || item.path.clone();
        match type_name {
            "string" if html_tag(text).is_some() => {
                let message = "the string looks like it holds HTML tags, which are not allowed here for security \
                               reasons (shown without escaping they would run)"
                    .to_owned();
                self.graded(conformance.security_checks, path(), IssueType::Value, message);
            }
            "markdown" => {
                if let Some(at) = html_tag(text) {
                    let shown: String = text[at..].chars().take(2).collect();
                    let message = format!(
                        "the markdown holds what looks like an HTML tag starting at `{shown}`; a reader escapes it \
                         or shows it as HTML — check it is meant"
                    );
                    self.graded(conformance.no_html_in_markdown, path(), IssueType::Value, message);
                }
            }
            "uri" | "url" | "canonical" if conformance.refuse_example_extensions && is_example(text) => {
                let message = format!("example URLs are not allowed here (`{}`)", crate::validation::shorten(text));
                self.issue(path(), IssueType::Value, message);
            }
            _ => {}
        }
        if elem.id == "Coding.system" && !crate::validation::is_absolute(text) {
            let message = format!(
                "Coding.system must be an absolute URI, not a local reference (`{}`)",
                crate::validation::shorten(text)
            );
            self.issue(path(), IssueType::Value, message);
        }
    }

    /// An error when `strict`, else a warning.
    fn graded(&mut self, strict: bool, path: String, code: IssueType, message: String) {
        let issue = if strict { Issue::error(code, message) } else { Issue::warning(code, message) };
        self.push(issue.at(path));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_tags_are_found() {
        assert_eq!(super::html_tag("Standard <script>x</script>"), Some(9));
        assert_eq!(super::html_tag("<resource type>\\<id>"), Some(0));
        assert_eq!(super::html_tag("a < b and c > d"), None);
        assert_eq!(super::html_tag("x </b>"), Some(2));
        assert_eq!(super::html_tag("<<<<a"), None);
        assert_eq!(super::html_tag("1 <2> 3"), None);
    }

    #[test]
    fn example_domains() {
        assert!(super::is_example("http://repository.example.org/fhir/DocumentReference/example"));
        assert!(super::is_example("https://acme.com/x"));
        assert!(!super::is_example("http://hl7.org/fhir/example.org"));
        assert!(!super::is_example("urn:uuid:1"));
    }
}
