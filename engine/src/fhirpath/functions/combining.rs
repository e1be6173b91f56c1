//! Combining: `union` (duplicates removed) and `combine` (kept).

use super::{Call, Output};
use crate::fhirpath::ast::BinaryOp;
use crate::fhirpath::operators::{binary, dedupe_cost};

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "union" => c.arg(0).and_then(|other| {
            let n = dedupe_cost(&c.focus) + dedupe_cost(&other);
            c.ctx.spend_pairs(n, n)?;
            binary(BinaryOp::Union, c.focus.clone(), other)
        }),
        "combine" => c.arg(0).map(|other| c.focus.iter().cloned().chain(other).collect()),
        _ => return None,
    })
}
