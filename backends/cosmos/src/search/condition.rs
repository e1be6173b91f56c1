//! Conditions on one flattened index entry (or one component of a composite entry), per value
//! type and prefix (search.html "Prefixes"), in Cosmos SQL. The semantics are those of the
//! relational stores: a date is the inclusive range `[st, en]` of millisecond instants as text;
//! a number or quantity is its value `n`, and the implicit-precision range of the *search* value
//! decides `eq`.

use fhirgate_engine::search::query::{
    Predicate, Prefix, ReferenceTarget, StringMatch, Token, TokenSystem, UriMatch, approximate_dates,
    approximate_number,
};

use super::Params;
use crate::error::Error;

/// The condition for a value predicate on the entry `x`.
pub(super) fn value(p: &mut Params, x: &str, predicate: &Predicate) -> Result<String, Error> {
    Ok(match predicate {
        Predicate::String { mode: StringMatch::StartsWith, value } => format!("STARTSWITH({x}.v, {})", p.text(value)),
        Predicate::String { mode: StringMatch::Exact, value } => format!("{x}.e = {}", p.text(value)),
        Predicate::String { mode: StringMatch::Contains, value } => format!("CONTAINS({x}.v, {})", p.text(value)),
        Predicate::Token { not: false, token: t } => token(p, x, t),
        Predicate::Reference(ReferenceTarget::Local { types, id }) => {
            let mut c = format!("{x}.ri = {}", p.text(id));
            if !types.is_empty() {
                c.push_str(&format!(" AND ARRAY_CONTAINS({}, {x}.rt)", p.list(types)));
            }
            c
        }
        Predicate::Reference(ReferenceTarget::Url(url)) => format!("{x}.r = {}", p.text(url)),
        Predicate::Date { prefix, start, end } => date(p, x, *prefix, start, end),
        Predicate::Number { prefix, value, low, high } => number(p, x, *prefix, value, low, high)?,
        Predicate::Quantity { prefix, value, low, high, system, code } => {
            let mut c = number(p, x, *prefix, value, low, high)?;
            if let Some(system) = system {
                c.push_str(&format!(" AND {x}.sy = {}", p.text(system)));
            }
            match (system, code) {
                (Some(_), Some(code)) => c.push_str(&format!(" AND {x}.co = {}", p.text(code))),
                // `5.4||mg`: the unit as code or as written.
                (None, Some(code)) => {
                    let code = p.text(code);
                    c.push_str(&format!(" AND ({x}.co = {code} OR {x}.un = {code})"));
                }
                (_, None) => {}
            }
            c
        }
        Predicate::Uri { mode: UriMatch::Exact, value } => format!("{x}.v = {}", p.text(value)),
        Predicate::Uri { mode: UriMatch::Below, value } => format!("STARTSWITH({x}.v, {})", p.text(value)),
        // The stored uri is the value or one of its prefixes.
        Predicate::Uri { mode: UriMatch::Above, value } => {
            let v = p.text(value);
            format!("(IS_STRING({x}.v) AND STARTSWITH({v}, {x}.v))")
        }
        other => return Err(Error::Unsupported(format!("`{other:?}` cannot be a component of a composite search"))),
    })
}

/// A token's system and code.
pub(super) fn token(p: &mut Params, x: &str, token: &Token) -> String {
    let mut c = Vec::new();
    match &token.system {
        TokenSystem::Any => {}
        TokenSystem::None => c.push(format!("NOT IS_DEFINED({x}.sy)")),
        TokenSystem::Is(system) => c.push(format!("{x}.sy = {}", p.text(system))),
    }
    if let Some(code) = &token.code {
        c.push(format!("{x}.co = {}", p.text(code)));
    }
    if c.is_empty() { "true".to_owned() } else { c.join(" AND ") }
}

/// A date range `[st, en]` against the search range `[start, end]`.
fn date(p: &mut Params, x: &str, prefix: Prefix, start: &str, end: &str) -> String {
    let (start, end) = match prefix {
        Prefix::Ap => approximate_dates(start, end),
        _ => (start.to_owned(), end.to_owned()),
    };
    let (s, e) = (p.text(&start), p.text(&end));
    let (rs, re) = (format!("{x}.st"), format!("{x}.en"));
    let within = format!("({rs} >= {s} AND {re} <= {e})");
    match prefix {
        Prefix::Eq => within,
        Prefix::Ne => format!("NOT {within}"),
        Prefix::Gt => format!("{re} > {e}"),
        Prefix::Lt => format!("{rs} < {s}"),
        Prefix::Ge => format!("({re} > {e} OR {within})"),
        Prefix::Le => format!("({rs} < {s} OR {within})"),
        Prefix::Sa => format!("{rs} > {e}"),
        Prefix::Eb => format!("{re} < {s}"),
        // Overlaps the search range widened by 10% of its distance from now.
        Prefix::Ap => format!("({rs} <= {e} AND {re} >= {s})"),
    }
}

/// A number's value `n` against the search value and its implicit range `[low, high)`.
fn number(p: &mut Params, x: &str, prefix: Prefix, value: &str, low: &str, high: &str) -> Result<String, Error> {
    let parse = |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| Error::Unsupported(format!("`{s}` is not a number")))
    };
    let (v, l, h) = (parse(value)?, parse(low)?, parse(high)?);
    let n = format!("{x}.n");
    let mut real = |f: f64| p.number(f);
    Ok(match prefix {
        Prefix::Eq => format!("({n} >= {} AND {n} < {})", real(l), real(h)),
        Prefix::Ne => format!("NOT ({n} >= {} AND {n} < {})", real(l), real(h)),
        Prefix::Gt | Prefix::Sa => format!("{n} > {}", real(v)),
        Prefix::Lt | Prefix::Eb => format!("{n} < {}", real(v)),
        Prefix::Ge => format!("{n} >= {}", real(v)),
        Prefix::Le => format!("{n} <= {}", real(v)),
        Prefix::Ap => {
            let (low, high) = approximate_number(v, l, h);
            format!("({n} >= {} AND {n} <= {})", real(low), real(high))
        }
    })
}
