//! Conditions on one row of a search table (or one component row of `search_composite`, whose
//! columns have the same names), per value type and prefix (search.html "Prefixes").
//!
//! Ranges: a date is an inclusive range `[start_at, end_at]` of millisecond instants as text;
//! a number or quantity is its exact value `num` (and the implicit-precision range of the
//! *search* value decides `eq`, as search.html "Searching numbers" asks).

use fhirgate_engine::search::query::{
    Predicate, Prefix, ReferenceTarget, StringMatch, Token, TokenSystem, UriMatch, approximate_dates,
    approximate_number,
};

use super::Unsupported;
use crate::bind::{Bind, Binder};

/// The highest code point: `value < prefix || MAX` bounds a prefix range (text compares byte-wise).
const MAX: char = '\u{10FFFF}';

/// The condition for a value predicate on the row aliased `a`.
pub(super) fn value(b: &mut Binder, a: &str, predicate: &Predicate) -> Result<String, Unsupported> {
    Ok(match predicate {
        Predicate::String { mode: StringMatch::StartsWith, value } => starts_with(b, &format!("{a}.value"), value),
        Predicate::String { mode: StringMatch::Exact, value } => format!("{a}.exact = {}", b.text(value)),
        Predicate::String { mode: StringMatch::Contains, value } => {
            format!("{a}.value LIKE {} ESCAPE '\\'", b.text(&format!("%{}%", escape_like(value))))
        }
        Predicate::Token { not: false, token: t } => token(b, a, t),
        Predicate::Reference(ReferenceTarget::Local { types, id }) => {
            let mut c = format!("{a}.target_id = {}", b.text(id));
            if !types.is_empty() {
                c.push_str(&format!(" AND {a}.target_type IN {}", b.list(types)));
            }
            c
        }
        Predicate::Reference(ReferenceTarget::Url(url)) => format!("{a}.reference = {}", b.text(url)),
        Predicate::Date { prefix, start, end } => date(b, a, *prefix, start, end),
        Predicate::Number { prefix, value, low, high } => number(b, a, *prefix, value, low, high)?,
        Predicate::Quantity { prefix, value, low, high, system, code } => {
            let mut c = number(b, a, *prefix, value, low, high)?;
            if let Some(system) = system {
                c.push_str(&format!(" AND {a}.system = {}", b.text(system)));
            }
            match (system, code) {
                (Some(_), Some(code)) => c.push_str(&format!(" AND {a}.code = {}", b.text(code))),
                // `5.4||mg`: the unit as code or as written.
                (None, Some(code)) => {
                    let code = b.text(code);
                    c.push_str(&format!(" AND ({a}.code = {code} OR {a}.unit = {code})"));
                }
                (_, None) => {}
            }
            c
        }
        Predicate::Uri { mode: UriMatch::Exact, value } => format!("{a}.value = {}", b.text(value)),
        Predicate::Uri { mode: UriMatch::Below, value } => starts_with(b, &format!("{a}.value"), value),
        // The stored uri is the value or one of its prefixes.
        Predicate::Uri { mode: UriMatch::Above, value } => {
            format!("{a}.value = substr({}, 1, length({a}.value))", b.text(value))
        }
        other => return Err(Unsupported(format!("`{other:?}` cannot be a component of a composite search"))),
    })
}

/// `column` starts with `prefix`, as a range so that an index on the column serves it.
pub(super) fn starts_with(b: &mut Binder, column: &str, prefix: &str) -> String {
    let upper = format!("{prefix}{MAX}");
    format!("{column} >= {} AND {column} < {}", b.text(prefix), b.text(&upper))
}

/// A token's system and code.
pub(super) fn token(b: &mut Binder, a: &str, token: &Token) -> String {
    let mut c = Vec::new();
    match &token.system {
        TokenSystem::Any => {}
        TokenSystem::None => c.push(format!("{a}.system IS NULL")),
        TokenSystem::Is(system) => c.push(format!("{a}.system = {}", b.text(system))),
    }
    if let Some(code) = &token.code {
        c.push(format!("{a}.code = {}", b.text(code)));
    }
    if c.is_empty() { "1 = 1".to_owned() } else { c.join(" AND ") }
}

/// A date range `[start_at, end_at]` against the search range `[start, end]`.
fn date(b: &mut Binder, a: &str, prefix: Prefix, start: &str, end: &str) -> String {
    let (start, end) = match prefix {
        Prefix::Ap => approximate_dates(start, end),
        _ => (start.to_owned(), end.to_owned()),
    };
    let (s, e) = (b.text(&start), b.text(&end));
    let (rs, re) = (format!("{a}.start_at"), format!("{a}.end_at"));
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

/// A number's value `num` against the search value and its implicit range `[low, high)`.
fn number(b: &mut Binder, a: &str, prefix: Prefix, value: &str, low: &str, high: &str) -> Result<String, Unsupported> {
    let parse = |s: &str| {
        s.parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| Unsupported(format!("`{s}` is not a number")))
    };
    let (v, l, h) = (parse(value)?, parse(low)?, parse(high)?);
    let n = format!("{a}.num");
    let mut real = |x: f64| b.bind(Bind::Real(x));
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

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
