//! Unit tests of the translation passes, one file per pass: a search URL's parameters, parsed by
//! the engine into the neutral expression, rendered to SQL text and compared with what it must be.

#![expect(clippy::panic, reason = "tests: a panic is a failed test")]

mod condition;
mod filter;
mod sort;
mod walk;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::contract::query::{parsed, predicate};

use crate::bind::{Bind, Sql};

/// The page statement (limit 10) of a query.
fn select_query(target: impl Into<super::Target>, query: &SearchQuery) -> Sql {
    match super::select(target, Definitions::r4(), query, 10) {
        Ok(select) => select.sql,
        Err(e) => panic!("{query:?} does not translate: {e:?}"),
    }
}

/// The page statement (limit 10) of a search.
fn select(target: impl Into<super::Target>, resource_type: Option<&str>, params: &[(&str, &str)]) -> Sql {
    select_query(target, &parsed(resource_type, params))
}

/// The count statement of a search.
fn count(target: impl Into<super::Target>, resource_type: Option<&str>, params: &[(&str, &str)]) -> Sql {
    match super::count(target, Definitions::r4(), &parsed(resource_type, params)) {
        Ok(sql) => sql,
        Err(e) => panic!("{params:?} does not translate: {e:?}"),
    }
}

/// Text parameters.
fn texts(values: &[&str]) -> Vec<Bind> {
    values.iter().map(|v| Bind::Text((*v).to_owned())).collect()
}

/// `values` as text parameters, then the limit 10.
fn texts_then_limit(values: &[&str]) -> Vec<Bind> {
    let mut binds = texts(values);
    binds.push(Bind::Int(10));
    binds
}
