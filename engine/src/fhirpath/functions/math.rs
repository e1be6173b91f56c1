//! Math functions: `abs`, `ceiling`, `exp`, `floor`, `ln`, `log`, `power`, `round`, `sqrt`,
//! `truncate`, and `precision`, `lowBoundary`, `highBoundary`, `comparable` (FHIRPath 2.0).

use super::{Call, Output};
use crate::fhirpath::decimal::Decimal;
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    if c.name == "lowBoundary" || c.name == "highBoundary" {
        return Some(boundary(c, c.name == "highBoundary"));
    }
    if c.name == "comparable" {
        return Some(comparable(c));
    }
    if c.name == "precision" {
        return Some(c.single().map(|item| match item {
            Some(Item::Decimal(d)) => vec![Item::Integer(i64::from(d.scale()))],
            Some(Item::Temporal(t)) => vec![Item::Integer(t.digits())],
            _ => Vec::new(),
        }));
    }
    if !matches!(c.name, "abs" | "ceiling" | "exp" | "floor" | "ln" | "log" | "power" | "round" | "sqrt" | "truncate") {
        return None;
    }
    Some((|| {
        let Some(item) = c.single()? else { return Ok(Vec::new()) };
        let value = match &item {
            Item::Integer(i) => Decimal::from_i64(*i),
            Item::Decimal(d) => *d,
            Item::Quantity(v, u) if c.name == "abs" => return Ok(vec![Item::Quantity(v.abs(), u.clone())]),
            _ => return Err(FhirPathError::eval(format!("`{}()` needs a number", c.name))),
        };
        let integer = matches!(item, Item::Integer(_));
        let whole = |d: Decimal| d.to_i64().map(Item::Integer).ok_or_else(|| FhirPathError::eval("integer overflow"));
        let real = |f: f64| Ok(Decimal::from_f64(f).map(Item::Decimal));
        let result = match c.name {
            "abs" if integer => Some(whole(value.abs())?),
            "abs" => Some(Item::Decimal(value.abs())),
            "ceiling" => Some(whole(value.ceiling())?),
            "floor" => Some(whole(value.floor())?),
            "truncate" => Some(whole(value.truncate())?),
            "round" => {
                let digits = if c.args.is_empty() { 0 } else { c.integer_arg(0)?.unwrap_or(0) };
                let digits = u32::try_from(digits)
                    .map_err(|_| FhirPathError::eval("`round()` needs a precision of 0 or more"))?;
                Some(Item::Decimal(value.rescale(digits)))
            }
            "exp" => real(value.to_f64().exp())?,
            "ln" => real(value.to_f64().ln())?,
            "sqrt" => real(value.to_f64().sqrt())?,
            "log" => {
                let Some(base) = number_arg(c)? else { return Ok(Vec::new()) };
                real(value.to_f64().ln() / base.ln())?
            }
            _ => {
                let Some(exponent) = number_arg(c)? else { return Ok(Vec::new()) };
                let result = value.to_f64().powf(exponent);
                if integer && c.arg(0)?.iter().all(|i| matches!(i, Item::Integer(_))) && result.fract() == 0.0 {
                    Decimal::from_f64(result).and_then(|d| d.to_i64()).map(Item::Integer)
                } else {
                    real(result)?
                }
            }
        };
        Ok(result.into_iter().collect())
    })())
}

fn number_arg(c: &Call<'_, '_, '_>) -> Result<Option<f64>, FhirPathError> {
    let items = c.arg(0)?;
    Ok(match crate::fhirpath::operators::singleton(&items)?.as_deref() {
        Some(Item::Integer(i)) => Some(*i as f64),
        Some(Item::Decimal(d)) => Some(d.to_f64()),
        Some(_) => return Err(FhirPathError::eval(format!("`{}()` needs a number argument", c.name))),
        None => None,
    })
}

fn boundary<'a>(c: &Call<'_, 'a, '_>, high: bool) -> Output<'a> {
    c.arity(0, 1)?;
    let Some(item) = c.single()? else { return Ok(Vec::new()) };
    let digits = if c.args.is_empty() { None } else { c.integer_arg(0)? };
    let decimal = |d: Decimal| {
        let scale = u32::try_from(digits.unwrap_or(8)).ok().filter(|s| *s <= 28)?;
        d.boundary(scale, high)
    };
    Ok(match item {
        Item::Integer(i) => decimal(Decimal::from_i64(i)).map(Item::Decimal),
        Item::Decimal(d) => decimal(d).map(Item::Decimal),
        Item::Quantity(v, u) => decimal(v).map(|v| Item::Quantity(v, u)),
        Item::Temporal(t) => t.boundary(digits, high).map(Item::Temporal),
        _ => return Err(FhirPathError::eval(format!("`{}()` needs a number, quantity or date", c.name))),
    }
    .into_iter()
    .collect())
}

fn comparable<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(1, 1)?;
    let other = c.arg(0)?;
    let (Some(Item::Quantity(_, a)), [other]) = (c.single()?, other.as_slice()) else { return Ok(Vec::new()) };
    let Some(Item::Quantity(_, b)) = other.system().as_deref().cloned() else { return Ok(Vec::new()) };
    Ok(vec![Item::Boolean(crate::fhirpath::quantity::comparable(&a, &b))])
}
