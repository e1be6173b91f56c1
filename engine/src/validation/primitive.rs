//! Formats of the R4 primitive types (<https://hl7.org/fhir/R4/datatypes.html#primitive>), checked
//! with hand-written code equivalent to the spec's regexes, plus the JSON representation rules
//! (<https://hl7.org/fhir/R4/json.html#primitive>): booleans are JSON booleans, integers and
//! decimals JSON numbers, everything else JSON strings, never empty.

use serde_json::Value;

use super::datetime;

/// Checks a (non-null) JSON value against primitive type `type_name`. The error is a lowercase
/// message naming the type and quoting the value.
pub(crate) fn check(type_name: &str, value: &Value) -> Result<(), String> {
    match type_name {
        "boolean" => match value {
            Value::Bool(_) => Ok(()),
            other => Err(expected("boolean", "a JSON boolean", other)),
        },
        "integer" => integer(type_name, value, i64::from(i32::MIN)),
        "unsignedInt" => integer(type_name, value, 0),
        "positiveInt" => integer(type_name, value, 1),
        "decimal" => match value {
            Value::Number(_) => Ok(()),
            other => Err(expected("decimal", "a JSON number", other)),
        },
        _ => match value {
            Value::String(s) => string(type_name, s),
            other => Err(expected(type_name, "a JSON string", other)),
        },
    }
}

fn integer(type_name: &str, value: &Value, min: i64) -> Result<(), String> {
    let Value::Number(n) = value else {
        return Err(expected(type_name, "a JSON number", value));
    };
    match n.as_i64() {
        Some(i) if i >= min && i <= i64::from(i32::MAX) => Ok(()),
        _ => Err(invalid(type_name, &n.to_string())),
    }
}

fn string(type_name: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("empty string is not a valid {type_name}"));
    }
    let ok = match type_name {
        "string" | "markdown" => return text(type_name, s),
        "code" => code(s),
        "id" => s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        "uri" | "url" | "canonical" => !s.chars().any(is_space),
        "oid" => oid(s),
        "uuid" => uuid(s),
        "base64Binary" => base64(s),
        "date" => datetime::date(s),
        "dateTime" => datetime::date_time(s),
        "instant" => datetime::instant(s),
        "time" => datetime::time(s),
        "xhtml" => return super::xhtml::check(s),
        _ => true,
    };
    if ok { Ok(()) } else { Err(invalid(type_name, s)) }
}

/// Whitespace as `\s` of the spec's regexes.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// The most bytes a `string` may hold: "Strings SHALL NOT exceed 1MB in size"
/// (<https://hl7.org/fhir/R4/datatypes.html#string>).
pub(crate) const MAX_STRING_BYTES: usize = 1024 * 1024;

/// `string`/`markdown`: `[ \r\n\t\S]+`, at most [`MAX_STRING_BYTES`], and no control characters
/// other than tab, CR and LF (<https://hl7.org/fhir/R4/datatypes.html#string>).
fn text(type_name: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_STRING_BYTES {
        return Err(format!(
            "invalid {type_name}: {} bytes, longer than the 1 MB ({MAX_STRING_BYTES} bytes) a string may hold",
            s.len()
        ));
    }
    match s.chars().find(|&c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}') {
        Some(c) => Err(format!("invalid {type_name}: control character U+{:04X}", u32::from(c))),
        None => Ok(()),
    }
}

/// `[^\s]+(\s[^\s]+)*`: no leading, trailing or doubled whitespace.
fn code(s: &str) -> bool {
    let mut previous_space = true;
    for c in s.chars() {
        let space = is_space(c);
        if space && previous_space {
            return false;
        }
        previous_space = space;
    }
    !previous_space
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
fn oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else { return false };
    let mut parts = rest.split('.');
    let first_ok = matches!(parts.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = parts.all(|p| {
        count += 1;
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    });
    first_ok && rest_ok && count >= 1
}

/// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
fn uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else { return false };
    let groups: Vec<&str> = rest.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`: groups of four base64 characters, whitespace between
/// groups allowed.
fn base64(s: &str) -> bool {
    let mut in_group = 0;
    let mut groups = 0;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            in_group += 1;
            if in_group == 4 {
                in_group = 0;
                groups += 1;
            }
        } else if !(is_space(c) && in_group == 0) {
            return false;
        }
    }
    in_group == 0 && groups > 0
}

/// The message for a value of the wrong JSON type.
fn expected(type_name: &str, want: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string `{}`", shorten(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    format!("a {type_name} must be {want}, found {found}")
}

fn invalid(type_name: &str, value: &str) -> String {
    format!("invalid {type_name} `{}`", shorten(value))
}

/// User input as quoted in messages: at most 64 characters.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[path = "primitive_tests.rs"]
mod tests;
