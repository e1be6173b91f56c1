//! Conditions on one flattened index entry (or one component of a composite entry), per value
//! type and prefix (search.html "Prefixes"), in Cosmos SQL. Dates and numbers compare as the
//! engine's [`comparison`] formulas say (as in the relational stores), on the fields `st`, `en`
//! (millisecond instants as text) and `n`.

use fhirgate_engine::search::query::comparison::{self, Column, Formula};
use fhirgate_engine::search::query::{Predicate, Prefix, ReferenceTarget, StringMatch, Token, TokenSystem, UriMatch};

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
        Predicate::Date { prefix, start, end } => {
            render(&comparison::date(*prefix, start, end), x, &mut |v: &String| p.text(v))
        }
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

/// A date or number comparison ([`comparison`]) on the entry `x`.
fn render<V>(formula: &Formula<V>, x: &str, bind: &mut impl FnMut(&V) -> String) -> String {
    let column = |c: Column| match c {
        Column::Start => format!("{x}.st"),
        Column::End => format!("{x}.en"),
        Column::Value => format!("{x}.n"),
    };
    formula.infix(&column, bind)
}

/// A number comparison, or why the value is not one.
fn number(p: &mut Params, x: &str, prefix: Prefix, value: &str, low: &str, high: &str) -> Result<String, Error> {
    let formula = comparison::number(prefix, value, low, high).map_err(Error::Unsupported)?;
    Ok(render(&formula, x, &mut |v: &f64| p.number(*v)))
}
