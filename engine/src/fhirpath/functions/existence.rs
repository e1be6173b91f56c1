//! Existence functions: `empty`, `exists`, `all`, `allTrue`, `anyTrue`, `allFalse`,
//! `anyFalse`, `subsetOf`, `supersetOf`, `count`, `distinct`, `isDistinct`, `not`.

use super::{Call, Output, boolean};
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::operators::{dedupe, dedupe_cost, equal, to_bool};
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "empty" => boolean(c.focus.is_empty()),
        "exists" => exists(c),
        "all" => all(c),
        "allTrue" => flags(c, |b| b.iter().all(|x| *x)),
        "anyTrue" => flags(c, |b| b.iter().any(|x| *x)),
        "allFalse" => flags(c, |b| b.iter().all(|x| !*x)),
        "anyFalse" => flags(c, |b| b.iter().any(|x| !*x)),
        "subsetOf" => c.arg(0).and_then(|other| {
            c.ctx.spend_pairs(c.focus.len(), other.len())?;
            boolean(subset(&c.focus, &other))
        }),
        "supersetOf" => c.arg(0).and_then(|other| {
            c.ctx.spend_pairs(c.focus.len(), other.len())?;
            boolean(subset(&other, &c.focus))
        }),
        "count" => Ok(vec![Item::Integer(c.focus.len() as i64)]),
        "distinct" | "isDistinct" => {
            let compared = dedupe_cost(&c.focus);
            c.ctx.spend_pairs(compared, compared).and_then(|()| {
                let kept = dedupe(c.focus.iter().cloned());
                if c.name == "distinct" { Ok(kept) } else { boolean(kept.len() == c.focus.len()) }
            })
        }
        "not" => match to_bool(&c.focus) {
            Ok(Some(b)) => boolean(!b),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

fn exists<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    if c.args.is_empty() {
        return boolean(!c.focus.is_empty());
    }
    for (i, item) in c.focus.iter().enumerate() {
        if to_bool(&c.lambda(0, item, i)?)? == Some(true) {
            return boolean(true);
        }
    }
    boolean(false)
}

fn all<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    for (i, item) in c.focus.iter().enumerate() {
        if to_bool(&c.lambda(0, item, i)?)? != Some(true) {
            return boolean(false);
        }
    }
    boolean(true)
}

fn flags<'a>(c: &Call<'_, 'a, '_>, test: fn(&[bool]) -> bool) -> Output<'a> {
    let mut values = Vec::new();
    for item in &c.focus {
        match item.system().as_deref() {
            Some(Item::Boolean(b)) => values.push(*b),
            _ => return Err(FhirPathError::eval(format!("`{}()` needs booleans", c.name))),
        }
    }
    boolean(test(&values))
}

fn subset(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    a.iter().all(|x| b.iter().any(|y| equal(x, y) == Some(true)))
}
