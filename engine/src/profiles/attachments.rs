//! Attachments whose stated `size` is not the size of their inline `data`
//! (<https://hl7.org/fhir/R4/datatypes.html#Attachment>: `size` is the number of bytes of the
//! data, before base64 encoding). Checked by `$validate` and where profiles apply, not on every
//! write: R4 states it as a definition, not as an invariant.

use serde_json::Value;

use super::walk::Walker;
use crate::outcome::IssueType;

impl Walker<'_, '_> {
    /// Checks every Attachment-shaped value (`data` and `size`) under `value`, at `path`.
    pub(crate) fn attachments(&mut self, value: &Value, path: &str, depth: usize) {
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
                for (key, child) in object {
                    self.attachments(child, &format!("{path}.{key}"), depth + 1);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.attachments(item, &format!("{path}[{i}]"), depth + 1);
                }
            }
            _ => {}
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
