//! The statements for a search in the default order whose driving clause is one value
//! tested on one row (`Observation?code=X`, maybe with other clauses). A page walks the value's
//! index, whose rows for one value come in `(resource_type, id)` order, joins each to its current
//! resource and stops at the limit, instead of listing every match to sort it; a count counts
//! the index rows' resources without reading the resources. `GROUP BY` drops a second matching
//! row of one resource without a sort.
//!
//! On SQLite the index is named (`INDEXED BY`): without statistics, SQLite would rather walk
//! every row of the type in key order to avoid a sort (all of a type's references, for
//! `Observation?patient=X`). PostgreSQL finds the walk itself given this statement's shape; with
//! the general statement it listed and sorted every match of the driving value (66,922
//! Observations of the commonest code at 1,000 patients, seconds per page; bench/README.md).

use fhirgate_engine::search::query::{Predicate, ReferenceTarget, SearchQuery, driving_clause};

use super::{On, Test, Translator, Unsupported};
use crate::bind::{Bind, Dialect};

/// What the statement answers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Walk {
    /// The first `limit` matches: `resource_type, id, version`.
    Page(u32),
    /// `COUNT(*)` of the matches.
    Count,
}

/// The statement, or `None` for a search it does not fit.
pub(super) fn statement(
    t: &mut Translator<'_>,
    query: &SearchQuery,
    walk: Walk,
) -> Result<Option<String>, Unsupported> {
    if !query.result.sort.is_empty() || query.compartment.is_some() {
        return Ok(None);
    }
    let Some(driver) = driving_clause(&query.clauses) else { return Ok(None) };
    let clause = &query.clauses[driver];
    let [predicate] = clause.alternatives.as_slice() else { return Ok(None) };
    // Only a positive test of one row whose index leads with what the test fixes (the value
    // indexes lead with the parameter, the reference index with the target's id); checked
    // before anything is bound (`row_test` refuses tests spanning several rows unbound too).
    if matches!(
        predicate,
        Predicate::Missing(_) | Predicate::Token { not: true, .. } | Predicate::Reference(ReferenceTarget::Url(_))
    ) {
        return Ok(None);
    }
    let types = t.types.clone();
    let a = t.alias();
    let Some((table, false, condition)) = t.row_test(&clause.param, predicate, &types, &a)? else {
        return Ok(None);
    };
    // SQLite is told the index; PostgreSQL groups by the joined resource's key too, which lets it
    // select the version.
    let (index, group) = match t.binder.dialect() {
        Dialect::Sqlite => (format!(" INDEXED BY {}", value_index(table)?), format!("{a}.resource_type, {a}.id")),
        Dialect::Postgres => (String::new(), format!("{a}.resource_type, {a}.id, r.resource_type, r.id")),
    };
    let mut conditions = vec![condition];
    if !types.is_empty() {
        conditions.push(format!("{a}.resource_type IN {}", t.binder.list(&types)));
    }
    if let Some(after) = &query.after {
        conditions.push(t.after(after, &a));
    }
    // The other clauses test the index row's resource, not the joined one: both databases then
    // probe a candidate before joining it, so a candidate that fails costs no resource lookup
    // (a third less time for `Observation?patient=X&code=Y`, bench/README.md).
    let others: Vec<_> = query.clauses.iter().enumerate().filter(|(n, _)| *n != driver).map(|(_, c)| c).collect();
    let (rt, id) = (format!("{a}.resource_type"), format!("{a}.id"));
    for other in &others {
        let on = On { rt: &rt, id: &id, test: Test::PerCandidate };
        conditions.push(t.clause(other, on, &types)?);
    }
    let join = format!(" JOIN search_current r ON r.resource_type = {a}.resource_type AND r.id = {a}.id");
    let conditions = conditions.join(" AND ");
    Ok(Some(match walk {
        Walk::Page(limit) => {
            let limit = t.binder.bind(Bind::Int(i64::from(limit)));
            format!(
                "SELECT r.resource_type, r.id, r.version FROM {table} {a}{index}{join} WHERE {conditions} \
                 GROUP BY {group} ORDER BY {a}.resource_type, {a}.id LIMIT {limit}"
            )
        }
        // A search row exists only for a current resource, and the other clauses test the
        // row's resource, so a count needs no resource row.
        Walk::Count => format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {table} {a}{index} WHERE {conditions} \
             GROUP BY {a}.resource_type, {a}.id) m"
        ),
    }))
}

/// The index on the values of a search table.
fn value_index(table: &str) -> Result<&'static str, Unsupported> {
    Ok(match table {
        "search_string" => "search_string_value",
        "search_token" => "search_token_code",
        "search_reference" => "search_reference_target",
        "search_date" => "search_date_start",
        "search_number" => "search_number_value",
        "search_quantity" => "search_quantity_value",
        "search_uri" => "search_uri_value",
        other => return Err(Unsupported(format!("no value index on `{other}`"))),
    })
}
