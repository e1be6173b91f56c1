//! FHIRPath Patch (<https://hl7.org/fhir/R4/fhirpatch.html>): a `Parameters` resource whose
//! `operation` parameters add, insert, delete, replace or move elements found by FHIRPath.
//!
//! Targets are found with our evaluator and mapped back to JSON by pointer identity
//! ([`super::location`]); the R4 definitions say whether an element repeats (`add` appends to a
//! list, sets a single element) and how a choice is named (`add` of `deceased` with a
//! `valueBoolean` writes `deceasedBoolean`). Rules, as the specification gives them:
//! - `add`: `path` is one element, `name` a child of it, `value` its value (a single element
//!   already present is replaced, as HAPI does; on a primitive, `id` and `extension` go to its
//!   `_name` object);
//! - `insert`: `path` is a list, `value` goes in at `index` (0 to the list's length);
//! - `delete`: `path` is one element, or nothing (then nothing happens);
//! - `replace`: `path` is one element, `value` its new value;
//! - `move`: `path` is a list, its item at `source` moves to `destination`.
//!
//! A `value` is a `value[x]`, a `resource`, or nested `part`s (one per child element, by name)
//! for an anonymous (backbone) element such as `Patient.contact`. A malformed patch is a 400; one that
//! does not fit the resource (nothing or several elements found, index out of range) a 422.
//!
//! Paths come from the client: all of them evaluate within one [`Budget`] of work and time, and
//! a patch that exceeds it is a 422 saying so.

use serde_json::Value;

use super::bounds::Tally;
use super::location::{self, DefContext, Location, Seg};
use super::value::{NewValue, build, child_definition, new_value, put, set_child, set_list_ext, typed_value};
use crate::error::{Error, Result};
use crate::fhirpath::{self, Budget, Env, ErrorKind, Expr, FhirPathError};
use crate::outcome::{Issue, IssueType};

/// The operation kinds of FHIRPath Patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

/// One parsed `operation` parameter.
#[derive(Debug)]
struct Operation {
    kind: Kind,
    path: String,
    expr: Expr,
    name: Option<String>,
    value: Option<NewValue>,
    index: Option<usize>,
    source: Option<usize>,
    destination: Option<usize>,
}

/// Applies the FHIRPath Patch `parameters` to `resource`, returning the patched copy; `resource`
/// is never changed. Within the default [`Budget`].
#[cfg(test)]
pub(crate) fn apply(resource: &Value, parameters: &Value) -> Result<Value> {
    apply_within(resource, parameters, crate::fhirpath::Budget::DEFAULT)
}

/// Applies the patch (see `apply`), every path of the patch evaluated within `budget` together.
pub(super) fn apply_within(resource: &Value, parameters: &Value, budget: Budget) -> Result<Value> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::bad_request("a FHIRPath Patch must be a `Parameters` resource"));
    }
    let params = parameters.get("parameter").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let operations = params.iter().enumerate().map(|(i, p)| parse_operation(i, p)).collect::<Result<Vec<_>>>()?;
    let mut out = resource.clone();
    let env: Env<'static> = Env::new().with_budget(budget);
    let mut tally = Tally::new(budget.max_steps);
    for (i, op) in operations.iter().enumerate() {
        apply_operation(&mut out, op, &env, &mut tally)
            .map_err(|e| prefix(e, &format!("operation {i} ({} at `{}`)", op.kind_name(), op.path)))?;
    }
    Ok(out)
}

fn prefix(error: Error, what: &str) -> Error {
    match error {
        Error::BadRequest(mut issues) => {
            issues.iter_mut().for_each(|i| i.diagnostics = format!("{what}: {}", i.diagnostics));
            Error::BadRequest(issues)
        }
        Error::Unprocessable(mut issues) => {
            issues.iter_mut().for_each(|i| i.diagnostics = format!("{what}: {}", i.diagnostics));
            Error::Unprocessable(issues)
        }
        other => other,
    }
}

impl Operation {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Add => "add",
            Kind::Insert => "insert",
            Kind::Delete => "delete",
            Kind::Replace => "replace",
            Kind::Move => "move",
        }
    }
}

fn parse_operation(i: usize, parameter: &Value) -> Result<Operation> {
    let bad = |m: &str| Error::bad_request(format!("fhirpath patch parameter {i}: {m}"));
    if parameter.get("name").and_then(Value::as_str) != Some("operation") {
        return Err(bad("every parameter must be named `operation`"));
    }
    let parts = parameter.get("part").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let find = |name: &str| parts.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(name));
    let text = |name: &str| -> Result<Option<String>> {
        let Some(part) = find(name) else { return Ok(None) };
        let value = part.as_object().and_then(typed_value).and_then(|(_, v)| v.as_str().map(str::to_owned));
        value.map(Some).ok_or_else(|| bad(&format!("part `{name}` must hold a string or code")))
    };
    let number = |name: &str| -> Result<Option<usize>> {
        let Some(part) = find(name) else { return Ok(None) };
        let value = part.as_object().and_then(typed_value).and_then(|(_, v)| v.as_u64());
        let value = value.and_then(|v| usize::try_from(v).ok());
        value.map(Some).ok_or_else(|| bad(&format!("part `{name}` must hold a non-negative integer")))
    };
    let kind = match text("type")?.as_deref() {
        Some("add") => Kind::Add,
        Some("insert") => Kind::Insert,
        Some("delete") => Kind::Delete,
        Some("replace") => Kind::Replace,
        Some("move") => Kind::Move,
        Some(other) => return Err(bad(&format!("unknown operation type `{other}`"))),
        None => return Err(bad("missing part `type`")),
    };
    let path = text("path")?.ok_or_else(|| bad("missing part `path`"))?;
    let expr = fhirpath::parse(&path).map_err(|e| bad(&format!("path `{path}`: {e}")))?;
    let value = find("value").map(|p| new_value(p).ok_or_else(|| bad("part `value` has no value"))).transpose()?;
    let op = Operation {
        kind,
        path,
        expr,
        name: text("name")?,
        value,
        index: number("index")?,
        source: number("source")?,
        destination: number("destination")?,
    };
    let required: &[(&str, bool)] = match kind {
        Kind::Add => &[("name", op.name.is_some()), ("value", op.value.is_some())],
        Kind::Insert => &[("index", op.index.is_some()), ("value", op.value.is_some())],
        Kind::Delete => &[],
        Kind::Replace => &[("value", op.value.is_some())],
        Kind::Move => &[("source", op.source.is_some()), ("destination", op.destination.is_some())],
    };
    match required.iter().find(|(_, present)| !present) {
        Some((missing, _)) => Err(bad(&format!("`{}` needs part `{missing}`", op.kind_name()))),
        None => Ok(op),
    }
}

fn apply_operation(doc: &mut Value, op: &Operation, env: &Env<'static>, tally: &mut Tally) -> Result<()> {
    let targets = evaluate(doc, op, env)?;
    match op.kind {
        Kind::Delete => match targets.as_slice() {
            [] => Ok(()),
            [target] => location::remove(doc, target).map(drop).ok_or_else(|| gone(op)),
            _ => Err(several(op, targets.len())),
        },
        Kind::Replace => replace(doc, &single(op, targets, "replacing")?, op, tally),
        Kind::Add => add(doc, &single(op, targets, "adding")?, op, tally),
        Kind::Insert => {
            let list = list_location(doc, op, &targets, env)?;
            insert(doc, &list, op, tally)
        }
        Kind::Move => {
            let list = list_location(doc, op, &targets, env)?;
            move_item(doc, &list, op)
        }
    }
}

/// The locations of the elements `op.path` selects.
fn evaluate(doc: &Value, op: &Operation, env: &Env<'static>) -> Result<Vec<Location>> {
    let items = fhirpath::evaluate(&op.expr, doc, env).map_err(|e| path_error(op, &e))?;
    location::locate_all(doc, &items)
        .into_iter()
        .map(|found| {
            found.ok_or_else(|| {
                Error::unprocessable(format!(
                    "path `{}` selects a value that is not an element of the resource",
                    op.path
                ))
            })
        })
        .collect()
}

/// Checks a value and its primitive extension about to be put `at` levels below the root.
fn put_all(tally: &mut Tally, at: usize, json: &Value, ext: Option<&Value>) -> Result<()> {
    tally.put(at, json)?;
    ext.map_or(Ok(()), |ext| tally.put(at, ext))
}

/// A path that fails to evaluate is a 400; one exceeding the work budget a 422 (the patch is
/// well formed, this server will not do that much work for it).
fn path_error(op: &Operation, error: &FhirPathError) -> Error {
    let message = format!("path `{}`: {error}", op.path);
    match error.kind {
        ErrorKind::Budget => Error::Unprocessable(vec![Issue::error(
            IssueType::TooCostly,
            format!("{message}: the FHIRPath expression exceeds the work budget of this server"),
        )]),
        _ => Error::bad_request(message),
    }
}

fn single(op: &Operation, mut targets: Vec<Location>, doing: &str) -> Result<Location> {
    match targets.len() {
        0 => Err(Error::unprocessable(format!("no content found at `{}` when {doing}", op.path))),
        1 => Ok(targets.remove(0)),
        n => Err(several(op, n)),
    }
}

fn several(op: &Operation, n: usize) -> Error {
    Error::unprocessable(format!("path `{}` matches {n} elements; `{}` needs exactly one", op.path, op.kind_name()))
}

fn gone(op: &Operation) -> Error {
    Error::Internal(format!("the element at `{}` vanished while patching", op.path))
}

/// Sets the element at `target` to the operation's value, renaming a choice when the type
/// changes (`valueQuantity` replaced by a `valueString`).
fn replace(doc: &mut Value, target: &Location, op: &Operation, tally: &mut Tally) -> Result<()> {
    let Some(value) = &op.value else { return Err(gone(op)) };
    let ctx = DefContext::at(doc, &element_location(target));
    let (json, ext) = build(&ctx, value)?;
    put_all(tally, target.len(), &json, ext.as_ref())?;
    let key_at = target.iter().rposition(|s| matches!(s, Seg::Key(_)));
    let Some(Seg::Key(key)) = key_at.map(|i| &target[i]) else {
        return Err(Error::unprocessable(format!("path `{}` selects the whole resource", op.path)));
    };
    let key = key.clone();
    let new_key = match (ctx.element(), value) {
        (Some(m), NewValue::Typed { suffix, .. }) if m.element.is_choice() => {
            format!("{}{suffix}", m.element.name.trim_end_matches("[x]"))
        }
        _ => key.clone(),
    };
    if let [parent @ .., Seg::Key(_)] = target.as_slice() {
        let Some(Value::Object(map)) = location::get_mut(doc, parent) else { return Err(gone(op)) };
        let position = map.keys().position(|k| *k == key).unwrap_or(map.len());
        map.shift_remove(&key);
        map.shift_remove(&format!("_{key}"));
        put(map, position, &new_key, json, ext);
        return Ok(());
    }
    let [list @ .., Seg::Index(i)] = target.as_slice() else { return Err(gone(op)) };
    let Some((map, key)) = location::list_owner(doc, list) else { return Err(gone(op)) };
    if let Some(slot) = map.get_mut(&key).and_then(|v| v.get_mut(*i)) {
        *slot = json;
    }
    set_list_ext(map, &key, *i, ext, false);
    Ok(())
}

/// The location with a trailing list index dropped: where the element's definition is.
fn element_location(location: &Location) -> Location {
    let mut out = location.clone();
    if matches!(out.last(), Some(Seg::Index(_))) {
        out.pop();
    }
    out
}

/// Adds the child `op.name` to the element at `target`: appended to a list, set when single.
fn add(doc: &mut Value, target: &Location, op: &Operation, tally: &mut Tally) -> Result<()> {
    let (Some(name), Some(value)) = (&op.name, &op.value) else { return Err(gone(op)) };
    let parent_ctx = DefContext::at(doc, target);
    let (key, ctx, repeating) = child_definition(&parent_ctx, name, value)?;
    let (json, ext) = build(&ctx, value)?;
    // The child, maybe a list item, maybe of a primitive's `_name` object.
    put_all(tally, target.len() + 3, &json, ext.as_ref())?;
    let container = match location::get_mut(doc, target) {
        Some(Value::Object(_)) => target.clone(),
        _ => location::primitive_extension_object(doc, target)
            .ok_or_else(|| Error::unprocessable(format!("cannot add `{name}` to the value at `{}`", op.path)))?,
    };
    let Some(Value::Object(map)) = location::get_mut(doc, &container) else { return Err(gone(op)) };
    set_child(map, &key, repeating, json, ext);
    Ok(())
}

/// The location of the list (`[.., Key(list)]`) an `insert` or `move` path selects: the array
/// holding all its items, or, when it selects nothing, the member named last in the path.
fn list_location(doc: &Value, op: &Operation, targets: &[Location], env: &Env<'static>) -> Result<Location> {
    let not_list = || Error::unprocessable(format!("path `{}` does not select a list", op.path));
    if let Some(first) = targets.first() {
        let [list @ .., Seg::Index(_)] = first.as_slice() else { return Err(not_list()) };
        if targets.iter().any(|t| t.len() != first.len() || !t.starts_with(list)) {
            return Err(not_list());
        }
        return Ok(list.to_vec());
    }
    let Expr::Member { target: Some(parent), name } = &op.expr else {
        return Err(Error::unprocessable(format!("no content found at `{}`", op.path)));
    };
    let items = fhirpath::evaluate(parent, doc, env).map_err(|e| path_error(op, &e))?;
    let [item] = items.as_slice() else {
        return Err(Error::unprocessable(format!("no single element owns the list `{}`", op.path)));
    };
    let mut list = location::locate(doc, item).ok_or_else(not_list)?;
    let ctx = DefContext::at(doc, &list).child(name);
    if ctx.element().is_some_and(|m| !m.element.is_repeating()) {
        return Err(not_list());
    }
    list.push(Seg::Key(name.clone()));
    Ok(list)
}

fn insert(doc: &mut Value, list: &Location, op: &Operation, tally: &mut Tally) -> Result<()> {
    let (Some(value), Some(index)) = (&op.value, op.index) else { return Err(gone(op)) };
    let (json, ext) = build(&DefContext::at(doc, list), value)?;
    put_all(tally, list.len() + 1, &json, ext.as_ref())?;
    let Some((map, key)) = location::list_owner(doc, list) else { return Err(gone(op)) };
    let Value::Array(items) = map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new())) else {
        return Err(Error::unprocessable(format!("path `{}` does not select a list", op.path)));
    };
    if index > items.len() {
        let len = items.len();
        location::tidy_list(map, &key);
        return Err(Error::unprocessable(format!("index {index} is out of range: the list has {len} items")));
    }
    items.insert(index, json);
    set_list_ext(map, &key, index, ext, true);
    Ok(())
}

fn move_item(doc: &mut Value, list: &Location, op: &Operation) -> Result<()> {
    let (Some(source), Some(destination)) = (op.source, op.destination) else { return Err(gone(op)) };
    let Some((map, key)) = location::list_owner(doc, list) else { return Err(gone(op)) };
    let len = map.get(&key).and_then(Value::as_array).map_or(0, Vec::len);
    if source >= len || destination >= len {
        return Err(Error::unprocessable(format!(
            "source {source} and destination {destination} must be below the list's length {len}"
        )));
    }
    for list_key in [key.clone(), format!("_{key}")] {
        if let Some(Value::Array(items)) = map.get_mut(&list_key) {
            items.resize(len, Value::Null);
            let item = items.remove(source);
            items.insert(destination, item);
        }
    }
    Ok(())
}
