//! JSON Patch (RFC 6902) on a `serde_json::Value`: `add`, `remove`, `replace`, `move`, `copy`
//! and `test`, with JSON Pointers (RFC 6901: `~0`/`~1` escapes, `-` for the end of an array).
//! See <https://datatracker.ietf.org/doc/html/rfc6902> and <https://hl7.org/fhir/R4/http.html#patch>.
//!
//! All or nothing: the operations apply to a copy, returned only when every one succeeded.
//! A malformed patch document is a [`Error::BadRequest`]; a well-formed one that cannot apply to
//! this document (missing target, failed `test`) is an [`Error::Unprocessable`].
//!
//! Written here rather than taken from the `json-patch` crate: it is small, keeps member order
//! (`preserve_order`: removal shifts rather than swaps) and compares `arbitrary_precision` numbers
//! by value in `test` (`1` equals `1.0`), with our error type and messages.

use serde_json::{Map, Value};

use super::bounds::Tally;
use crate::error::{Error, Result};

/// One parsed operation.
#[derive(Debug)]
enum Op {
    Add(Vec<String>, Value),
    Remove(Vec<String>),
    Replace(Vec<String>, Value),
    Move { from: Vec<String>, path: Vec<String> },
    Copy { from: Vec<String>, path: Vec<String> },
    Test(Vec<String>, Value),
}

/// Applies the JSON Patch document `patch` (an array of operations) to `doc`, returning the
/// patched copy; `doc` is never changed.
#[cfg(test)]
pub(crate) fn apply(doc: &Value, patch: &Value) -> Result<Value> {
    apply_within(doc, patch, crate::fhirpath::Budget::DEFAULT.max_steps)
}

/// Applies the patch (see `apply`), the operations together putting at most `max_values` JSON values into the
/// document (a `copy` can double it), none nesting it deeper than a body may be (127 arrays and objects): beyond, a 422.
pub(super) fn apply_within(doc: &Value, patch: &Value, max_values: u64) -> Result<Value> {
    let Value::Array(ops) = patch else {
        return Err(Error::bad_request("a JSON Patch document must be an array of operations"));
    };
    let parsed = ops.iter().enumerate().map(|(i, op)| parse_op(i, op)).collect::<Result<Vec<_>>>()?;
    let mut out = doc.clone();
    let mut tally = Tally::new(max_values);
    for (i, (op, raw)) in parsed.iter().zip(ops).enumerate() {
        let at = |e: Error| prefix_issues(e, i, raw);
        bound(&mut out, op, &mut tally).map_err(at)?;
        apply_op(&mut out, op).map_err(|m| {
            let name = raw.get("op").and_then(Value::as_str).unwrap_or_default();
            let path = raw.get("path").and_then(Value::as_str).unwrap_or_default();
            Error::unprocessable(format!("json patch operation {i} (`{name}` at `{path}`): {m}"))
        })?;
    }
    Ok(out)
}

fn parse_op(i: usize, op: &Value) -> Result<Op> {
    let bad = |m: String| Error::bad_request(format!("json patch operation {i}: {m}"));
    let Value::Object(map) = op else { return Err(bad("must be an object".into())) };
    let name = map.get("op").and_then(Value::as_str).ok_or_else(|| bad("`op` must be a string".into()))?;
    let pointer = |key: &str| -> Result<Vec<String>> {
        let text = map.get(key).and_then(Value::as_str).ok_or_else(|| bad(format!("`{key}` must be a string")))?;
        parse_pointer(text).map_err(bad)
    };
    let value = || map.get("value").cloned().ok_or_else(|| bad(format!("`{name}` needs a `value`")));
    Ok(match name {
        "add" => Op::Add(pointer("path")?, value()?),
        "remove" => Op::Remove(pointer("path")?),
        "replace" => Op::Replace(pointer("path")?, value()?),
        "move" => Op::Move { from: pointer("from")?, path: pointer("path")? },
        "copy" => Op::Copy { from: pointer("from")?, path: pointer("path")? },
        "test" => Op::Test(pointer("path")?, value()?),
        other => return Err(bad(format!("unknown operation `{other}`"))),
    })
}

/// The reference tokens of a JSON Pointer, unescaped (`""` is the whole document).
fn parse_pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("json pointer `{text}` must be empty or start with `/`"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err(format!("json pointer `{text}` has a `~` not followed by `0` or `1`")),
                }
            }
            Ok(out)
        })
        .collect()
}

/// Measures what `op` will put into `doc` against the tally, before it runs.
fn bound(doc: &mut Value, op: &Op, tally: &mut Tally) -> Result<()> {
    match op {
        Op::Add(path, value) | Op::Replace(path, value) => tally.put(path.len(), value),
        // Compared, not put: only its size counts.
        Op::Test(_, value) => tally.put(0, value),
        Op::Move { from, path } | Op::Copy { from, path } => match get_mut(doc, from) {
            Ok(value) => tally.put(path.len(), value),
            // The operation itself reports the missing value.
            Err(_) => Ok(()),
        },
        Op::Remove(_) => Ok(()),
    }
}

/// `error` with the operation it comes from in front of each message.
fn prefix_issues(error: Error, i: usize, raw: &Value) -> Error {
    let name = raw.get("op").and_then(Value::as_str).unwrap_or_default();
    let path = raw.get("path").and_then(Value::as_str).unwrap_or_default();
    let what = format!("json patch operation {i} (`{name}` at `{path}`)");
    match error {
        Error::Unprocessable(mut issues) => {
            issues.iter_mut().for_each(|issue| issue.diagnostics = format!("{what}: {}", issue.diagnostics));
            Error::Unprocessable(issues)
        }
        other => other,
    }
}

fn apply_op(doc: &mut Value, op: &Op) -> Result<(), String> {
    match op {
        Op::Add(path, value) => add(doc, path, value.clone()),
        Op::Remove(path) => remove(doc, path).map(drop),
        Op::Replace(path, value) => {
            *get_mut(doc, path)? = value.clone();
            Ok(())
        }
        Op::Move { from, path } => {
            if path.len() > from.len() && path.starts_with(from) {
                return Err("cannot move a value into one of its own children".into());
            }
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        Op::Copy { from, path } => {
            let value = get_mut(doc, from)?.clone();
            add(doc, path, value)
        }
        Op::Test(path, value) => {
            let actual = get_mut(doc, path)?;
            if json_equal(actual, value) { Ok(()) } else { Err(format!("test failed: found {actual}")) }
        }
    }
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) if last == "-" => {
            items.push(value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len() + 1)?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add `{last}` to a value that is neither an object nor an array")),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match get_mut(doc, parent)? {
        Value::Object(map) => map.shift_remove(last.as_str()).ok_or_else(|| format!("no member `{last}`")),
        Value::Array(items) => {
            let index = array_index(last, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(format!("no member `{last}` in a value that is neither an object nor an array")),
    }
}

/// The value at `path`, which must exist.
fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in path {
        current = match current {
            Value::Object(map) => map.get_mut(token.as_str()).ok_or_else(|| format!("no member `{token}`"))?,
            Value::Array(items) => {
                let index = array_index(token, items.len())?;
                &mut items[index]
            }
            _ => return Err(format!("cannot look up `{token}` in a primitive value")),
        };
    }
    Ok(current)
}

/// An array index token (digits, no leading zero), below `bound`.
fn array_index(token: &str, bound: usize) -> Result<usize, String> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    let index = match token.parse::<usize>() {
        Ok(i) if digits && (token == "0" || !token.starts_with('0')) => i,
        _ => return Err(format!("`{token}` is not an array index")),
    };
    if index < bound { Ok(index) } else { Err(format!("array index {index} is out of bounds")) }
}

/// JSON equality as RFC 6902 `test` defines it: numbers by value, objects regardless of order.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.to_string() == y.to_string() || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y)),
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}
