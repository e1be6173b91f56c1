//! Quantity units: calendar keywords (`week`) and the UCUM units they match (`'wk'`), and
//! the few metric UCUM units (`mg`, `cm`, `mL`) converted by prefix. Everything else compares
//! only with the identical unit.

use super::decimal::Decimal;

/// How two quantities relate after unit conversion.
pub(crate) enum Converted {
    /// Both values in the unit of the first.
    Same(Decimal, Decimal),
    /// A calendar year/month against the UCUM `a`/`mo`: equivalent, but not equal.
    Approximate(Decimal, Decimal),
    /// Incompatible units.
    Incompatible,
}

/// Whether two units can be compared (`comparable()`): the same unit, or the same dimension
/// among the units this module knows.
pub(crate) fn comparable(a: &str, b: &str) -> bool {
    a == b || matches!((factor(a), factor(b)), (Some((_, x)), Some((_, y))) if x == y)
}

/// `a * b` (`multiply`) or `a / b`, in base units when both are known (`2 'cm' * 2 'm'` is
/// `0.04 'm2'`); `None` on overflow or division by zero.
pub(crate) fn product(a: (Decimal, &str), b: (Decimal, &str), multiply: bool) -> Option<(Decimal, String)> {
    let to_base = |(value, unit): (Decimal, &str)| match factor(unit) {
        Some((f, base)) => value.checked_mul(f).map(|v| (v, base.to_owned())),
        None => Some((value, unit.to_owned())),
    };
    let ((x, u), (y, v)) = (to_base(a)?, to_base(b)?);
    let same = u == v;
    let unit = match (multiply, same) {
        (_, _) if v == "1" => u,
        (true, _) if u == "1" => v,
        (true, true) => format!("{u}2"),
        (true, false) => format!("{u}.{v}"),
        (false, true) => "1".to_owned(),
        (false, false) => format!("{u}/{v}"),
    };
    let value = if multiply { x.checked_mul(y)? } else { x.checked_div(y)? };
    Some((value, unit))
}

/// Brings `b` into the unit of `a`.
pub(crate) fn convert(a: (Decimal, &str), b: (Decimal, &str)) -> Converted {
    if a.1 == b.1 {
        return Converted::Same(a.0, b.0);
    }
    if let (Some((fa, base_a)), Some((fb, base_b))) = (factor(a.1), factor(b.1)) {
        if base_a == base_b {
            let scaled = b.0.checked_mul(fb).and_then(|v| v.checked_div(fa));
            return match scaled {
                Some(v) => Converted::Same(a.0, keep_scale(v, b.0, fb, fa)),
                None => Converted::Incompatible,
            };
        }
    }
    match (calendar_long(a.1), calendar_long(b.1)) {
        (Some(x), Some(y)) if x == y => Converted::Approximate(a.0, b.0),
        _ => Converted::Incompatible,
    }
}

/// Division drops trailing zeros; keep the precision the conversion implies instead.
fn keep_scale(v: Decimal, original: Decimal, from: Decimal, to: Decimal) -> Decimal {
    let shift = i64::from(to.scale()) - i64::from(from.scale());
    let scale = i64::from(original.scale()) - shift;
    u32::try_from(scale).map_or(v, |s| if s > v.scale() { v.rescale(s) } else { v })
}

/// Year and month in either spelling (`year`, `'a'`), for equivalence only.
fn calendar_long(unit: &str) -> Option<&'static str> {
    match unit {
        "year" | "years" | "a" => Some("year"),
        "month" | "months" | "mo" => Some("month"),
        _ => None,
    }
}

/// The factor to a base unit and that base, for definite durations and metric units.
fn factor(unit: &str) -> Option<(Decimal, &'static str)> {
    let seconds = match unit {
        "week" | "weeks" | "wk" => Some("604800"),
        "day" | "days" | "d" => Some("86400"),
        "hour" | "hours" | "h" => Some("3600"),
        "minute" | "minutes" | "min" => Some("60"),
        "second" | "seconds" | "s" => Some("1"),
        "millisecond" | "milliseconds" | "ms" => Some("0.001"),
        _ => None,
    };
    if let Some(f) = seconds {
        return Some((Decimal::parse(f)?, "s"));
    }
    let customary = match unit {
        "[in_i]" => Some(("0.0254", "m")),
        "[ft_i]" => Some(("0.3048", "m")),
        "[lb_av]" => Some(("453.59237", "g")),
        _ => None,
    };
    if let Some((f, base)) = customary {
        return Some((Decimal::parse(f)?, base));
    }
    const BASES: [&str; 4] = ["g", "m", "L", "mol"];
    if let Some(base) = BASES.iter().find(|b| **b == unit) {
        return Some((Decimal::from_i64(1), base));
    }
    let mut chars = unit.chars();
    let prefix = chars.next()?;
    let rest = chars.as_str();
    let base = BASES.iter().find(|b| **b == rest)?;
    let f = match prefix {
        'k' => "1000",
        'h' => "100",
        'd' => "0.1",
        'c' => "0.01",
        'm' => "0.001",
        'u' => "0.000001",
        'n' => "0.000000001",
        _ => return None,
    };
    Some((Decimal::parse(f)?, base))
}
