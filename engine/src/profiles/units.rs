//! The few UCUM units (<https://ucum.org/ucum>) that limits need: a unit with an optional metric
//! prefix over a base unit (`mg`, `kg`, `mL`, `cm`...) or a unit of time (`min`, `h`, `d`, `wk`,
//! `mo`, `a`), brought to a common base so that `minValueQuantity` in `kg` bounds a value in
//! `g`; and a `Duration` limit of a date (`minValueDuration` of R5, which the reference validator
//! also applies in R4: the limit is now minus, or plus, the duration).
//!
//! A unit not written this way is not converted (the limit is then not compared).

use time::{Duration, OffsetDateTime};

/// UCUM metric prefixes and their factors.
const PREFIXES: &[(&str, f64)] = &[
    ("da", 1e1),
    ("k", 1e3),
    ("h", 1e2),
    ("d", 1e-1),
    ("c", 1e-2),
    ("m", 1e-3),
    ("u", 1e-6),
    ("n", 1e-9),
    ("p", 1e-12),
    ("M", 1e6),
    ("G", 1e9),
];

/// Base units that take a prefix.
const METRIC: &[&str] = &["g", "m", "L", "l", "s", "mol", "Pa", "J", "W", "Hz", "eq", "U", "[iU]", "kat"];

/// Units of time (not prefixed), in seconds; UCUM's `mo` and `a` are the Julian month and year.
const TIME: &[(&str, f64)] = &[
    ("s", 1.0),
    ("min", 60.0),
    ("h", 3_600.0),
    ("d", 86_400.0),
    ("wk", 604_800.0),
    ("mo", 2_629_800.0),
    ("a", 31_557_600.0),
];

/// `code` as a factor over its base unit: `kg` → `(1000, "g")`, `h` → `(3600, "s")`.
pub(crate) fn canonical(code: &str) -> Option<(f64, &'static str)> {
    if let Some(&(_, seconds)) = TIME.iter().find(|(c, _)| *c == code) {
        return Some((seconds, "s"));
    }
    if let Some(base) = METRIC.iter().find(|b| **b == code) {
        return Some((1.0, base_of(base)));
    }
    PREFIXES.iter().find_map(|(prefix, factor)| {
        let rest = code.strip_prefix(prefix)?;
        METRIC.iter().find(|b| **b == rest).map(|base| (*factor, base_of(base)))
    })
}

/// `l` and `L` are the same litre.
fn base_of(base: &'static str) -> &'static str {
    if base == "l" { "L" } else { base }
}

/// The moment `amount` of time unit `code` away from `now` (`sign` -1 before, +1 after), as
/// FHIR dateTime text; `None` for a unit that is not of time or an amount out of range.
pub(crate) fn shifted_now(amount: f64, code: &str, sign: i32) -> Option<String> {
    let now = OffsetDateTime::now_utc();
    let moment = match code {
        // Calendar years and months, as a person's age is counted.
        "a" | "mo" => {
            let months = amount.trunc();
            if !months.is_finite() || months.abs() > 120_000.0 {
                return None;
            }
            let months = (months as i64) * if code == "a" { 12 } else { 1 } * i64::from(sign);
            let total = i64::from(now.year()) * 12 + i64::from(u8::from(now.month())) - 1 + months;
            let year = i32::try_from(total.div_euclid(12)).ok()?;
            let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
            let day = now.day().min(time::util::days_in_month(month, year));
            now.replace_day(1).ok()?.replace_year(year).ok()?.replace_month(month).ok()?.replace_day(day).ok()?
        }
        _ => {
            let (seconds, base) = canonical(code)?;
            if base != "s" || !(amount * seconds).is_finite() || (amount * seconds).abs() > 1e12 {
                return None;
            }
            now.checked_add(Duration::seconds_f64(amount * seconds * f64::from(sign)))?
        }
    };
    let (y, m, d) = (moment.year(), u8::from(moment.month()), moment.day());
    Some(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", moment.hour(), moment.minute(), moment.second()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_units_share_their_base() {
        assert_eq!(canonical("kg"), Some((1e3, "g")));
        assert_eq!(canonical("g"), Some((1.0, "g")));
        assert_eq!(canonical("mL"), Some((1e-3, "L")));
        assert_eq!(canonical("m"), Some((1.0, "m")));
        assert_eq!(canonical("min"), Some((60.0, "s")));
        assert_eq!(canonical("[lb_av]"), None);
    }

    #[test]
    fn durations_move_now() {
        let past = shifted_now(100.0, "a", -1).unwrap_or_default();
        let year: i32 = past[..4].parse().unwrap_or_default();
        assert_eq!(year, OffsetDateTime::now_utc().year() - 100);
        assert!(shifted_now(1.0, "g", 1).is_none());
    }
}
