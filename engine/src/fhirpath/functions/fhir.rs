//! FHIR-specific functions (FHIR R4 §2.1.9.1): `extension(url)`, `hasValue`, `getValue`,
//! `resolve` (typed placeholders for references outside the resource), `htmlChecks`; and the
//! two SQL on FHIR v2 adds for joining views: `getResourceKey()` (`Type/id` of a resource) and
//! `getReferenceKey([type])` (the same key for the target of a Reference).
//! `memberOf(url)` when the environment has value sets ([`crate::fhirpath::Env`]); `conformsTo`,
//! `subsumes`, `subsumedBy` need services this crate has not: they are unsupported.

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
        "getResourceKey" => Ok(c.focus.iter().filter_map(resource_key).collect()),
        "getReferenceKey" => reference_keys(c),
        "memberOf" if c.ctx.value_sets().is_some() => member_of(c),
        "memberOf" | "conformsTo" | "subsumes" | "subsumedBy" | "elementDefinition" | "slice" | "checkModifiers" => {
            Err(FhirPathError::unsupported(format!("`{}()` is not supported", c.name)))
        }
        _ => return None,
    })
}

/// `memberOf(url)`: whether the single code, Coding or CodeableConcept in focus (any of its
/// codings) is in the value set; empty when the focus is empty or the value set cannot be
/// expanded here.
fn member_of<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    let Some(url) = c.string_arg(0)? else { return Ok(Vec::new()) };
    let [item] = c.focus.as_slice() else { return Ok(Vec::new()) };
    let Some(expansion) = c.ctx.value_sets().and_then(|v| v.expansion(&url)) else { return Ok(Vec::new()) };
    // A Coding without a system names no code of a value set.
    let coding_in = |v: &Value| {
        let system = v.get("system").and_then(Value::as_str);
        let code = v.get("code").and_then(Value::as_str);
        system.zip(code).is_some_and(|(system, code)| expansion.contains(system, code))
    };
    let member = match item {
        Item::String(code) => expansion.contains_code(code),
        Item::Node(n) => match n.value {
            Some(Value::String(code)) => expansion.contains_code(code),
            Some(Value::Object(o)) if o.contains_key("coding") => {
                o.get("coding").and_then(Value::as_array).into_iter().flatten().any(coding_in)
            }
            Some(v @ Value::Object(_)) => coding_in(v),
            _ => return Ok(Vec::new()),
        },
        _ => return Ok(Vec::new()),
    };
    boolean(member)
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

/// `Type/id` of a resource node.
fn resource_key<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    let value = item.node()?.value?;
    let resource_type = value.get("resourceType")?.as_str()?;
    let id = value.get("id")?.as_str()?;
    Some(Item::String(format!("{resource_type}/{id}")))
}

/// `Type/id` of each Reference's target (relative or absolute, version dropped), only of type
/// `type` when given; contained (`#id`) and logical references have none.
fn reference_keys<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(0, 1)?;
    let wanted = if c.args.is_empty() { None } else { Some(c.type_arg(0)?.name) };
    let defs = Definitions::r4();
    let mut keys = Vec::new();
    for item in &c.focus {
        let Some(reference) =
            item.node().and_then(|n| n.value).and_then(|v| v.get("reference")).and_then(Value::as_str)
        else {
            continue;
        };
        let mut segments: Vec<&str> = reference.split('/').collect();
        if let [.., "_history", _] = segments.as_slice() {
            segments.truncate(segments.len() - 2);
        }
        let [.., resource_type, id] = segments.as_slice() else { continue };
        if !defs.is_resource_type(resource_type) || wanted.as_deref().is_some_and(|w| w != *resource_type) {
            continue;
        }
        keys.push(Item::String(format!("{resource_type}/{id}")));
    }
    Ok(keys)
}
