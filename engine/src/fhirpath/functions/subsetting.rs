//! Subsetting: `single`, `first`, `last`, `tail`, `skip`, `take`, `intersect`, `exclude`,
//! and `sort` (FHIRPath 2.0, with `-key` for descending keys).

use super::{Call, Output};
use crate::fhirpath::error::FhirPathError;
use std::cmp::Ordering;

use crate::fhirpath::ast::Expr;
use crate::fhirpath::eval::Frame;
use crate::fhirpath::operators::{compare, equal, singleton};
use crate::fhirpath::value::Item;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    let focus = &c.focus;
    Some(match c.name {
        "single" => match focus.len() {
            0 | 1 => Ok(focus.clone()),
            _ => Err(FhirPathError::eval("`single()` found more than one item")),
        },
        "first" => Ok(focus.first().cloned().into_iter().collect()),
        "last" => Ok(focus.last().cloned().into_iter().collect()),
        "tail" => Ok(focus.iter().skip(1).cloned().collect()),
        "skip" => count(c).map(|n| focus.iter().skip(n).cloned().collect()),
        "take" => count(c).map(|n| focus.iter().take(n).cloned().collect()),
        "intersect" => c.arg(0).and_then(|other| {
            c.ctx.spend_pairs(focus.len(), other.len() + focus.len())?;
            let mut out: Vec<Item<'a>> = Vec::new();
            for item in focus {
                if other.iter().any(|o| equal(o, item) == Some(true))
                    && !out.iter().any(|o| equal(o, item) == Some(true))
                {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }),
        "exclude" => c.arg(0).and_then(|other| {
            c.ctx.spend_pairs(focus.len(), other.len())?;
            Ok(focus.iter().filter(|i| !other.iter().any(|o| equal(o, i) == Some(true))).cloned().collect())
        }),
        "sort" => sort(c),
        _ => return None,
    })
}

fn sort<'a>(c: &Call<'_, 'a, '_>) -> Output<'a> {
    // Each item with its keys: itself when there are no key expressions.
    let mut keyed = Vec::with_capacity(c.focus.len());
    for (i, item) in c.focus.iter().enumerate() {
        let mut keys = Vec::new();
        if c.args.is_empty() {
            keys.push((item.system().map(std::borrow::Cow::into_owned), false));
        }
        for arg in c.args {
            let (expr, descending) = match arg {
                Expr::Negate(inner) => (inner.as_ref(), true),
                other => (other, false),
            };
            let frame = Frame { this: Some(item.clone()), index: Some(i), total: None };
            let value = c.ctx.eval(expr, std::slice::from_ref(item), &frame)?;
            keys.push((singleton(&value)?.map(std::borrow::Cow::into_owned), descending));
        }
        keyed.push((keys, item.clone()));
    }
    let mut error = None;
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, descending), (y, _)) in a.iter().zip(b) {
            // Empty keys sort first in either direction.
            let ordering = match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => {
                    let ordering = match compare(x, y) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(e) => {
                            error.get_or_insert(e);
                            Ordering::Equal
                        }
                    };
                    if *descending { ordering.reverse() } else { ordering }
                }
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    match error {
        Some(e) => Err(e),
        None => Ok(keyed.into_iter().map(|(_, item)| item).collect()),
    }
}

fn count(c: &Call<'_, '_, '_>) -> Result<usize, FhirPathError> {
    Ok(c.integer_arg(0)?.map_or(0, |n| usize::try_from(n).unwrap_or(0)))
}
