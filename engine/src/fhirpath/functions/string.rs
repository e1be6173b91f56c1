//! String functions: `indexOf`, `substring`, `startsWith`, `endsWith`, `contains`, `upper`,
//! `lower`, `replace`, `length`, `toChars`, `trim`, `split`, `join`, and with regular
//! expressions (the `regex` crate's syntax, `.` matching newlines) `matches`, `matchesFull`,
//! `replaceMatches`.

use super::{Call, Output, boolean};
use crate::fhirpath::error::{FhirPathError, Result};
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    let known = matches!(
        c.name,
        "indexOf"
            | "substring"
            | "startsWith"
            | "endsWith"
            | "contains"
            | "upper"
            | "lower"
            | "replace"
            | "length"
            | "toChars"
            | "trim"
            | "split"
            | "matches"
            | "matchesFull"
            | "replaceMatches"
    );
    if c.name == "join" {
        return Some(join(c));
    }
    known.then(|| {
        let Some(text) = input(c)? else { return Ok(Vec::new()) };
        string_function(c, &text)
    })
}

/// The focus as a single string; `None` when empty.
fn input(c: &Call<'_, '_, '_>) -> Result<Option<String>> {
    match c.single()? {
        None => Ok(None),
        Some(Item::String(s)) => Ok(Some(s)),
        Some(_) => Err(FhirPathError::eval(format!("`{}()` needs a string", c.name))),
    }
}

fn string_function<'a>(c: &Call<'_, 'a, '_>, text: &str) -> Output<'a> {
    let string = |s: String| Ok(vec![Item::String(s)]);
    macro_rules! arg {
        ($i:expr) => {
            match c.string_arg($i)? {
                Some(s) => s,
                None => return Ok(Vec::new()),
            }
        };
    }
    match c.name {
        "indexOf" => {
            let needle = arg!(0);
            let index = text.find(&needle).map_or(-1, |byte| text[..byte].chars().count() as i64);
            Ok(vec![Item::Integer(index)])
        }
        "substring" => {
            let chars: Vec<char> = text.chars().collect();
            let Some(start) = c.integer_arg(0)? else { return Ok(Vec::new()) };
            let Ok(start) = usize::try_from(start) else { return Ok(Vec::new()) };
            if start >= chars.len() {
                return Ok(Vec::new());
            }
            let len = match c.args.len() {
                1 => chars.len(),
                _ => match c.integer_arg(1)? {
                    Some(n) => usize::try_from(n).unwrap_or(0),
                    None => chars.len(),
                },
            };
            string(chars[start..].iter().take(len).collect())
        }
        "startsWith" => boolean(text.starts_with(&arg!(0))),
        "endsWith" => boolean(text.ends_with(&arg!(0))),
        "contains" => boolean(text.contains(&arg!(0))),
        "upper" => string(text.to_uppercase()),
        "lower" => string(text.to_lowercase()),
        "trim" => string(text.trim().to_owned()),
        "replace" => {
            let (pattern, replacement) = (arg!(0), arg!(1));
            if pattern.is_empty() {
                let mut out = replacement.clone();
                for ch in text.chars() {
                    out.push(ch);
                    out.push_str(&replacement);
                }
                return string(out);
            }
            string(text.replace(&pattern, &replacement))
        }
        "length" => Ok(vec![Item::Integer(text.chars().count() as i64)]),
        "toChars" => Ok(text.chars().map(|ch| Item::String(ch.to_string())).collect()),
        "split" => {
            let separator = arg!(0);
            Ok(text.split(separator.as_str()).map(|s| Item::String(s.to_owned())).collect())
        }
        "matches" => boolean(regex(&arg!(0))?.is_match(text)),
        "matchesFull" => boolean(regex(&format!("^(?:{})$", arg!(0)))?.is_match(text)),
        "replaceMatches" => {
            let (pattern, replacement) = (arg!(0), arg!(1));
            if pattern.is_empty() {
                return string(text.to_owned());
            }
            string(regex(&pattern)?.replace_all(text, replacement.as_str()).into_owned())
        }
        _ => Err(FhirPathError::unsupported(format!("`{}()` is not supported", c.name))),
    }
}

fn join<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    let separator = if c.args.is_empty() { String::new() } else { c.string_arg(0)?.unwrap_or_default() };
    let mut parts = Vec::new();
    for item in &c.focus {
        match item.system().as_deref() {
            Some(Item::String(s)) => parts.push(s.clone()),
            _ => return Err(FhirPathError::eval("`join()` needs strings")),
        }
    }
    Ok(vec![Item::String(parts.join(&separator))])
}

/// Compiles a pattern with a size bound, so hostile patterns fail instead of exhausting memory.
fn regex(pattern: &str) -> Result<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .dot_matches_new_line(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| FhirPathError::eval(format!("invalid regular expression `{pattern}`: {e}")))
}
