//! Content rules `$validate` (and profiled writes) report but plain writes do not enforce, so
//! that data accepted before stays accepted:
//! - an Attachment whose stated `size` is not the size of its inline `data`
//!   (<https://hl7.org/fhir/R4/datatypes.html#Attachment>: the number of bytes of the data,
//!   before base64 encoding; a definition, not an invariant);
//! - a narrative with no non-whitespace content (txt-2), which several R4 examples break;
//! - a Bundle with two links of the same relation (two `self` links: which one is it?), as the
//!   reference validator has it;
//! - a document or message Bundle's relative references that R4 resolves outside it
//!   ([`crate::validation::unresolved_in_document`]).

use serde_json::Value;

use super::walk::Walker;
use crate::outcome::IssueType;

impl Walker<'_, '_> {
    /// Checks every Attachment-shaped value (`data` and `size`) and every narrative (`status`
    /// and `div`) under `value`, at `path`.
    pub(crate) fn content(&mut self, value: &Value, path: &str, depth: usize) {
        if depth >= crate::validation::MAX_DEPTH {
            return;
        }
        match value {
            Value::Object(object) => {
                if let (Some(Value::String(data)), Some(size)) =
                    (object.get("data"), object.get("size").and_then(Value::as_u64))
                {
                    if object.get("resourceType").is_none() {
                        let actual = decoded_len(data);
                        if actual != size {
                            let message = format!(
                                "the stated attachment size {size} is not the size of its data ({actual} bytes)"
                            );
                            self.issue(format!("{path}.size"), IssueType::Value, message);
                        }
                    }
                }
                if let (Some(Value::String(div)), Some(_)) = (object.get("div"), object.get("status")) {
                    if !crate::validation::narrative_has_content(div) {
                        let message = "txt-2: the narrative SHALL have some non-whitespace content".to_owned();
                        self.issue(format!("{path}.div"), IssueType::Invariant, message);
                    }
                }
                if object.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
                    self.bundle_links(object, path);
                    if depth == 0 {
                        let defs = crate::definitions::Definitions::r4();
                        for issue in crate::validation::unresolved_in_document(defs, object) {
                            self.push(issue);
                        }
                    }
                }
                for (key, child) in object {
                    self.content(child, &format!("{path}.{key}"), depth + 1);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.content(item, &format!("{path}[{i}]"), depth + 1);
                }
            }
            _ => {}
        }
    }
}

impl Walker<'_, '_> {
    /// Each link relation of a Bundle (`self`, `next`...) names one link: a second one with the
    /// same relation leaves a reader unable to tell which to follow.
    fn bundle_links(&mut self, bundle: &serde_json::Map<String, Value>, path: &str) {
        let links = bundle.get("link").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (i, link) in links.iter().enumerate() {
            let Some(relation) = link.get("relation").and_then(Value::as_str) else { continue };
            if links[..i].iter().any(|l| l.get("relation").and_then(Value::as_str) == Some(relation)) {
                let message =
                    format!("the link relation `{}` can only occur once", crate::validation::shorten(relation));
                self.issue(format!("{path}.link[{i}]"), IssueType::Invalid, message);
            }
        }
    }
}

/// The number of bytes base64 `data` decodes to (whitespace ignored).
fn decoded_len(data: &str) -> u64 {
    let symbols = data.bytes().filter(|b| !b.is_ascii_whitespace()).count() as u64;
    let padding = data.bytes().rev().filter(|b| !b.is_ascii_whitespace()).take_while(|&b| b == b'=').count() as u64;
    (symbols / 4) * 3 + ((symbols % 4) * 3 / 4) - padding.min(2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decoded_lengths() {
        assert_eq!(super::decoded_len("aGVscCBpJ20gYSBidWc="), 14);
        assert_eq!(super::decoded_len("YQ=="), 1);
        assert_eq!(super::decoded_len("YWI="), 2);
        assert_eq!(super::decoded_len("YWJj"), 3);
        assert_eq!(super::decoded_len("YW\nJj"), 3);
    }
}
