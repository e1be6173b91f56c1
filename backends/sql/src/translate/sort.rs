//! `_sort`: each key is the smallest (ascending) or largest (descending) value of its parameter
//! on the resource, resources without a value last; type and id break ties, so the order is total
//! and pages never overlap.

use fhirgate_engine::definitions::SearchParamType;
use fhirgate_engine::search::query::SearchQuery;

use super::{Translator, Unsupported, table};
use crate::rows::TOKEN;

/// The sort key columns for the inner `SELECT` (`, (...) AS s0`) and the outer `ORDER BY`.
pub(super) fn keys(t: &mut Translator<'_>, query: &SearchQuery) -> Result<(String, String), Unsupported> {
    let mut select = String::new();
    let mut order = Vec::new();
    let types = t.types.clone();
    for (n, key) in query.result.sort.iter().enumerate() {
        let direction = if key.descending { "DESC" } else { "ASC" };
        let expression = match key.param.as_str() {
            "_id" => "r.id".to_owned(),
            "_lastUpdated" => "r.last_updated".to_owned(),
            param => {
                let kind = t.kind(param, &types)?;
                let column = match (kind, key.descending) {
                    (SearchParamType::String | SearchParamType::Uri, _) => "value",
                    (SearchParamType::Token, _) => "code",
                    (SearchParamType::Reference, _) => "reference",
                    (SearchParamType::Date, false) => "start_at",
                    (SearchParamType::Date, true) => "end_at",
                    (SearchParamType::Number | SearchParamType::Quantity, _) => "num",
                    (SearchParamType::Composite | SearchParamType::Special, _) => {
                        return Err(Unsupported(format!("cannot sort by `{param}` ({} parameter)", kind.code())));
                    }
                };
                let table = table(kind)?;
                let aggregate = if key.descending { "MAX" } else { "MIN" };
                let a = t.alias();
                let p = t.binder.text(param);
                let only_tokens = if kind == SearchParamType::Token {
                    format!(" AND {a}.kind = {}", t.binder.text(TOKEN))
                } else {
                    String::new()
                };
                format!(
                    "(SELECT {aggregate}({a}.{column}) FROM {table} {a} WHERE {a}.resource_type = r.resource_type \
                     AND {a}.id = r.id AND {a}.param = {p}{only_tokens})"
                )
            }
        };
        select.push_str(&format!(", {expression} AS s{n}"));
        order.push(format!("(s{n} IS NULL), s{n} {direction}"));
    }
    order.push("resource_type, id".to_owned());
    Ok((select, order.join(", ")))
}
