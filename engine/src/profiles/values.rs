//! Comparing instance values with `fixed[x]` (exactly equal) and `pattern[x]` (everything the
//! pattern states is in the value; repeating elements: each pattern item matches some value
//! item), numbers by value (`1.0` is `1`); and the limits `minValue[x]`, `maxValue[x]`
//! (quantities in UCUM units of one base converted, a `Duration` limit of a date taken from now:
//! [`super::units`]), `maxLength` and the `minLength` extension.

use std::cmp::Ordering;

use serde_json::Value;

use super::snapshot::Elem;
use super::units;

/// The UCUM code system.
const UCUM: &str = "http://unitsofmeasure.org";

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

/// What is wrong with `value` against the element's limits, if anything.
pub(crate) fn out_of_range(elem: &Elem, value: &Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(max) = elem.max_length.filter(|m| length > *m) {
            return Some(format!("`{}` is longer than {max} characters", shown(value)));
        }
        if let Some(min) = elem.min_length.filter(|m| length < *m) {
            return Some(format!("`{}` is shorter than {min} characters", shown(value)));
        }
    }
    if let Some(min) = &elem.min_value {
        if compare(value, &from_now(min, value, -1)) == Some(Ordering::Less) {
            return Some(format!("{} is below the minimum {}", shown(value), shown(min)));
        }
    }
    if let Some(max) = &elem.max_value {
        if compare(value, &from_now(max, value, 1)) == Some(Ordering::Greater) {
            return Some(format!("{} is above the maximum {}", shown(value), shown(max)));
        }
    }
    None
}

/// A limit of a date given as a duration (`{"value": 100, "code": "a"}`): the moment that long
/// before now (`sign` -1, a minimum) or after it (+1, a maximum); any other limit as it is.
fn from_now(bound: &Value, value: &Value, sign: i32) -> Value {
    let Value::Object(duration) = bound else { return bound.clone() };
    if !value.is_string() {
        return bound.clone();
    }
    let amount = duration.get("value").and_then(Value::as_f64);
    let code = duration.get("code").or_else(|| duration.get("unit")).and_then(Value::as_str);
    match amount.zip(code).and_then(|(a, c)| units::shifted_now(a, c, sign)) {
        Some(moment) => Value::String(moment),
        None => bound.clone(),
    }
}

/// Numbers by value; dates, times and instants (ISO 8601 text) where one's precision covers the
/// other's; quantities of the same unit. `None`: not comparable.
fn compare(value: &Value, bound: &Value) -> Option<Ordering> {
    match (value, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => {
            let n = a.len().min(b.len());
            match a[..n].cmp(&b[..n]) {
                Ordering::Equal if a.len() != b.len() => None,
                other => Some(other),
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let unit = |o: &serde_json::Map<String, Value>| o.get("code").or_else(|| o.get("unit")).cloned();
            if unit(a) == unit(b) {
                return compare(a.get("value")?, b.get("value")?);
            }
            // UCUM units of the same base (`g` and `kg`): compared in the base unit.
            let in_base = |o: &serde_json::Map<String, Value>| {
                if o.get("system").and_then(Value::as_str) != Some(UCUM) {
                    return None;
                }
                let (factor, base) = units::canonical(o.get("code")?.as_str()?)?;
                Some((o.get("value")?.as_f64()? * factor, base))
            };
            let ((x, base_a), (y, base_b)) = (in_base(a)?, in_base(b)?);
            if base_a != base_b {
                return None;
            }
            x.partial_cmp(&y)
        }
        _ => None,
    }
}
