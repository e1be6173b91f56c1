//! Unit tests of the Cosmos search translation, one file per pass: a search URL's parameters,
//! parsed by the engine into the neutral expression, rendered to Cosmos SQL text and compared
//! with what it must be. The passes that run inner searches (every clause finds its keys first)
//! run them on a fresh in-process emulator account, empty unless a test writes to it; the tests
//! compare the text of those sub-queries too.

#![expect(clippy::panic, reason = "tests: a panic is a failed test")]

mod bound;
mod chain;
mod condition;
mod emulator_sql;
mod exists;
mod filter;
mod sort;

use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::contract::query::{parsed, predicate};
use serde_json::Value;

use super::Translator;
use crate::{CosmosSettings, CosmosStore};

/// A store on a fresh in-process emulator account.
async fn store() -> CosmosStore {
    let mut settings = match CosmosSettings::emulator() {
        Ok(settings) => settings,
        Err(e) => panic!("emulator settings: {e}"),
    };
    // The statements below are the one-partition layout's (no `c.s` condition).
    settings.layout = crate::Layout::Single;
    match CosmosStore::connect(&settings).await {
        Ok(store) => store,
        Err(e) => panic!("connect to the emulator: {e}"),
    }
}

/// One statement: its text and the values of its parameters `@p1`, `@p2`... in order.
#[derive(Debug, PartialEq)]
struct Statement {
    text: String,
    params: Vec<Value>,
}

impl Statement {
    fn new(text: &str, params: Vec<Value>) -> Self {
        Self { text: text.to_owned(), params }
    }

    fn of(text: String, params: &[(String, Value)]) -> Self {
        for (n, (name, _)) in params.iter().enumerate() {
            assert_eq!(name, &format!("@p{}", n + 1), "parameters are numbered in order");
        }
        Self { text, params: params.iter().map(|(_, v)| v.clone()).collect() }
    }
}

/// A translated query: the `WHERE` condition on `c` and the sub-queries run to build it.
#[derive(Debug)]
struct Translated {
    filter: Statement,
    ran: Vec<Statement>,
}

/// The filter of `query` on `store`, with the sub-queries it ran.
async fn translate_on(store: &CosmosStore, query: &SearchQuery) -> Translated {
    let mut t = Translator::new(store, query);
    let filter = match t.filter(query).await {
        Ok(filter) => filter,
        Err(e) => panic!("{query:?} does not translate: {e}"),
    };
    Translated {
        filter: Statement::of(filter, &t.params.values),
        ran: t.ran.iter().map(|(text, params)| Statement::of(text.clone(), params)).collect(),
    }
}

/// The filter of a search on an empty store, with the sub-queries it ran.
async fn translate(resource_type: Option<&str>, params: &[(&str, &str)]) -> Translated {
    translate_on(&store().await, &parsed(resource_type, params)).await
}

/// Text parameters.
fn texts(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| Value::String((*v).to_owned())).collect()
}

/// The sub-query finding the keys of the current resources of the types bound as `types` with an
/// index entry of the parameter bound as `param`, of one of `kinds`, meeting `condition`.
fn entry_query(types: &str, param: &str, kinds: &str, condition: &str) -> String {
    format!(
        "SELECT VALUE c.key FROM c JOIN x IN c.x WHERE c.k = 'c' AND c.del = false AND ARRAY_CONTAINS({types}, c.t) \
         AND x.p = {param} AND x.k IN ({kinds}) AND {condition}"
    )
}
