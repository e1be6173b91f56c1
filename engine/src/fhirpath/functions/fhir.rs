//! FHIR-specific functions (FHIR R4 §2.1.9.1): `extension(url)`, `hasValue`, `getValue`,
//! `resolve` (typed placeholders for references outside the resource), `htmlChecks`.
//! `memberOf`, `conformsTo`, `subsumes`, `subsumedBy` need services this crate has not:
//! they are unsupported.

use serde_json::Value;

use super::{Call, Output, boolean};
use crate::definitions::Definitions;
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::navigate::member;
use crate::fhirpath::value::{Item, Node};

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "extension" => extension(c),
        "hasValue" => boolean(matches!(c.focus.as_slice(), [item] if item.is_primitive() && has_value(item))),
        "getValue" => Ok(match c.focus.as_slice() {
            [item] if item.is_primitive() && has_value(item) => vec![item.clone()],
            _ => Vec::new(),
        }),
        "resolve" => Ok(c.focus.iter().filter_map(|item| resolve(c, item)).collect()),
        "htmlChecks" | "htmlchecks" => boolean(true),
        "memberOf" | "conformsTo" | "subsumes" | "subsumedBy" | "elementDefinition" | "slice" | "checkModifiers" => {
            Err(FhirPathError::unsupported(format!("`{}()` is not supported", c.name)))
        }
        _ => return None,
    })
}

fn has_value(item: &Item<'_>) -> bool {
    match item {
        Item::Node(n) => n.value.is_some(),
        _ => true,
    }
}

fn extension<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    let Some(url) = c.string_arg(0)? else { return Ok(Vec::new()) };
    let mut extensions = Vec::new();
    for item in &c.focus {
        member(item, "extension", &mut extensions);
    }
    Ok(extensions
        .into_iter()
        .filter(|e| {
            e.node().and_then(|n| n.value).and_then(|v| v.get("url")).and_then(Value::as_str) == Some(url.as_str())
        })
        .collect())
}

/// The target of a Reference (or of a reference string): a contained resource for `#id`,
/// otherwise a placeholder typed by the reference's resource type, so `resolve() is Patient`
/// works without a store.
fn resolve<'a>(c: &Call<'_, 'a, '_>, item: &Item<'a>) -> Option<Item<'a>> {
    let reference = match item {
        Item::String(s) => s.clone(),
        Item::Node(n) => match n.value? {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("reference")?.as_str()?.to_owned(),
            _ => return None,
        },
        _ => return None,
    };
    if let Some(id) = reference.strip_prefix('#') {
        let root = c.ctx.root();
        let contained = root.node()?.value?.get("contained")?.as_array()?;
        return contained
            .iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
            .map(|r| Item::Node(Node::resource(r)));
    }
    let defs = Definitions::r4();
    let segments: Vec<&str> = reference.split('/').collect();
    let mut i = segments.len();
    while i > 0 {
        i -= 1;
        if segments[i] == "_history" {
            continue;
        }
        if let Some(t) = defs.type_def(segments[i]).filter(|_| defs.is_resource_type(segments[i])) {
            if i + 1 < segments.len() {
                let name = t.name.as_str();
                return Some(Item::Node(Node {
                    value: None,
                    ext: None,
                    fhir_type: Some(name),
                    root: Some(name),
                    path: String::new(),
                    code_system: None,
                }));
            }
        }
    }
    None
}
