//! `composite` parameters: each component expression is evaluated on each item of the base
//! expression, and every combination of the component values becomes one entry, so that
//! `code-value-quantity` pairs a code with the value of the same observation (or component).

use serde_json::Value;

use crate::definitions::SearchParamType;
use crate::fhirpath::{Env, Expr, Item, evaluate_on};
use crate::storage::IndexValue;

/// One component: its parameter type and its expression, relative to the base item.
pub(super) struct Component {
    pub kind: SearchParamType,
    pub expr: Expr,
}

pub(super) fn values<'a>(
    components: &[Component],
    resource: &'a Value,
    items: &[Item<'a>],
    env: &Env<'a>,
) -> Vec<IndexValue> {
    let mut out = Vec::new();
    if components.is_empty() {
        return out;
    }
    for item in items {
        let mut combinations: Vec<Vec<IndexValue>> = vec![Vec::new()];
        for component in components {
            let found = match evaluate_on(&component.expr, resource, std::slice::from_ref(item), env) {
                Ok(found) => found,
                Err(error) => {
                    tracing::debug!(%error, "composite component skipped");
                    Vec::new()
                }
            };
            let parts: Vec<IndexValue> = found.iter().flat_map(|i| super::values(component.kind, i)).collect();
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    parts.iter().map(move |part| {
                        let mut next = prefix.clone();
                        next.push(part.clone());
                        next
                    })
                })
                .collect();
        }
        out.extend(combinations.into_iter().map(|components| IndexValue::Composite { components }));
    }
    out
}
