//! Tree navigation: `children` and `descendants`.

use super::{Call, Output};
use crate::fhirpath::error::FhirPathError;
use crate::fhirpath::navigate::children;

/// Bound on the items `descendants()` collects.
const MAX_DESCENDANTS: usize = 1_000_000;

pub(super) fn call<'a>(c: &Call<'_, 'a, '_>) -> Option<Output<'a>> {
    Some(match c.name {
        "children" => {
            let mut out = Vec::new();
            for item in &c.focus {
                children(item, &mut out);
            }
            Ok(out)
        }
        "descendants" => {
            let mut out = Vec::new();
            let mut level = c.focus.clone();
            while !level.is_empty() {
                let mut next = Vec::new();
                for item in &level {
                    children(item, &mut next);
                }
                if let Err(e) = c.ctx.spend(u64::try_from(next.len()).unwrap_or(u64::MAX)) {
                    return Some(Err(e));
                }
                out.extend(next.iter().cloned());
                if out.len() > MAX_DESCENDANTS {
                    return Some(Err(FhirPathError::eval("`descendants()` found too many items")));
                }
                level = next;
            }
            Ok(out)
        }
        _ => return None,
    })
}
