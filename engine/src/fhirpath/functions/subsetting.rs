//! Subsetting: `single`, `first`, `last`, `tail`, `skip`, `take`, `intersect`, `exclude`.

use super::{Call, Output};
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::operators::equal;
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
        "intersect" => c.arg(0).map(|other| {
            let mut out: Vec<Item<'a>> = Vec::new();
            for item in focus {
                if other.iter().any(|o| equal(o, item) == Some(true)) && !out.iter().any(|o| equal(o, item) == Some(true)) {
                    out.push(item.clone());
                }
            }
            out
        }),
        "exclude" => c
            .arg(0)
            .map(|other| focus.iter().filter(|i| !other.iter().any(|o| equal(o, i) == Some(true))).cloned().collect()),
        _ => return None,
    })
}

fn count(c: &Call<'_, '_, '_>) -> Result<usize, FhirPathError> {
    Ok(c.integer_arg(0)?.map_or(0, |n| usize::try_from(n).unwrap_or(0)))
}
