//! `${name}` substitution in params, URLs, headers, fixtures and assertion values, with the
//! built-in placeholders of Touchstone: `${UUID}` (a new v4 UUID each time), `${CURRENTDATE}`
//! (`YYYY-MM-DD`, UTC) and `${CURRENTDATETIME}` (RFC 3339, UTC), the two dates also with a day
//! offset (`${CURRENTDATE+7}`, `${CURRENTDATE-1}`). Unknown names stay as written.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

/// Replaces every `${name}` for which `lookup` or a built-in gives a value.
pub(crate) fn substitute(text: &str, lookup: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match lookup(name).or_else(|| builtin(name, OffsetDateTime::now_utc())) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of a built-in placeholder at time `now`.
fn builtin(name: &str, now: OffsetDateTime) -> Option<String> {
    if name == "UUID" {
        return Some(uuid::Uuid::new_v4().to_string());
    }
    let (base, offset) = match name.find(['+', '-']) {
        Some(at) => (&name[..at], name[at..].trim_start_matches('+').parse::<i64>().ok()?),
        None => (name, 0),
    };
    let when = now.checked_add(Duration::days(offset))?;
    match base {
        "CURRENTDATE" => when.format(format_description!("[year]-[month]-[day]")).ok(),
        "CURRENTDATETIME" => when.replace_nanosecond(0).ok()?.format(&Rfc3339).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::{builtin, substitute};

    #[test]
    fn names_are_replaced_and_unknown_ones_kept() {
        let mut lookup = |name: &str| (name == "id").then(|| "123".to_owned());
        assert_eq!(substitute("/${id}/_history/${vid}", &mut lookup), "/123/_history/${vid}");
        assert_eq!(substitute("${id}${id}", &mut lookup), "123123");
        assert_eq!(substitute("no variables", &mut lookup), "no variables");
        assert_eq!(substitute("open ${id", &mut lookup), "open ${id");
    }

    #[test]
    fn builtins() {
        let now = datetime!(2024-02-28 10:11:12.5 UTC);
        assert_eq!(builtin("CURRENTDATE", now).as_deref(), Some("2024-02-28"));
        assert_eq!(builtin("CURRENTDATE+2", now).as_deref(), Some("2024-03-01"));
        assert_eq!(builtin("CURRENTDATE-28", now).as_deref(), Some("2024-01-31"));
        assert_eq!(builtin("CURRENTDATETIME", now).as_deref(), Some("2024-02-28T10:11:12Z"));
        assert_eq!(builtin("other", now), None);
        let mut none = |_: &str| None;
        let uuid = substitute("${UUID}", &mut none);
        assert_eq!(uuid.len(), 36);
        assert_ne!(uuid, substitute("${UUID}", &mut none));
        let mut lookup = |name: &str| (name == "UUID").then(|| "mine".to_owned());
        assert_eq!(substitute("${UUID}", &mut lookup), "mine", "a script variable wins over a built-in");
    }
}
