//! Filtering and projection: `where`, `select`, `repeat`, `aggregate`, `ofType`, and the function forms of
//! `is` and `as`.

use super::{Call, Output};
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::eval::Frame;
use crate::fhirpath::eval::{check_type, is_type, type_op};
use crate::fhirpath::operators::{equal, to_bool};
use crate::fhirpath::value::Item;

/// Bound on the items `repeat()` collects.
const MAX_REPEAT: usize = 100_000;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "where" => filter(c),
        "select" => select(c),
        "repeat" => repeat(c),
        "aggregate" => aggregate(c),
        "ofType" => c.type_arg(0).and_then(|t| {
            check_type(&t)?;
            Ok(c.focus.iter().filter(|i| is_type(i, &t)).cloned().collect())
        }),
        "is" => c.type_arg(0).and_then(|t| type_op(c.focus.clone(), &t, false)),
        // The function form keeps the N1 rule (one item); the operator filters (see `type_op`).
        "as" if c.focus.len() > 1 => Err(FhirPathError::eval("`as()` needs a single item")),
        "as" => c.type_arg(0).and_then(|t| type_op(c.focus.clone(), &t, true)),
        _ => return None,
    })
}

fn filter<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(1, 1)?;
    let mut out = Vec::new();
    for (i, item) in c.focus.iter().enumerate() {
        if to_bool(&c.lambda(0, item, i)?)? == Some(true) {
            out.push(item.clone());
        }
    }
    Ok(out)
}

fn select<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(1, 1)?;
    let mut out = Vec::new();
    for (i, item) in c.focus.iter().enumerate() {
        out.extend(c.lambda(0, item, i)?);
    }
    Ok(out)
}

fn repeat<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(1, 1)?;
    let mut out: Vec<Item<'a>> = Vec::new();
    let mut queue = c.focus.clone();
    while !queue.is_empty() {
        let mut next = Vec::new();
        for (i, item) in queue.iter().enumerate() {
            for found in c.lambda(0, item, i)? {
                c.ctx.spend_pairs(out.len(), 1)?;
                if !out.iter().any(|o| equal(o, &found) == Some(true)) {
                    out.push(found.clone());
                    next.push(found);
                }
            }
        }
        if out.len() > MAX_REPEAT {
            return Err(FhirPathError::eval("`repeat()` collected too many items"));
        }
        queue = next;
    }
    Ok(out)
}

fn aggregate<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    c.arity(1, 2)?;
    let mut total = if c.args.len() == 2 { c.arg(1)? } else { Vec::new() };
    for (i, item) in c.focus.iter().enumerate() {
        let frame = Frame { this: Some(item.clone()), index: Some(i), total: Some(total) };
        total = c.ctx.eval(&c.args[0], std::slice::from_ref(item), &frame)?;
    }
    Ok(total)
}
