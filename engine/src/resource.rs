//! Small helpers on resources: id syntax, instants, version tags, `meta`.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Whether `id` is a valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Truncates an instant to the millisecond precision the server records.
pub(crate) fn to_millis(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let nanos = t.nanosecond() - t.nanosecond() % 1_000_000;
    t.replace_nanosecond(nanos).unwrap_or(t)
}

/// Formats an instant as FHIR `instant` text with milliseconds, e.g. `2026-11-26T07:00:00.123Z`.
pub(crate) fn format_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Formats an instant for the HTTP `Last-Modified` header.
pub(crate) fn format_http_date(t: OffsetDateTime) -> String {
    let secs = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Parses an HTTP date (`If-Modified-Since`).
pub(crate) fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let t = httpdate::parse_http_date(text.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()
}

/// Parses a FHIR `instant` or `dateTime` of any precision (`2020`, `2020-03`, `2020-03-04`,
/// `2020-03-04T10:00:00Z`...) as the first instant it covers. Times without a zone are UTC.
pub(crate) fn parse_date_time_start(text: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let (year, rest) = (text.get(0..4)?, text.get(4..).unwrap_or(""));
    let year: i32 = year.parse().ok()?;
    let mut month = 1u8;
    let mut day = 1u8;
    match rest.len() {
        0 => {}
        3 if rest.starts_with('-') => month = rest.get(1..3)?.parse().ok()?,
        6 if rest.starts_with('-') && rest.get(3..4) == Some("-") => {
            month = rest.get(1..3)?.parse().ok()?;
            day = rest.get(4..6)?.parse().ok()?;
        }
        _ => {
            // dateTime without seconds or zone, e.g. `2020-03-04T10:00`: try with a zone appended.
            let with_zone = format!("{text}Z");
            if let Ok(t) = OffsetDateTime::parse(&with_zone, &Rfc3339) {
                return Some(t);
            }
            let with_secs = format!("{text}:00Z");
            return OffsetDateTime::parse(&with_secs, &Rfc3339).ok();
        }
    }
    let date = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc())
}

/// The weak ETag of a version: `W/"3"`.
pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an ETag (`W/"3"`, `"3"` or `3`) into a version number.
pub(crate) fn parse_etag(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t.trim_matches('"');
    t.parse().ok()
}

/// Sets `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta`, and places `meta`
/// right after `id` for readability.
pub(crate) fn set_meta(resource: &mut Map<String, Value>, version: u64, last_updated: OffsetDateTime) {
    let mut meta = match resource.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert("lastUpdated".into(), Value::String(format_instant(last_updated)));
    let mut out = Map::with_capacity(resource.len() + 1);
    let mut meta = Some(Value::Object(meta));
    for (k, v) in std::mem::take(resource) {
        let is_id = k == "id";
        out.insert(k, v);
        if is_id {
            if let Some(m) = meta.take() {
                out.insert("meta".into(), m);
            }
        }
    }
    if let Some(m) = meta {
        out.insert("meta".into(), m);
    }
    *resource = out;
}

/// The resource without server-managed `meta.versionId` / `meta.lastUpdated`, for comparing
/// content across versions.
pub(crate) fn without_server_meta(resource: &Map<String, Value>) -> Map<String, Value> {
    let mut r = resource.clone();
    if let Some(Value::Object(meta)) = r.get_mut("meta") {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            r.remove("meta");
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("abc-1.2"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(is_valid_id(&"a".repeat(64)));
    }

    #[test]
    fn instants_round_trip_at_millisecond_precision() {
        let t = parse_date_time_start("2026-11-26T07:00:00.123456Z").map(to_millis);
        assert_eq!(t.map(format_instant).as_deref(), Some("2026-11-26T07:00:00.123Z"));
    }

    #[test]
    fn partial_dates_start_at_their_first_instant() {
        let f = |s| parse_date_time_start(s).map(format_instant);
        assert_eq!(f("2020").as_deref(), Some("2020-01-01T00:00:00.000Z"));
        assert_eq!(f("2020-03").as_deref(), Some("2020-03-01T00:00:00.000Z"));
        assert_eq!(f("2020-03-04").as_deref(), Some("2020-03-04T00:00:00.000Z"));
        assert_eq!(f("2020-03-04T10:00:00+02:00").as_deref(), Some("2020-03-04T08:00:00.000Z"));
        assert_eq!(f("2020-13"), None);
        assert_eq!(f("yesterday"), None);
    }

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"4\""), Some(4));
        assert_eq!(parse_etag("5"), Some(5));
        assert_eq!(parse_etag("W/\"x\""), None);
        assert_eq!(etag(7), "W/\"7\"");
    }

    #[test]
    fn meta_is_set_after_id_and_keeps_tags() {
        let mut r = serde_json::json!({"resourceType":"Patient","id":"a","active":true,
            "meta":{"versionId":"99","tag":[{"code":"x"}]}});
        let t = parse_date_time_start("2020-01-01T00:00:00Z");
        if let (Some(obj), Some(t)) = (r.as_object_mut(), t) {
            set_meta(obj, 2, t);
        }
        let keys: Vec<_> = r.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["resourceType", "id", "meta", "active"]);
        assert_eq!(r["meta"]["versionId"], "2");
        assert_eq!(r["meta"]["lastUpdated"], "2020-01-01T00:00:00.000Z");
        assert_eq!(r["meta"]["tag"][0]["code"], "x");
    }
}
