//! Attribute values from the engine's index entries: the values a search would match, in the
//! attribute's [`Shape`]. Tokens give `code` and `system|code` (identifiers `value` and
//! `system|value`; text-only and `:of-type` entries none); references their indexed form
//! (`Type/id` for local ones, absolute URLs as written; `Reference.identifier` none); strings
//! the normalised text search matches; uris the text. Dates, numbers and quantities with several
//! values give their envelope: the earliest start and the latest end, the least and the greatest
//! value. Decimals keep 4 fractional digits (rounded outwards) and are clamped to Cedar's range.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::RestrictedExpression;
use fhirgate_engine::storage::{IndexEntry, IndexValue};

use super::params::{ParamAttr, Shape};
use crate::error::Error;

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Strings(BTreeSet<String>),
    /// Unix seconds, both inclusive.
    Range {
        start: i64,
        end: i64,
    },
    /// Ten-thousandths; `units` for quantities (`code` and `system|code`), `None` for numbers.
    Numbers {
        min: i64,
        max: i64,
        units: Option<BTreeSet<String>>,
    },
}

/// The values of `params` in `entries`, by attribute name; parameters without any value are
/// left out.
pub(crate) fn from_entries(params: &[&ParamAttr], entries: &[IndexEntry]) -> BTreeMap<String, AttrValue> {
    let mut out = BTreeMap::new();
    for param in params {
        let values = entries.iter().filter(|e| e.param == param.code).map(|e| &e.value);
        if let Some(value) = fold(param.shape, values) {
            out.insert(param.name.clone(), value);
        }
    }
    out
}

fn fold<'a>(shape: Shape, values: impl Iterator<Item = &'a IndexValue>) -> Option<AttrValue> {
    let mut strings = BTreeSet::new();
    let mut range: Option<(i64, i64)> = None;
    let mut numbers: Option<(i64, i64)> = None;
    let mut units = BTreeSet::new();
    for value in values {
        match value {
            IndexValue::Token { system, code: Some(code), .. } => {
                strings.insert(code.clone());
                if let Some(system) = system {
                    strings.insert(format!("{system}|{code}"));
                }
            }
            IndexValue::Reference { reference, .. } => {
                strings.insert(reference.clone());
            }
            IndexValue::String { value, .. } | IndexValue::Uri { value } => {
                strings.insert(value.clone());
            }
            IndexValue::Date { start, end } => {
                let (Some(s), Some(e)) = (seconds(start), seconds(end)) else { continue };
                range = Some(range.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
            }
            IndexValue::Number { value: number, .. } | IndexValue::Quantity { value: number, .. } => {
                let Some((low, high)) = ten_thousandths(number) else { continue };
                numbers = Some(numbers.map_or((low, high), |(a, b)| (a.min(low), b.max(high))));
                if let IndexValue::Quantity { system, code: Some(code), .. } = value {
                    units.insert(code.to_owned());
                    if let Some(system) = system {
                        units.insert(format!("{system}|{code}"));
                    }
                }
            }
            _ => {}
        }
    }
    match shape {
        Shape::Strings => (!strings.is_empty()).then_some(AttrValue::Strings(strings)),
        Shape::Range => range.map(|(start, end)| AttrValue::Range { start, end }),
        Shape::Numbers => numbers.map(|(min, max)| AttrValue::Numbers { min, max, units: None }),
        Shape::Quantities => numbers.map(|(min, max)| AttrValue::Numbers { min, max, units: Some(units) }),
    }
}

/// Unix seconds of an index instant (`2020-01-01T00:00:00.000Z`), rounded down.
fn seconds(instant: &str) -> Option<i64> {
    time::OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Cedar's decimal range, in ten-thousandths.
const DECIMAL_LIMIT: f64 = 9.223_372_036_854_775e18;

/// A decimal text in ten-thousandths, rounded down and up, clamped to Cedar's range.
fn ten_thousandths(text: &str) -> Option<(i64, i64)> {
    let value: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
    let scaled = value * 10_000.0;
    #[expect(clippy::cast_possible_truncation, reason = "clamped to the i64 range first")]
    let round = |v: f64| v.clamp(-DECIMAL_LIMIT, DECIMAL_LIMIT) as i64;
    Some((round(scaled.floor()), round(scaled.ceil())))
}

/// The Cedar `decimal` of ten-thousandths.
fn decimal(value: i64) -> RestrictedExpression {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    RestrictedExpression::new_decimal(format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000))
}

fn strings(values: &BTreeSet<String>) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|v| RestrictedExpression::new_string(v.clone())))
}

/// The Cedar value of an attribute. A failure (none is expected: the record keys are fixed) is
/// an error, which denies: an attribute of the wrong shape could make a `forbid` fail to apply.
pub(crate) fn expression(value: &AttrValue) -> Result<RestrictedExpression, Error> {
    let record = |pairs: Vec<(&str, RestrictedExpression)>| {
        RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
            .map_err(|e| Error::Request(e.to_string()))
    };
    match value {
        AttrValue::Strings(values) => Ok(strings(values)),
        AttrValue::Range { start, end } => record(vec![
            ("start", RestrictedExpression::new_long(*start)),
            ("end", RestrictedExpression::new_long(*end)),
        ]),
        AttrValue::Numbers { min, max, units } => {
            let mut pairs = vec![("min", decimal(*min)), ("max", decimal(*max))];
            if let Some(units) = units {
                pairs.push(("units", strings(units)));
            }
            record(pairs)
        }
    }
}

/// The value of an attribute the resource has no value for: an empty set, or absent.
pub(crate) fn empty(shape: Shape) -> Option<RestrictedExpression> {
    (shape == Shape::Strings).then(|| RestrictedExpression::new_set([]))
}

#[cfg(test)]
mod tests {
    use fhirgate_engine::definitions::Definitions;
    use fhirgate_engine::search::index::extract;
    use serde_json::json;

    use super::*;
    use crate::attributes::params::entity;

    #[test]
    fn observation_values() {
        let resource = json!({"resourceType": "Observation", "id": "o", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "7917-8"}], "text": "HIV 1 Ab"},
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2020-01-01", "end": "2020-01-02T10:00:00Z"},
            "valueQuantity": {"value": 6.35, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
            "component": [{"code": {"text": "x"}, "valueQuantity": {"value": -1.00005}}]});
        let entries = extract(Definitions::r4(), &resource);
        let params: Vec<&ParamAttr> = entity("Observation").map(|e| e.params.iter().collect()).unwrap_or_default();
        let values = from_entries(&params, &entries);
        let set = |v: &[&str]| AttrValue::Strings(v.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(values.get("code"), Some(&set(&["7917-8", "http://loinc.org|7917-8"])));
        assert_eq!(values.get("subject"), Some(&set(&["Patient/p1"])));
        assert_eq!(values.get("status"), Some(&set(&["final", "http://hl7.org/fhir/observation-status|final"])));
        assert_eq!(values.get("date"), Some(&AttrValue::Range { start: 1_577_836_800, end: 1_577_959_200 }));
        let units = ["mmol/L", "http://unitsofmeasure.org|mmol/L"].map(str::to_owned).into_iter().collect();
        assert_eq!(
            values.get("value-quantity"),
            Some(&AttrValue::Numbers { min: 63_500, max: 63_500, units: Some(units) })
        );
        assert_eq!(
            values.get("component-value-quantity"),
            Some(&AttrValue::Numbers { min: -10_001, max: -10_000, units: Some(BTreeSet::new()) })
        );
        assert!(!values.contains_key("value-string"), "no value, no attribute");
        assert!(ten_thousandths("1e300").is_some_and(|(l, h)| l == h && l > 9_000_000_000_000_000_000), "clamped");
        assert!(ten_thousandths("NaN").is_none());
    }
}
