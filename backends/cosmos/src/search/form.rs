//! Which Cosmos SQL a search's clauses are written in (`store.cosmos.search_queries`).
//!
//! - `key-set` (the default, and what the in-process emulator runs): each clause value first
//!   runs its own query for the keys of the resources with a matching index entry (`SELECT VALUE
//!   c.key FROM c JOIN x IN c.x WHERE ...`), and the search's query tests `ARRAY_CONTAINS(@keys,
//!   c.key)`: 1 + (clause values) queries, key lists bounded by `max_search_keys`.
//! - `exists`: each clause value is `EXISTS(SELECT VALUE x FROM x IN c.x WHERE ...)` on the
//!   document itself (`NOT EXISTS` for `:not` and `:missing=true`), so a search without chains or
//!   `_has` is one query and carries no key list. The real service runs these sub-queries; the
//!   emulator refuses them (`tests/emulator_sql.rs`), so this form is checked here only as SQL
//!   text, and a store asked for it checks at connect that the service runs it
//!   ([`check_exists_runs`]): against the emulator it does not start.
//!
//! Chains and `_has` stay key-set in both forms: Cosmos SQL joins only inside one document, so
//! the resources at the other end of a reference are found by their own query whatever the
//! form, and the clause that tests them is then kept as written and tested on the emulator.

use azure_data_cosmos::Query;

use crate::CosmosStore;
use crate::error::Error;
use crate::read;

/// How a search's clauses are written (`store.cosmos.search_queries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchQueries {
    /// A query per clause value for the keys it matches, then the search's query on the keys.
    #[default]
    KeySet,
    /// One query per search, each clause value an `EXISTS` sub-query (not on the emulator).
    Exists,
}

impl SearchQueries {
    /// The form named `name` (`key-set` or `exists`).
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "key-set" => Ok(Self::KeySet),
            "exists" => Ok(Self::Exists),
            other => {
                Err(Error::Config(format!("`store.cosmos.search_queries = \"{other}\"`: expected key-set or exists")))
            }
        }
    }
}

/// The probe [`check_exists_runs`] sends: a correlated `EXISTS` (the only kind the service runs)
/// on the store's documents. It proves nothing on a store with no document (nothing evaluates
/// it), hence the emulator is refused by name.
pub(crate) fn probe_text(store: &CosmosStore) -> String {
    format!(
        "SELECT VALUE c.id FROM c WHERE {}EXISTS(SELECT VALUE x FROM x IN c.x) OFFSET 0 LIMIT 1",
        store.in_store("c")
    )
}

/// Whether the service runs `EXISTS` sub-queries: a store configured for [`SearchQueries::Exists`]
/// does not start where they are refused (the in-process emulator, named by `emulator`, or a
/// service that refuses the probe), rather than answering every search with an error.
pub(crate) async fn check_exists_runs(store: &CosmosStore, emulator: bool) -> Result<(), Error> {
    let refused = |why: String| {
        Error::Config(format!(
            "`store.cosmos.search_queries = \"exists\"`: {why}; use `key-set` (the default) with this endpoint"
        ))
    };
    if emulator {
        return Err(refused("the in-process Cosmos DB emulator does not run EXISTS sub-queries".to_owned()));
    }
    let query = Query::from(probe_text(store));
    match read::query::<serde_json::Value>(store, "search form probe", query).await {
        Ok(_) => Ok(()),
        Err(e) => Err(refused(format!("this Cosmos DB endpoint does not run EXISTS sub-queries ({e})"))),
    }
}
