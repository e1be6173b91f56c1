//! Conditions on one row of a search table (or one component row of `search_composite`, whose
//! columns have the same names), per value type and prefix (search.html "Prefixes").
//!
//! Dates and numbers compare as the engine's [`comparison`] formulas say, on the columns
//! `start_at`, `end_at` (millisecond instants as text) and `num`.

use fhirgate_engine::search::query::comparison::{self, Column, Formula};
use fhirgate_engine::search::query::{Predicate, Prefix, ReferenceTarget, StringMatch, Token, TokenSystem, UriMatch};

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
        Predicate::Date { prefix, start, end } => {
            render(&comparison::date(*prefix, start, end), a, &mut |v: &String| b.text(v))
        }
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

/// A date or number comparison ([`comparison`]) on the row aliased `a`.
fn render<V>(formula: &Formula<V>, a: &str, bind: &mut impl FnMut(&V) -> String) -> String {
    let column = |c: Column| match c {
        Column::Start => format!("{a}.start_at"),
        Column::End => format!("{a}.end_at"),
        Column::Value => format!("{a}.num"),
    };
    formula.infix(&column, bind)
}

/// A number comparison, or why the value is not one.
fn number(b: &mut Binder, a: &str, prefix: Prefix, value: &str, low: &str, high: &str) -> Result<String, Unsupported> {
    let formula = comparison::number(prefix, value, low, high).map_err(Unsupported)?;
    Ok(render(&formula, a, &mut |v: &f64| b.bind(Bind::Real(*v))))
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
