//! One value of one parameter, parsed by the parameter's type and modifier into a [`Predicate`]
//! (search.html "Search Types" and "Modifiers"). Escapes (`\,` `\$` `\|` `\\`) are honoured.

use super::expr::{ConceptMatch, Predicate, ReferenceTarget, StringMatch, Token, TokenSystem, UriMatch};
use super::prefix::Prefix;
use crate::definitions::{Definitions, SearchParam, SearchParamType};
use crate::search::index::{date_range, normalize, number_range};

/// Why a parameter or value was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// Unknown or unsupported: skipped when lenient, a 400 when strict.
    Ignored(String),
    /// A malformed value of a known parameter: always a 400.
    Invalid(String),
}

/// The predicate for `raw` (one comma-separated alternative) of `param` with `modifier`.
pub(super) fn parse(
    defs: &Definitions,
    param: &SearchParam,
    modifier: Option<&str>,
    raw: &str,
) -> Result<Predicate, Problem> {
    let code = &param.code;
    if modifier == Some("missing") {
        return match raw {
            "true" => Ok(Predicate::Missing(true)),
            "false" => Ok(Predicate::Missing(false)),
            _ => Err(Problem::Invalid(format!("`{code}:missing` must be `true` or `false`, not `{raw}`"))),
        };
    }
    if raw.is_empty() {
        return Err(Problem::Invalid(format!("empty value for `{code}`")));
    }
    let unsupported = |m: &str| Problem::Ignored(format!("modifier `:{m}` is not supported on `{code}`"));
    match param.kind {
        SearchParamType::String => {
            let mode = match modifier {
                None => StringMatch::StartsWith,
                Some("exact") => StringMatch::Exact,
                Some("contains") => StringMatch::Contains,
                Some(m) => return Err(unsupported(m)),
            };
            let text = unescape(raw);
            let value = if mode == StringMatch::Exact { text } else { normalize(&text) };
            Ok(Predicate::String { mode, value })
        }
        SearchParamType::Token => match modifier {
            None => Ok(Predicate::Token { not: false, token: token(raw) }),
            Some("not") => Ok(Predicate::Token { not: true, token: token(raw) }),
            Some("text") => Ok(Predicate::TokenText(normalize(&unescape(raw)))),
            Some("of-type") => match split_escaped(raw, '|').as_slice() {
                [system, code, value] if !code.is_empty() && !value.is_empty() => Ok(Predicate::OfType {
                    type_system: unescape(system),
                    type_code: unescape(code),
                    value: unescape(value),
                }),
                _ => Err(Problem::Invalid(format!("`{code}:of-type` needs `system|code|value`, not `{raw}`"))),
            },
            Some("in") => Ok(Predicate::Concepts { modifier: ConceptMatch::In, value: unescape(raw) }),
            Some("not-in") => Ok(Predicate::Concepts { modifier: ConceptMatch::NotIn, value: unescape(raw) }),
            Some("above") => Ok(Predicate::Concepts { modifier: ConceptMatch::Above, value: raw.to_owned() }),
            Some("below") => Ok(Predicate::Concepts { modifier: ConceptMatch::Below, value: raw.to_owned() }),
            Some(m) => Err(unsupported(m)),
        },
        SearchParamType::Reference => reference(param, modifier, raw),
        SearchParamType::Uri => {
            let mode = match modifier {
                None => UriMatch::Exact,
                Some("above") => UriMatch::Above,
                Some("below") => UriMatch::Below,
                Some(m) => return Err(unsupported(m)),
            };
            Ok(Predicate::Uri { mode, value: unescape(raw) })
        }
        SearchParamType::Date | SearchParamType::Number | SearchParamType::Quantity => match modifier {
            None => ordered(param, raw),
            Some(m) => Err(unsupported(m)),
        },
        SearchParamType::Composite => match modifier {
            None => composite(defs, param, raw),
            Some(m) => Err(unsupported(m)),
        },
        SearchParamType::Special => Err(Problem::Ignored(format!("special parameter `{code}` is not supported"))),
    }
}

/// A token in its four forms: `code`, `system|code`, `|code`, `system|`.
pub(super) fn token(raw: &str) -> Token {
    let parts = split_escaped(raw, '|');
    match parts.as_slice() {
        [code] => Token { system: TokenSystem::Any, code: Some(unescape(code)) },
        [system, rest @ ..] => {
            let code = unescape(&rest.join("|"));
            Token {
                system: if system.is_empty() { TokenSystem::None } else { TokenSystem::Is(unescape(system)) },
                code: (!code.is_empty()).then_some(code),
            }
        }
        [] => Token { system: TokenSystem::Any, code: None },
    }
}

fn reference(param: &SearchParam, modifier: Option<&str>, raw: &str) -> Result<Predicate, Problem> {
    let code = &param.code;
    let text = unescape(raw);
    let types = match modifier {
        None => Vec::new(),
        Some("identifier") => return Ok(Predicate::ReferenceIdentifier(token(raw))),
        Some(t) if param.target.iter().any(|target| target == t) => vec![t.to_owned()],
        Some(m) => return Err(Problem::Ignored(format!("modifier `:{m}` is not a target type of `{code}`"))),
    };
    if text.contains("://") || text.starts_with("urn:") {
        return Ok(Predicate::Reference(ReferenceTarget::Url(text)));
    }
    if text.contains("/_history/") {
        return Ok(Predicate::Unsupported(format!("versioned reference `{text}` in `{code}` is not supported")));
    }
    let (types, id) = match text.rsplit_once('/') {
        Some((kind, id)) => {
            if (!param.target.is_empty() && !param.target.iter().any(|target| target == kind))
                || types.first().is_some_and(|t| t != kind)
            {
                return Err(Problem::Invalid(format!("`{kind}` is not a target type of `{code}` in `{text}`")));
            }
            (vec![kind.to_owned()], id.to_owned())
        }
        None => (types, text),
    };
    if id.is_empty() {
        return Err(Problem::Invalid(format!("empty id in `{code}={raw}`")));
    }
    Ok(Predicate::Reference(ReferenceTarget::Local { types, id }))
}

/// `date`, `number` and `quantity`: a prefix and the value's range.
fn ordered(param: &SearchParam, raw: &str) -> Result<Predicate, Problem> {
    let code = &param.code;
    let (prefix, rest) = Prefix::split(raw);
    let bad = |what: &str| Problem::Invalid(format!("`{raw}` is not a valid {what} for `{code}`"));
    match param.kind {
        SearchParamType::Date => {
            let (start, end) = date_range(rest).ok_or_else(|| bad("date"))?;
            Ok(Predicate::Date { prefix, start, end })
        }
        SearchParamType::Number => {
            let (value, low, high) = number_range(rest).ok_or_else(|| bad("number"))?;
            Ok(Predicate::Number { prefix, value, low, high })
        }
        _ => {
            let parts = split_escaped(rest, '|');
            let (number, system, unit) = match parts.as_slice() {
                [number] => (number.as_str(), None, None),
                [number, system, unit] => (number.as_str(), Some(system.as_str()), Some(unit.as_str())),
                _ => return Err(bad("quantity")),
            };
            let (value, low, high) = number_range(number).ok_or_else(|| bad("quantity"))?;
            let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(unescape);
            Ok(Predicate::Quantity { prefix, value, low, high, system: some(system), code: some(unit) })
        }
    }
}

fn composite(defs: &Definitions, param: &SearchParam, raw: &str) -> Result<Predicate, Problem> {
    let code = &param.code;
    let parts = split_escaped(raw, '$');
    if parts.len() != param.component.len() {
        return Err(Problem::Invalid(format!(
            "`{code}` needs {} `$`-separated values, not `{raw}`",
            param.component.len()
        )));
    }
    let mut components = Vec::new();
    let mut values = Vec::new();
    for (component, part) in param.component.iter().zip(&parts) {
        let Some(inner) = defs.search_param_by_url(&component.definition) else {
            return Err(Problem::Ignored(format!("a component of `{code}` is not defined")));
        };
        components.push(inner.code.clone());
        values.push(parse(defs, inner, None, part)?);
    }
    Ok(Predicate::Composite { components, values })
}

/// Splits at unescaped `sep`, keeping escapes in the parts (they are removed by [`unescape`]).
pub(super) fn split_escaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let current = parts.last_mut();
        match (c, current) {
            ('\\', Some(cur)) => {
                cur.push('\\');
                if let Some(next) = chars.next() {
                    cur.push(next);
                }
            }
            (c, Some(_)) if c == sep => parts.push(String::new()),
            (c, Some(cur)) => cur.push(c),
            (_, None) => {}
        }
    }
    parts
}

/// Removes the backslash escapes of search.html ("Escaping Search Parameters").
pub(super) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}
