//! `_sort`: each key is the smallest (ascending) or largest (descending) value of its parameter
//! on the resource, resources without a value last; type and id break ties, so the order is total
//! and pages never overlap. The statement also selects the key values (`s0`, `s1`...), so a
//! page can be continued after its last match by key ([`after`]), not by offset.

use fhirgate_engine::definitions::SearchParamType;
use fhirgate_engine::search::query::{SearchQuery, SortValue};

use super::{Translator, Unsupported, table};
use crate::bind::Bind;
use crate::rows::TOKEN;

/// The SQL type of a sort key column, to read its values back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Text,
    Integer,
    Real,
}

/// The sort keys of a statement: the columns for the inner `SELECT` (`, (...) AS s0`), the
/// outer `ORDER BY`, and each key's column type.
pub(super) struct Keys {
    pub(super) select: String,
    pub(super) order: String,
    pub(super) kinds: Vec<SortKind>,
}

/// The sort key columns of `query`.
pub(super) fn keys(t: &mut Translator<'_>, query: &SearchQuery) -> Result<Keys, Unsupported> {
    let mut select = String::new();
    let mut order = Vec::new();
    let mut kinds = Vec::new();
    let types = t.types.clone();
    for (n, key) in query.result.sort.iter().enumerate() {
        let direction = if key.descending { "DESC" } else { "ASC" };
        let expression = match key.param.as_str() {
            "_id" => {
                kinds.push(SortKind::Text);
                "r.id".to_owned()
            }
            "_lastUpdated" => {
                kinds.push(SortKind::Integer);
                "r.last_updated".to_owned()
            }
            param => {
                let kind = t.kind(param, &types)?;
                kinds.push(match kind {
                    SearchParamType::Number | SearchParamType::Quantity => SortKind::Real,
                    _ => SortKind::Text,
                });
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
    Ok(Keys { select, order: order.join(", "), kinds })
}

/// The condition on the outer `q` that keeps the rows after the continuation of `query`
/// ([`SearchQuery::after_sort`] then `after`) in the order [`keys`] sorts by: for some key, every
/// key before it equal and it further on (a larger value ascending, a smaller one descending,
/// or none: rows without a value come last); or every key equal and a larger type and id.
/// `None` without a continuation or without `_sort`.
pub(super) fn after(
    t: &mut Translator<'_>,
    query: &SearchQuery,
    kinds: &[SortKind],
) -> Result<Option<String>, Unsupported> {
    // Without `_sort` the continuation is a condition on `r` (`Translator::after`).
    let Some((resource_type, id)) = query.after.as_ref().filter(|_| !query.result.sort.is_empty()) else {
        return Ok(None);
    };
    if query.after_sort.len() != kinds.len() {
        return Err(Unsupported("the continuation does not fit the search's `_sort`".into()));
    }
    let mut alternatives = Vec::new();
    let mut equal = Vec::new();
    for (n, ((value, kind), key)) in query.after_sort.iter().zip(kinds).zip(&query.result.sort).enumerate() {
        let Some(value) = value else {
            equal.push(format!("s{n} IS NULL"));
            continue;
        };
        let bind = match (value, kind) {
            (SortValue::Text(v), SortKind::Text) => Bind::Text(v.clone()),
            (SortValue::Integer(v), SortKind::Integer) => Bind::Int(*v),
            (SortValue::Number(v), SortKind::Real) => Bind::Real(*v),
            _ => return Err(Unsupported("the continuation does not fit the search's `_sort`".into())),
        };
        let p = t.binder.bind(bind);
        let further = if key.descending { "<" } else { ">" };
        alternatives
            .push([equal.as_slice(), &[format!("(s{n} {further} {p} OR s{n} IS NULL)")]].concat().join(" AND "));
        equal.push(format!("s{n} = {p}"));
    }
    let (resource_type, id) = (t.binder.text(resource_type), t.binder.text(id));
    alternatives
        .push([equal.as_slice(), &[format!("(resource_type, id) > ({resource_type}, {id})")]].concat().join(" AND "));
    Ok(Some(format!("({})", alternatives.iter().map(|a| format!("({a})")).collect::<Vec<_>>().join(" OR "))))
}
