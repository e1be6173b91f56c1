//! Neutral search expressions for stores' own tests: a search URL's parameters parsed by the
//! engine, as every store's translation receives them.

use crate::definitions::Definitions;
use crate::search::query::{self, Predicate, SearchQuery};

/// The neutral expression of a search of `resource_type` (all types when `None`) by `params`.
#[expect(clippy::panic, reason = "test support: a query that does not parse is a failed test")]
pub fn parsed(resource_type: Option<&str>, params: &[(&str, &str)]) -> SearchQuery {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    match query::parse(Definitions::r4(), resource_type, &params, true) {
        Ok(parsed) => parsed.query,
        Err(e) => panic!("{params:?} does not parse: {e}"),
    }
}

/// The predicate of a search by one parameter with one value.
#[expect(clippy::panic, reason = "test support: a query of several predicates is a failed test")]
pub fn predicate(resource_type: &str, param: &str, value: &str) -> Predicate {
    let query = parsed(Some(resource_type), &[(param, value)]);
    match query.clauses.as_slice() {
        [clause] if clause.alternatives.len() == 1 => clause.alternatives[0].clone(),
        other => panic!("`{param}={value}` is not one predicate: {other:?}"),
    }
}
