//! Comparing instance values with `fixed[x]` (exactly equal) and `pattern[x]` (everything the
//! pattern states is in the value; repeating elements: each pattern item matches some value
//! item), numbers by value (`1.0` is `1`).

use serde_json::Value;

/// Whether `value` is exactly `fixed`.
pub(crate) fn equal(fixed: &Value, value: &Value) -> bool {
    match (fixed, value) {
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, av)| b.get(k).is_some_and(|bv| equal(av, bv)))
        }
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y)),
        _ => fixed == value,
    }
}

/// Whether `value` has everything `pattern` states.
pub(crate) fn matches_pattern(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        (Value::Object(p), Value::Object(v)) => {
            p.iter().all(|(k, pv)| v.get(k).is_some_and(|vv| matches_pattern(pv, vv)))
        }
        (Value::Array(p), Value::Array(v)) => p.iter().all(|pi| v.iter().any(|vi| matches_pattern(pi, vi))),
        // A repeating element given as one pattern value.
        (p, Value::Array(v)) if !p.is_array() => v.iter().any(|vi| matches_pattern(p, vi)),
        _ => pattern == value,
    }
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    a == b || a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y)
}

/// A value for messages, cut short.
pub(crate) fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 120 {
        return text;
    }
    let mut end = 117;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
