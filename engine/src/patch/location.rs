//! Where FHIRPath results live in the JSON: a node found by the evaluator is mapped back to its
//! location (object keys and array indexes from the resource root) by pointer identity, and the
//! R4 definitions are consulted at a location (does the element repeat, is it a choice).
//!
//! A primitive's `_name` sibling (its id and extensions) follows the value: removing, inserting or
//! moving `given[1]` does the same to `_given[1]`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::definitions::{Definitions, ElementMatch};
use crate::fhirpath::Item;

/// One step of a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// The path from the resource root to a JSON value. Locations of `_name` siblings are given as
/// the location of `name`.
pub(crate) type Location = Vec<Seg>;

/// The location of a FHIRPath result in `root`, or `None` when it is not a node of `root` (a
/// literal, a computed value, a `resolve()` placeholder).
pub(crate) fn locate(root: &Value, item: &Item<'_>) -> Option<Location> {
    let target = target(item)?;
    let mut path = Vec::new();
    if !find(root, target, &mut path) {
        return None;
    }
    Some(named(path, item))
}

/// The locations of several FHIRPath results (as [`locate`], in order), found in one walk of
/// `root`: a path selecting thousands of elements costs one pass, not one pass per element.
pub(crate) fn locate_all(root: &Value, items: &[Item<'_>]) -> Vec<Option<Location>> {
    let mut wanted: HashMap<*const Value, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(target) = target(item) {
            wanted.entry(std::ptr::from_ref(target)).or_default().push(i);
        }
    }
    let mut found: Vec<Option<Location>> = vec![None; items.len()];
    let mut left = wanted.len();
    let mut path = Vec::new();
    walk(root, &mut path, &mut |value, path| {
        if let Some(indexes) = wanted.get(&std::ptr::from_ref(value)) {
            for &i in indexes {
                if let (Some(slot), Some(item)) = (found.get_mut(i), items.get(i)) {
                    *slot = Some(named(path.to_vec(), item));
                }
            }
            left -= 1;
        }
        left > 0
    });
    found
}

/// The JSON value a FHIRPath result stands for: the value, or for a primitive with only an id
/// or extensions, its `_name` object.
fn target<'v>(item: &Item<'v>) -> Option<&'v Value> {
    let node = item.node()?;
    node.value().or(node.primitive_extension())
}

/// `path` of a primitive's `_name` object given as the location of `name`: `_given[1]` stands
/// for `given[1]`.
fn named(mut path: Location, item: &Item<'_>) -> Location {
    let bare_value = item.node().is_some_and(|node| node.value().is_none());
    for seg in path.iter_mut().rev() {
        if let Seg::Key(key) = seg {
            if bare_value {
                if let Some(bare) = key.strip_prefix('_') {
                    *key = bare.to_owned();
                }
            }
            break;
        }
    }
    path
}

/// Visits `current` and every value below it, depth first in document order, while `visit`
/// answers `true`; answers whether the walk went on to the end.
fn walk(current: &Value, path: &mut Location, visit: &mut dyn FnMut(&Value, &[Seg]) -> bool) -> bool {
    if !visit(current, path) {
        return false;
    }
    let mut descend = |seg: Seg, child: &Value| {
        path.push(seg);
        let go_on = walk(child, path, visit);
        path.pop();
        go_on
    };
    match current {
        Value::Object(map) => map.iter().all(|(k, v)| descend(Seg::Key(k.clone()), v)),
        Value::Array(items) => items.iter().enumerate().all(|(i, v)| descend(Seg::Index(i), v)),
        _ => true,
    }
}

fn find(current: &Value, target: &Value, path: &mut Location) -> bool {
    if std::ptr::eq(current, target) {
        return true;
    }
    let mut descend = |seg: Seg, child: &Value| {
        path.push(seg);
        let found = find(child, target, path);
        if !found {
            path.pop();
        }
        found
    };
    match current {
        Value::Object(map) => map.iter().any(|(k, v)| descend(Seg::Key(k.clone()), v)),
        Value::Array(items) => items.iter().enumerate().any(|(i, v)| descend(Seg::Index(i), v)),
        _ => false,
    }
}

/// The value at `location`.
pub(crate) fn get_mut<'a>(root: &'a mut Value, location: &[Seg]) -> Option<&'a mut Value> {
    location.iter().try_fold(root, |current, seg| match (current, seg) {
        (Value::Object(map), Seg::Key(k)) => map.get_mut(k.as_str()),
        (Value::Array(items), Seg::Index(i)) => items.get_mut(*i),
        _ => None,
    })
}

/// The object holding the list `location` ends in (`[.., Key(k)]` or `[.., Key(k), Index(i)]`)
/// and the list's key.
pub(crate) fn list_owner<'a>(root: &'a mut Value, list: &[Seg]) -> Option<(&'a mut Map<String, Value>, String)> {
    let (Seg::Key(key), parent) = list.split_last()? else { return None };
    match get_mut(root, parent)? {
        Value::Object(map) => Some((map, key.clone())),
        _ => None,
    }
}

/// Removes the value at `location` (and its `_name` sibling), then any object or list left empty
/// above it, the resource root excepted: FHIR JSON has no empty objects or arrays.
pub(crate) fn remove(root: &mut Value, location: &[Seg]) -> Option<Value> {
    let (last, parent) = location.split_last()?;
    let removed = match last {
        Seg::Key(key) => {
            let Value::Object(map) = get_mut(root, parent)? else { return None };
            let ext = map.shift_remove(&format!("_{key}"));
            map.shift_remove(key.as_str()).or(ext.map(|_| Value::Null))?
        }
        Seg::Index(i) => {
            let (map, key) = list_owner(root, parent)?;
            let removed = match map.get_mut(&key) {
                Some(Value::Array(items)) if *i < items.len() => items.remove(*i),
                _ => return None,
            };
            if let Some(Value::Array(exts)) = map.get_mut(&format!("_{key}")) {
                if *i < exts.len() {
                    exts.remove(*i);
                }
            }
            tidy_list(map, &key);
            removed
        }
    };
    // A list emptied above is gone already; then its owner is the one that may be empty now.
    let up = match parent.split_last() {
        Some((_, owner)) if get_mut(root, parent).is_none() => owner,
        _ => parent,
    };
    if !up.is_empty() && get_mut(root, up).is_some_and(is_empty) {
        remove(root, up);
    }
    Some(removed)
}

fn is_empty(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Drops the list `key` and its `_key` sibling when empty, and the sibling when it holds only nulls.
pub(crate) fn tidy_list(map: &mut Map<String, Value>, key: &str) {
    let ext_key = format!("_{key}");
    if matches!(map.get(&ext_key), Some(Value::Array(e)) if e.iter().all(Value::is_null)) {
        map.shift_remove(&ext_key);
    }
    if matches!(map.get(key), Some(Value::Array(items)) if items.is_empty()) {
        map.shift_remove(key);
        map.shift_remove(&ext_key);
    }
}

/// Where the definitions of the elements at a location are looked up: a type and the dotted
/// path of JSON names from it (`("Patient", "contact.name")`). `base` is `None` for JSON the
/// definitions do not describe.
#[derive(Debug, Clone)]
pub(crate) struct DefContext {
    pub(crate) base: Option<String>,
    pub(crate) path: String,
}

impl DefContext {
    /// The context of the value at `location` in `root`: a contained resource (any object with a
    /// `resourceType` below the root) starts a new one.
    pub(crate) fn at(root: &Value, location: &[Seg]) -> Self {
        let mut ctx = Self::resource(root);
        let mut current = Some(root);
        for seg in location {
            current = match seg {
                Seg::Key(k) => {
                    ctx = ctx.child(k);
                    current.and_then(|c| c.get(k.as_str()))
                }
                Seg::Index(i) => current.and_then(|c| c.get(*i)),
            };
            if let Some(nested) = current.filter(|c| c.get("resourceType").is_some()) {
                ctx = Self::resource(nested);
            }
        }
        ctx
    }

    fn resource(value: &Value) -> Self {
        let base = value.get("resourceType").and_then(Value::as_str).map(str::to_owned);
        Self { base, path: String::new() }
    }

    /// The context of the child element named `key`.
    pub(crate) fn child(&self, key: &str) -> Self {
        let path = if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) };
        Self { base: self.base.clone(), path }
    }

    /// The definition of this element; `None` at a root or where the definitions say nothing.
    pub(crate) fn element(&self) -> Option<ElementMatch<'static>> {
        Definitions::r4().element(self.base.as_deref()?, &self.path)
    }

    /// Whether the definitions describe this JSON (so an unknown element name is an error).
    pub(crate) fn is_known(&self) -> bool {
        self.base.as_deref().is_some_and(|b| Definitions::r4().type_def(b).is_some())
    }
}

/// The location of the `_name` object of the primitive at `target` (`_birthDate`, `_given[1]`),
/// created when absent: where a primitive's `id` and `extension` are added. `None` when the
/// JSON there is not shaped as FHIR JSON.
pub(crate) fn primitive_extension_object(doc: &mut Value, target: &Location) -> Option<Location> {
    match target.as_slice() {
        [parent @ .., Seg::Key(key)] => {
            let Value::Object(map) = get_mut(doc, parent)? else { return None };
            let ext_key = format!("_{key}");
            let slot = map.entry(ext_key.clone()).or_insert_with(|| Value::Object(Map::new()));
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            if !slot.is_object() {
                return None;
            }
            let mut out = parent.to_vec();
            out.push(Seg::Key(ext_key));
            Some(out)
        }
        [list @ .., Seg::Index(i)] => {
            let (map, key) = list_owner(doc, list)?;
            let len = map.get(&key).and_then(Value::as_array).map_or(0, Vec::len).max(i + 1);
            let ext_key = format!("_{key}");
            let Value::Array(exts) = map.entry(ext_key.clone()).or_insert_with(|| Value::Array(Vec::new())) else {
                return None;
            };
            exts.resize(len.max(exts.len()), Value::Null);
            let slot = exts.get_mut(*i)?;
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            if !slot.is_object() {
                return None;
            }
            let (_, owner) = list.split_last()?;
            let mut out = owner.to_vec();
            out.extend([Seg::Key(ext_key), Seg::Index(*i)]);
            Some(out)
        }
        [] => None,
    }
}
