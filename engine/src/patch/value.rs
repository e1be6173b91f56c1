//! The values FHIRPath Patch writes: a `value[x]`, a `resource` or nested `part`s read from
//! the patch, named and shaped by the R4 definitions (a choice gets its type suffix, a
//! repeating child becomes a list), and put into the resource with the `_name` siblings of
//! primitives kept in step.

use serde_json::{Map, Value};

use super::location::{self, DefContext};
use crate::error::{Error, Result};

/// A new value: a `value[x]` (its JSON, its `_value[x]` sibling, the type suffix `Date` of
/// `valueDate`) or the nested parts of an anonymous element.
#[derive(Debug, Clone)]
pub(super) enum NewValue {
    Typed { suffix: String, value: Value, ext: Option<Value> },
    Parts(Vec<Value>),
}

/// The `value[x]` of a parameter or part: its type suffix and value.
pub(super) fn typed_value(object: &Map<String, Value>) -> Option<(&str, &Value)> {
    object.iter().find_map(|(k, v)| Some((k.strip_prefix("value").filter(|s| !s.is_empty())?, v)))
}

/// The value a `value` part (or a part of an anonymous value) holds; `None` when it has none.
pub(super) fn new_value(part: &Value) -> Option<NewValue> {
    let object = part.as_object()?;
    if let Some((suffix, value)) = typed_value(object) {
        let ext = object.get(&format!("_value{suffix}")).cloned();
        return Some(NewValue::Typed { suffix: suffix.to_owned(), value: value.clone(), ext });
    }
    if let Some((key, ext)) = object.iter().find(|(k, _)| k.starts_with("_value")) {
        return Some(NewValue::Typed {
            suffix: key["_value".len()..].to_owned(),
            value: Value::Null,
            ext: Some(ext.clone()),
        });
    }
    if let Some(resource) = object.get("resource") {
        return Some(NewValue::Typed { suffix: String::new(), value: resource.clone(), ext: None });
    }
    object.get("part").and_then(Value::as_array).map(|parts| NewValue::Parts(parts.clone()))
}

/// The JSON name, definition context and repetition of the child `name` of an element:
/// `deceased` with a `valueBoolean` is `deceasedBoolean`.
pub(super) fn child_definition(
    parent: &DefContext,
    name: &str,
    value: &NewValue,
) -> Result<(String, DefContext, bool)> {
    let ctx = parent.child(name);
    if let Some(m) = ctx.element() {
        return Ok((name.to_owned(), ctx, m.element.is_repeating()));
    }
    let choice = parent.child(&format!("{name}[x]"));
    if let Some(m) = choice.element() {
        let NewValue::Typed { suffix, .. } = value else {
            return Err(Error::unprocessable(format!("the choice element `{name}` needs a typed `value[x]`")));
        };
        let key = format!("{name}{suffix}");
        return Ok((key.clone(), parent.child(&key), m.element.is_repeating()));
    }
    if parent.is_known() {
        let at = parent.base.as_deref().unwrap_or_default();
        let at = if parent.path.is_empty() { at.to_owned() } else { format!("{at}.{}", parent.path) };
        return Err(Error::unprocessable(format!("`{at}` has no element `{name}`")));
    }
    Ok((name.to_owned(), ctx, false))
}

/// The JSON (and `_name` sibling) of a new value whose definition context is `ctx`.
pub(super) fn build(ctx: &DefContext, value: &NewValue) -> Result<(Value, Option<Value>)> {
    let parts = match value {
        NewValue::Typed { value, ext, .. } => return Ok((value.clone(), ext.clone())),
        NewValue::Parts(parts) => parts,
    };
    let mut map = Map::new();
    for part in parts {
        let Some(name) = part.get("name").and_then(Value::as_str) else {
            return Err(Error::bad_request("every part of an anonymous `value` needs a `name`"));
        };
        let child = new_value(part).ok_or_else(|| Error::bad_request(format!("part `{name}` has no value")))?;
        let (key, child_ctx, repeating) = child_definition(ctx, name, &child)?;
        let (json, ext) = build(&child_ctx, &child)?;
        set_child(&mut map, &key, repeating, json, ext);
    }
    Ok((Value::Object(map), None))
}

/// Sets the child `key` of an object: appended when it repeats (or already is a list),
/// replaced in place otherwise.
pub(super) fn set_child(map: &mut Map<String, Value>, key: &str, repeating: bool, json: Value, ext: Option<Value>) {
    if repeating || matches!(map.get(key), Some(Value::Array(_))) {
        if let Value::Array(items) = map.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
            items.push(json);
            let i = items.len().saturating_sub(1);
            set_list_ext(map, key, i, ext, true);
        }
        return;
    }
    let position = map.keys().position(|k| k == key).unwrap_or(map.len());
    map.shift_remove(key);
    map.shift_remove(&format!("_{key}"));
    put(map, position, key, json, ext);
}

/// Inserts `key` (and its `_key` sibling) into `map` at `position`, leaving out null values.
pub(super) fn put(map: &mut Map<String, Value>, position: usize, key: &str, json: Value, ext: Option<Value>) {
    let mut position = position.min(map.len());
    if !json.is_null() {
        map.shift_insert(position, key.to_owned(), json);
        position += 1;
    }
    if let Some(ext) = ext {
        map.shift_insert(position.min(map.len()), format!("_{key}"), ext);
    }
}

/// Sets (or, with `insert`, inserts) the `_key[i]` sibling of a list item.
pub(super) fn set_list_ext(map: &mut Map<String, Value>, key: &str, i: usize, ext: Option<Value>, insert: bool) {
    let ext_key = format!("_{key}");
    let len = map.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    if ext.is_none() && !map.contains_key(&ext_key) {
        return;
    }
    let entry = map.entry(ext_key).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(exts) = entry {
        let before = if insert { len.saturating_sub(1) } else { len };
        exts.resize(before, Value::Null);
        let ext = ext.unwrap_or(Value::Null);
        if insert {
            exts.insert(i.min(exts.len()), ext)
        } else if let Some(slot) = exts.get_mut(i) {
            *slot = ext
        }
    }
    location::tidy_list(map, key);
}
