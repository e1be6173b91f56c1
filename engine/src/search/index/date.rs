//! `date` parameters: `date`, `dateTime`, `instant`, `Period` and `Timing` (each event), each an
//! inclusive `[start, end]` range of instants at the precision written (`2020` covers the whole
//! year). Times without a zone are taken as UTC; an open `Period` end reaches the far past or
//! future.

use serde_json::Value;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::{field, primitive_text};
use crate::fhirpath::Item;
use crate::resource::{format_instant, to_millis};
use crate::storage::IndexValue;

const FAR_PAST: &str = "0001-01-01T00:00:00.000Z";
const FAR_FUTURE: &str = "9999-12-31T23:59:59.999Z";

pub(super) fn values(item: &Item<'_>) -> Vec<IndexValue> {
    match item.type_name() {
        Some("Period") => {
            let Some(json) = item.to_json() else { return Vec::new() };
            let start = field(&json, "start").and_then(|s| range(&s));
            let end = field(&json, "end").and_then(|s| range(&s));
            if start.is_none() && end.is_none() {
                return Vec::new();
            }
            vec![IndexValue::Date {
                start: start.map_or_else(|| FAR_PAST.to_owned(), |r| r.0),
                end: end.map_or_else(|| FAR_FUTURE.to_owned(), |r| r.1),
            }]
        }
        Some("Timing") => {
            let Some(json) = item.to_json() else { return Vec::new() };
            let events = json.get("event").and_then(Value::as_array);
            events.into_iter().flatten().filter_map(Value::as_str).filter_map(date).collect()
        }
        _ => primitive_text(item).and_then(|text| date(text.trim_start_matches('@'))).into_iter().collect(),
    }
}

fn date(text: &str) -> Option<IndexValue> {
    range(text).map(|(start, end)| IndexValue::Date { start, end })
}

/// The first and last millisecond `text` covers, as UTC text; `None` if it is no FHIR date,
/// dateTime or instant.
pub(crate) fn range(text: &str) -> Option<(String, String)> {
    let (day, rest) = text.split_once('T').map_or((text, None), |(d, r)| (d, Some(r)));
    let mut parts = day.split('-');
    let year: i32 = digits(parts.next()?, 4)?.try_into().ok()?;
    let month = match parts.next() {
        Some(m) => Some(digits(m, 2)?),
        None => None,
    };
    let dom = match parts.next() {
        Some(d) => Some(digits(d, 2)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    let month_enum = Month::try_from(u8::try_from(month.unwrap_or(1)).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month_enum, u8::try_from(dom.unwrap_or(1)).ok()?).ok()?;
    let Some(rest) = rest.filter(|r| !r.is_empty()) else {
        let start = PrimitiveDateTime::new(date, Time::MIDNIGHT);
        let next = match (month, dom) {
            (_, Some(_)) => start.checked_add(Duration::DAY)?,
            (Some(_), None) => {
                let (y, m) =
                    if month_enum == Month::December { (year + 1, Month::January) } else { (year, month_enum.next()) };
                PrimitiveDateTime::new(Date::from_calendar_date(y, m, 1).ok()?, Time::MIDNIGHT)
            }
            (None, None) => {
                PrimitiveDateTime::new(Date::from_calendar_date(year + 1, Month::January, 1).ok()?, Time::MIDNIGHT)
            }
        };
        return Some(bounds(start.assume_utc(), next.assume_utc()));
    };
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let offset = match zone {
        "" | "Z" => UtcOffset::UTC,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            UtcOffset::from_hms(i8::try_from(sign * digits(h, 2)?).ok()?, i8::try_from(sign * digits(m, 2)?).ok()?, 0)
                .ok()?
        }
    };
    let mut hms = clock.split(':');
    let hour = u8::try_from(digits(hms.next()?, 2)?).ok()?;
    let minute = u8::try_from(digits(hms.next()?, 2)?).ok()?;
    let (second, fraction) = match hms.next() {
        Some(s) => {
            let (whole, frac) = s.split_once('.').map_or((s, None), |(w, f)| (w, Some(f)));
            (Some(u8::try_from(digits(whole, 2)?).ok()?), frac)
        }
        None => (None, None),
    };
    if hms.next().is_some() {
        return None;
    }
    let (nanos, width) = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let kept = &f[..f.len().min(9)];
            let nanos: u32 = format!("{kept:0<9}").parse().ok()?;
            // `.1` covers a tenth of a second; three or more digits, one millisecond.
            let shown = u32::try_from(kept.len().min(3)).ok()?;
            (nanos, Duration::nanoseconds(10_i64.pow(9 - shown)))
        }
        Some(_) => return None,
        None if second.is_some() => (0, Duration::SECOND),
        None => (0, Duration::MINUTE),
    };
    let time = Time::from_hms_nano(hour, minute, second.unwrap_or(0), nanos).ok()?;
    let start = PrimitiveDateTime::new(date, time).assume_offset(offset).to_offset(UtcOffset::UTC);
    Some(bounds(start, start.checked_add(width)?))
}

/// `[start, next - 1 ms]` as text, `start` truncated to the millisecond.
fn bounds(start: OffsetDateTime, next: OffsetDateTime) -> (String, String) {
    let start = to_millis(start);
    let end = (next - Duration::MILLISECOND).max(start);
    (format_instant(start), format_instant(end))
}

/// `text` as a number if it is exactly `width` ASCII digits.
fn digits(text: &str, width: usize) -> Option<i64> {
    (text.len() == width && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Option<(String, String)> {
        range(text)
    }

    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.to_owned(), b.to_owned()))
    }

    #[test]
    fn ranges_at_the_precision_written() {
        assert_eq!(r("2020"), pair("2020-01-01T00:00:00.000Z", "2020-12-31T23:59:59.999Z"));
        assert_eq!(r("2020-02"), pair("2020-02-01T00:00:00.000Z", "2020-02-29T23:59:59.999Z"));
        assert_eq!(r("2020-12"), pair("2020-12-01T00:00:00.000Z", "2020-12-31T23:59:59.999Z"));
        assert_eq!(r("1974-12-25"), pair("1974-12-25T00:00:00.000Z", "1974-12-25T23:59:59.999Z"));
        assert_eq!(r("2013-04-02T09:30:10+01:00"), pair("2013-04-02T08:30:10.000Z", "2013-04-02T08:30:10.999Z"));
        assert_eq!(r("2013-04-02T09:30:10.1Z"), pair("2013-04-02T09:30:10.100Z", "2013-04-02T09:30:10.199Z"));
        assert_eq!(r("2013-04-02T09:30:10.12345Z"), pair("2013-04-02T09:30:10.123Z", "2013-04-02T09:30:10.123Z"));
        assert_eq!(r("2013-04-02T09:30"), pair("2013-04-02T09:30:00.000Z", "2013-04-02T09:30:59.999Z"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["20", "2020-13", "2020-02-30", "2020-01-01T25:00:00Z", "x"] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }
}
