//! FHIRPath operators: equality and equivalence (with the precision rules of dates),
//! comparison, arithmetic (dates plus calendar quantities included), three-valued logic,
//! `|`, `in`, `contains`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::ast::BinaryOp;
use super::decimal::Decimal;
use super::error::{FhirPathError, Result};
use super::quantity::{Converted, convert, product};
use super::temporal::TemporalKind;
use super::value::Item;

/// A binary operator on evaluated operands.
pub(crate) fn binary<'a>(op: BinaryOp, left: Vec<Item<'a>>, right: Vec<Item<'a>>) -> Result<Vec<Item<'a>>> {
    use BinaryOp::*;
    let boolean = |b: Option<bool>| Ok(b.map(Item::Boolean).into_iter().collect());
    match op {
        Eq => boolean(equal_collections(&left, &right)),
        Ne => boolean(equal_collections(&left, &right).map(|b| !b)),
        Equiv => boolean(Some(equivalent_collections(&left, &right))),
        NotEquiv => boolean(Some(!equivalent_collections(&left, &right))),
        Lt | Gt | Le | Ge => {
            let (Some(a), Some(b)) = (singleton(&left)?, singleton(&right)?) else { return Ok(Vec::new()) };
            let Some(ordering) = compare(&a, &b)? else { return Ok(Vec::new()) };
            boolean(Some(match op {
                Lt => ordering == Ordering::Less,
                Gt => ordering == Ordering::Greater,
                Le => ordering != Ordering::Greater,
                _ => ordering != Ordering::Less,
            }))
        }
        Union => Ok(dedupe(left.into_iter().chain(right))),
        In | Contains => {
            let (needle, haystack) = if op == In { (left, right) } else { (right, left) };
            match needle.as_slice() {
                [] => Ok(Vec::new()),
                [item] => boolean(Some(haystack.iter().any(|h| equal(item, h) == Some(true)))),
                _ => Err(FhirPathError::eval("`in`/`contains` needs a single item")),
            }
        }
        And | Or | Xor | Implies => {
            let (a, b) = (to_bool(&left)?, to_bool(&right)?);
            boolean(match op {
                And => match (a, b) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                Or => match (a, b) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                Xor => a.zip(b).map(|(a, b)| a != b),
                _ => match (a, b) {
                    (Some(false), _) | (_, Some(true)) => Some(true),
                    (Some(true), Some(false)) => Some(false),
                    _ => None,
                },
            })
        }
        Concat => {
            let text = |items: &[Item<'a>]| -> Result<String> {
                Ok(match singleton(items)? {
                    None => String::new(),
                    Some(item) => match item.as_ref() {
                        Item::String(s) => s.clone(),
                        _ => return Err(FhirPathError::eval("`&` needs strings")),
                    },
                })
            };
            Ok(vec![Item::String(text(&left)? + &text(&right)?)])
        }
        Add | Sub | Mul | Div | IntDiv | Mod => {
            let (Some(a), Some(b)) = (singleton(&left)?, singleton(&right)?) else { return Ok(Vec::new()) };
            arithmetic(op, &a, &b).map(|r| r.into_iter().collect())
        }
    }
}

/// The single item of a collection as a System value, `None` when empty.
pub(crate) fn singleton<'i, 'a>(items: &'i [Item<'a>]) -> Result<Option<Cow<'i, Item<'a>>>> {
    match items {
        [] => Ok(None),
        [item] => Ok(item.system()),
        _ => Err(FhirPathError::eval("expected a single item, found a collection")),
    }
}

/// Singleton evaluation of a collection as a boolean: empty is unknown, one boolean is itself,
/// any other single item is true.
pub(crate) fn to_bool(items: &[Item<'_>]) -> Result<Option<bool>> {
    Ok(match singleton(items)? {
        None => None,
        Some(item) => match item.as_ref() {
            Item::Boolean(b) => Some(*b),
            _ => Some(true),
        },
    })
}

/// Unary minus.
pub(crate) fn negate<'a>(items: Vec<Item<'a>>) -> Result<Vec<Item<'a>>> {
    let Some(item) = singleton(&items)? else { return Ok(Vec::new()) };
    Ok(vec![match item.as_ref() {
        Item::Integer(i) => Item::Integer(i.checked_neg().ok_or_else(|| FhirPathError::eval("integer overflow"))?),
        Item::Decimal(d) => Item::Decimal(d.negated()),
        Item::Quantity(v, u) => Item::Quantity(v.negated(), u.clone()),
        _ => return Err(FhirPathError::eval("`-` needs a number or a quantity")),
    }])
}

/// `items` without duplicates (by [`equal`]), the first of each kept, in order. Strings (most
/// large collections: codes, identifiers) are grouped by their text, so only other items are
/// compared each with each: see [`dedupe_cost`].
pub(crate) fn dedupe<'a>(items: impl IntoIterator<Item = Item<'a>>) -> Vec<Item<'a>> {
    let mut out: Vec<Item<'a>> = Vec::new();
    let mut by_text: HashMap<String, Vec<usize>> = HashMap::new();
    let mut others: Vec<usize> = Vec::new();
    for item in items {
        let group = match text_key(&item) {
            Some(text) => by_text.entry(text).or_default(),
            None => &mut others,
        };
        if !group.iter().any(|&i| out.get(i).is_some_and(|o| equal(o, &item) == Some(true))) {
            group.push(out.len());
            out.push(item);
        }
    }
    out
}

/// The items [`dedupe`] compares each with each (those that are not strings).
pub(crate) fn dedupe_cost(items: &[Item<'_>]) -> usize {
    items.iter().filter(|i| text_key(i).is_none()).count()
}

/// The text of an item equal only to strings of the same text: a string is never equal to a
/// value of another type (see [`equal`]).
fn text_key(item: &Item<'_>) -> Option<String> {
    match item.system().as_deref() {
        Some(Item::String(text)) => Some(text.clone()),
        _ => None,
    }
}

fn number(item: &Item<'_>) -> Option<Decimal> {
    match item {
        Item::Integer(i) => Some(Decimal::from_i64(*i)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// A FHIR Quantity node (or a System quantity) as value and unit.
pub(crate) fn quantity(item: &Item<'_>) -> Option<(Decimal, String)> {
    match item {
        Item::Quantity(v, u) => Some((*v, u.clone())),
        Item::Node(node) => {
            let object = node.value?.as_object()?;
            let value = Decimal::parse(&object.get("value")?.as_number()?.to_string())?;
            let unit = object.get("code").or_else(|| object.get("unit")).and_then(Value::as_str).unwrap_or("1");
            Some((value, unit.to_owned()))
        }
        _ => None,
    }
}

/// Calendar keyword units and their UCUM forms (`year` and `'a'`); `None` for other units.
fn calendar_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "year" | "years" => "year",
        "month" | "months" => "month",
        "week" | "weeks" => "week",
        "day" | "days" => "day",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "second" | "seconds" | "s" => "second",
        "millisecond" | "milliseconds" | "ms" => "millisecond",
        _ => return None,
    })
}

/// Whether two units are the same for `=` (`'s'` and `second` are; `'a'` and `year` are not).
fn same_unit(a: &str, b: &str) -> bool {
    a == b || calendar_unit(a).is_some() && calendar_unit(a) == calendar_unit(b)
}

/// Equality of two items (`None`: unknown, as for dates of different precision).
pub(crate) fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b) {
        if !a.is_primitive() || !b.is_primitive() {
            return Some(x.value == y.value && x.value.is_some());
        }
    }
    if let (Some(x), Some(y)) = (quantity_of(a), quantity_of(b)) {
        return match convert((x.0, &x.1), (y.0, &y.1)) {
            Converted::Same(p, q) => Some(p == q),
            Converted::Approximate(..) => None,
            Converted::Incompatible => Some(false),
        };
    }
    let (a, b) = (a.system()?, b.system()?);
    match (a.as_ref(), b.as_ref()) {
        (Item::Temporal(x), Item::Temporal(y)) => {
            if (x.kind == TemporalKind::Time) != (y.kind == TemporalKind::Time) {
                return Some(false);
            }
            x.compare(y).map(|o| o == Ordering::Equal)
        }
        (Item::String(x), Item::String(y)) => Some(x == y),
        (Item::Boolean(x), Item::Boolean(y)) => Some(x == y),
        (x, y) => match (number(x), number(y)) {
            (Some(x), Some(y)) => Some(x == y),
            _ => Some(false),
        },
    }
}

fn quantity_of(item: &Item<'_>) -> Option<(Decimal, String)> {
    match item {
        Item::Quantity(..) => quantity(item),
        Item::Node(n)
            if !item.is_primitive() && n.value.is_some_and(|v| v.get("value").is_some_and(Value::is_number)) =>
        {
            quantity(item)
        }
        _ => None,
    }
}

fn equal_collections(a: &[Item<'_>], b: &[Item<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len() != b.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (x, y) in a.iter().zip(b) {
        match equal(x, y) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

/// Equivalence (`~`) of two items.
pub(crate) fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Some(x), Some(y)) = (quantity_of(a), quantity_of(b)) {
        return match convert((x.0, &x.1), (y.0, &y.1)) {
            Converted::Same(p, q) | Converted::Approximate(p, q) => decimal_equivalent(p, q),
            Converted::Incompatible => false,
        };
    }
    let (Some(x), Some(y)) = (a.system(), b.system()) else { return false };
    match (x.as_ref(), y.as_ref()) {
        (Item::String(x), Item::String(y)) => normalise(x) == normalise(y),
        (Item::Temporal(x), Item::Temporal(y)) => x.compare(y) == Some(Ordering::Equal),
        (x, y) => match (number(x), number(y)) {
            (Some(p), Some(q)) => decimal_equivalent(p, q),
            _ => equal(x, y) == Some(true),
        },
    }
}

/// Decimals are equivalent when equal at the precision of the less precise one.
fn decimal_equivalent(a: Decimal, b: Decimal) -> bool {
    let scale = a.scale().min(b.scale());
    a.rescale(scale) == b.rescale(scale)
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn equivalent_collections(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| equivalent(x, y)))
}

/// Ordering of two System values; `None` when unknown (dates of different precision).
pub(crate) fn compare(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>> {
    if let (Some(x), Some(y)) = (quantity_of(a), quantity_of(b)) {
        return match convert((x.0, &x.1), (y.0, &y.1)) {
            Converted::Same(p, q) => Ok(Some(p.cmp(&q))),
            Converted::Approximate(..) => Ok(None),
            Converted::Incompatible => {
                Err(FhirPathError::eval(format!("cannot compare units `{}` and `{}`", x.1, y.1)))
            }
        };
    }
    match (a, b) {
        (Item::String(x), Item::String(y)) => Ok(Some(x.cmp(y))),
        (Item::Temporal(x), Item::Temporal(y)) => Ok(x.compare(y)),
        (x, y) => match (number(x), number(y)) {
            (Some(p), Some(q)) => Ok(Some(p.cmp(&q))),
            _ => Err(FhirPathError::eval(format!(
                "cannot compare {} with {}",
                x.type_name().unwrap_or("an untyped value"),
                y.type_name().unwrap_or("an untyped value")
            ))),
        },
    }
}

fn arithmetic<'a>(op: BinaryOp, a: &Item<'a>, b: &Item<'a>) -> Result<Option<Item<'a>>> {
    use BinaryOp::*;
    let overflow = || FhirPathError::eval("arithmetic overflow");
    match (op, a, b) {
        (Add, Item::String(x), Item::String(y)) => return Ok(Some(Item::String(format!("{x}{y}")))),
        (Add | Sub, Item::Temporal(t), other) => {
            let Some((value, unit)) = quantity(other) else {
                return Err(FhirPathError::eval("dates can only be added to quantities"));
            };
            let unit = calendar_unit(&unit).map_or(unit.as_str(), |u| u);
            let amount = value.truncate().to_i64().ok_or_else(overflow)?;
            let amount = if op == Sub { -amount } else { amount };
            return match t.add(amount, unit) {
                Some(t) => Ok(Some(Item::Temporal(t))),
                None => Err(FhirPathError::eval(format!("cannot add unit `{unit}` to a date"))),
            };
        }
        (Mul | Div | Add | Sub, Item::Quantity(..), _) | (Mul | Div | Add | Sub, _, Item::Quantity(..)) => {
            return quantity_arithmetic(op, a, b);
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (number(a), number(b)) else {
        return Err(FhirPathError::eval(format!(
            "cannot apply arithmetic to {} and {}",
            a.type_name().unwrap_or("an untyped value"),
            b.type_name().unwrap_or("an untyped value")
        )));
    };
    if let (Item::Integer(i), Item::Integer(j)) = (a, b) {
        let r = match op {
            Add => i.checked_add(*j),
            Sub => i.checked_sub(*j),
            Mul => i.checked_mul(*j),
            IntDiv => return Ok(if *j == 0 { None } else { Some(Item::Integer(i.wrapping_div(*j))) }),
            Mod => return Ok(if *j == 0 { None } else { Some(Item::Integer(i.wrapping_rem(*j))) }),
            _ => return Ok(x.checked_div(y).map(Item::Decimal)),
        };
        return r.map(|r| Some(Item::Integer(r))).ok_or_else(overflow);
    }
    Ok(match op {
        Add => Some(Item::Decimal(x.checked_add(y).ok_or_else(overflow)?)),
        Sub => Some(Item::Decimal(x.checked_sub(y).ok_or_else(overflow)?)),
        Mul => Some(Item::Decimal(x.checked_mul(y).ok_or_else(overflow)?)),
        Div => x.checked_div(y).map(Item::Decimal),
        IntDiv => x.int_div(y).and_then(|d| d.to_i64()).map(Item::Integer),
        _ => x.checked_rem(y).map(Item::Decimal),
    })
}

fn quantity_arithmetic<'a>(op: BinaryOp, a: &Item<'a>, b: &Item<'a>) -> Result<Option<Item<'a>>> {
    let err = || FhirPathError::eval("unsupported quantity arithmetic");
    let (qa, qb) = (quantity(a), quantity(b));
    Ok(match (op, qa, qb) {
        (BinaryOp::Add | BinaryOp::Sub, Some((x, u)), Some((y, v))) if same_unit(&u, &v) => {
            let r = if op == BinaryOp::Add { x.checked_add(y) } else { x.checked_sub(y) };
            Some(Item::Quantity(r.ok_or_else(err)?, u))
        }
        (BinaryOp::Mul | BinaryOp::Div, Some((x, u)), Some((y, v))) => {
            product((x, &u), (y, &v), op == BinaryOp::Mul).map(|(value, unit)| Item::Quantity(value, unit))
        }
        (BinaryOp::Mul, Some((x, u)), None) => {
            Some(Item::Quantity(x.checked_mul(number(b).ok_or_else(err)?).ok_or_else(err)?, u))
        }
        (BinaryOp::Mul, None, Some((y, v))) => {
            Some(Item::Quantity(y.checked_mul(number(a).ok_or_else(err)?).ok_or_else(err)?, v))
        }
        (BinaryOp::Div, Some((x, u)), None) => number(b).and_then(|n| x.checked_div(n)).map(|r| Item::Quantity(r, u)),
        _ => return Err(err()),
    })
}
