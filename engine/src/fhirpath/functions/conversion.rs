//! Conversion: `iif`, `toBoolean`, `toInteger`, `toDecimal`, `toString`, `toDate`,
//! `toDateTime`, `toTime`, `toQuantity` and their `convertsTo*` tests.

use super::{Call, Output, boolean};
use crate::fhirpath::decimal::Decimal;
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::operators::quantity;
use crate::fhirpath::temporal::{Temporal, TemporalKind};
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    if c.name == "iif" {
        return Some(iif(c));
    }
    let (target, test) = match c.name.strip_prefix("convertsTo") {
        Some(target) => (target, true),
        None => (c.name.strip_prefix("to")?, false),
    };
    if !matches!(target, "Boolean" | "Integer" | "Decimal" | "String" | "Date" | "DateTime" | "Time" | "Quantity") {
        return None;
    }
    Some((|| {
        let Some(item) = c.single()? else { return Ok(Vec::new()) };
        let item = match &item {
            Item::Node(_) => quantity(&item).map_or(item, |(v, u)| Item::Quantity(v, u)),
            _ => item,
        };
        let converted = convert(&item, target);
        if test { boolean(converted.is_some()) } else { Ok(converted.into_iter().collect()) }
    })())
}

fn iif<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(2, 3)?;
    // On an explicit focus (`x.iif(...)`) the arguments see it as `$this`.
    let this = match c.focus.as_slice() {
        [] => None,
        [item] => Some(item),
        _ => return Err(FhirPathError::eval("`iif()` needs at most one item")),
    };
    let branch = |i: usize| match this {
        Some(item) if c.has_target => c.lambda(i, item, 0),
        _ => c.arg(i),
    };
    let condition = branch(0)?;
    let condition = match crate::fhirpath::operators::singleton(&condition)?.as_deref() {
        None => None,
        Some(Item::Boolean(b)) => Some(*b),
        Some(_) => return Err(FhirPathError::eval("`iif()` needs a boolean criterion")),
    };
    if condition == Some(true) {
        branch(1)
    } else if c.args.len() == 3 {
        branch(2)
    } else {
        Ok(Vec::new())
    }
}

/// Converts a System value to the System type `target`; `None` when it does not convert.
pub(crate) fn convert<'a>(item: &Item<'a>, target: &str) -> Option<Item<'a>> {
    Some(match (target, item) {
        ("Boolean", Item::Boolean(b)) => Item::Boolean(*b),
        ("Boolean", Item::Integer(i)) if *i == 0 || *i == 1 => Item::Boolean(*i == 1),
        ("Boolean", Item::Decimal(d)) if *d == Decimal::from_i64(0) || *d == Decimal::from_i64(1) => {
            Item::Boolean(*d == Decimal::from_i64(1))
        }
        ("Boolean", Item::String(s)) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Item::Boolean(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Item::Boolean(false),
            _ => return None,
        },
        ("Integer", Item::Integer(i)) => Item::Integer(*i),
        ("Integer", Item::Boolean(b)) => Item::Integer(i64::from(*b)),
        ("Integer", Item::String(s)) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Item::Integer(s.parse().ok()?)
        }
        ("Decimal", Item::Integer(i)) => Item::Decimal(Decimal::from_i64(*i)),
        ("Decimal", Item::Decimal(d)) => Item::Decimal(*d),
        ("Decimal", Item::Boolean(b)) => Item::Decimal(Decimal::parse(if *b { "1.0" } else { "0.0" })?),
        ("Decimal", Item::String(s)) => {
            if s.contains(['e', 'E']) {
                return None;
            }
            Item::Decimal(Decimal::parse(s)?)
        }
        ("String", _) => Item::String(to_string(item)?),
        ("Date", Item::Temporal(t)) if t.kind != TemporalKind::Time => Item::Temporal(t.with_kind(TemporalKind::Date)),
        ("Date", Item::String(s)) => {
            Item::Temporal(Temporal::parse(s, TemporalKind::Date).filter(|t| t.kind == TemporalKind::Date)?)
        }
        ("DateTime", Item::Temporal(t)) if t.kind != TemporalKind::Time => {
            Item::Temporal(t.with_kind(TemporalKind::DateTime))
        }
        ("DateTime", Item::String(s)) => {
            Item::Temporal(Temporal::parse(s, TemporalKind::DateTime)?.with_kind(TemporalKind::DateTime))
        }
        ("Time", Item::Temporal(t)) if t.kind == TemporalKind::Time => Item::Temporal(t.clone()),
        ("Time", Item::String(s)) => Item::Temporal(Temporal::parse(s, TemporalKind::Time)?),
        ("Quantity", Item::Quantity(v, u)) => Item::Quantity(*v, u.clone()),
        ("Quantity", Item::Integer(i)) => Item::Quantity(Decimal::from_i64(*i), "1".into()),
        ("Quantity", Item::Decimal(d)) => Item::Quantity(*d, "1".into()),
        ("Quantity", Item::Boolean(b)) => Item::Quantity(Decimal::parse(if *b { "1.0" } else { "0.0" })?, "1".into()),
        ("Quantity", Item::String(s)) => parse_quantity(s)?,
        _ => return None,
    })
}

/// `toString()` of a System value.
pub(crate) fn to_string(item: &Item<'_>) -> Option<String> {
    Some(match item {
        Item::String(s) => s.clone(),
        Item::Boolean(b) => b.to_string(),
        Item::Integer(i) => i.to_string(),
        Item::Decimal(d) => d.to_string(),
        Item::Temporal(t) => t.to_string(),
        Item::Quantity(v, u) if is_calendar_word(u) => format!("{v} {u}"),
        Item::Quantity(v, u) => format!("{v} '{u}'"),
        Item::Node(_) | Item::TypeInfo { .. } => return None,
    })
}

/// `4 'mg'`, `4 days`, `4`.
fn parse_quantity<'a>(text: &str) -> Option<Item<'a>> {
    let text = text.trim();
    let (number, unit) = match text.split_once(' ') {
        Some((number, unit)) => (number, unit.trim()),
        None => (text, ""),
    };
    let value = Decimal::parse(number)?;
    let unit = if unit.is_empty() {
        "1".to_owned()
    } else if let Some(quoted) = unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
        quoted.to_owned()
    } else if is_calendar_word(unit) {
        unit.to_owned()
    } else {
        return None;
    };
    Some(Item::Quantity(value, unit))
}

fn is_calendar_word(unit: &str) -> bool {
    matches!(
        unit,
        "year"
            | "years"
            | "month"
            | "months"
            | "week"
            | "weeks"
            | "day"
            | "days"
            | "hour"
            | "hours"
            | "minute"
            | "minutes"
            | "second"
            | "seconds"
            | "millisecond"
            | "milliseconds"
    )
}
