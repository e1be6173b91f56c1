//! Many given versions in one statement: a page of search matches read in one round trip.

use std::collections::HashMap;

use fhirgate_engine::storage::{ResourceVersion, SearchMatch};

use crate::bind::{Bind, Binder, Dialect, Sql};

/// Keys per statement: three parameters each, well under both databases' limits.
pub const MAX_KEYS: usize = 300;

/// `SELECT {columns} FROM resource_version v` of the versions `keys` name (at most
/// [`MAX_KEYS`]), in no particular order. The keys are a `VALUES` list joined to the table, which
/// both databases read through the `(resource_type, id, version)` index; a row-value `IN` makes
/// SQLite scan the table. On PostgreSQL the ids are also listed as `v.id IN (...)` (the same
/// parameters): on Citus, where `id` is the distribution column, that prunes the statement to
/// the shards the page's resources live on instead of every shard.
pub fn select(dialect: Dialect, columns: &str, keys: &[SearchMatch]) -> Sql {
    let mut binder = Binder::new(dialect);
    let mut ids = Vec::new();
    let rows: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            // A version past i64 cannot be stored, so it cannot be found either.
            let version = i64::try_from(k.version).ok()?;
            let (resource_type, id) = (binder.text(&k.resource_type), binder.text(&k.id));
            let row = format!("({resource_type}, {id}, {})", binder.bind(Bind::Int(version)));
            ids.push(id);
            Some(row)
        })
        .collect();
    if rows.is_empty() {
        return Sql { text: format!("SELECT {columns} FROM resource_version v WHERE 1 = 0"), binds: Vec::new() };
    }
    let prune = match dialect {
        Dialect::Postgres => format!(" WHERE v.id IN ({})", ids.join(", ")),
        Dialect::Sqlite => String::new(),
    };
    let text = format!(
        "WITH k (resource_type, id, version) AS (VALUES {}) SELECT {columns} FROM k JOIN resource_version v \
         ON v.resource_type = k.resource_type AND v.id = k.id AND v.version = k.version{prune}",
        rows.join(", ")
    );
    Sql { text, binds: binder.binds }
}

/// `found` in the order of `keys` (a key named twice gets its version twice), without the keys
/// that found nothing.
pub fn in_order(keys: &[SearchMatch], found: Vec<ResourceVersion>) -> Vec<ResourceVersion> {
    let by_key: HashMap<(&str, &str, u64), &ResourceVersion> =
        found.iter().map(|v| ((v.resource_type.as_str(), v.id.as_str(), v.version), v)).collect();
    keys.iter()
        .filter_map(|k| by_key.get(&(k.resource_type.as_str(), k.id.as_str(), k.version)).map(|v| (*v).clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> SearchMatch {
        SearchMatch { resource_type: "Patient".into(), id: id.into(), version: 2 }
    }

    #[test]
    fn postgres_lists_the_ids_for_shard_pruning_with_the_same_parameters() {
        let sql = select(Dialect::Postgres, "v.id", &[key("a"), key("b")]);
        assert!(sql.text.ends_with(" WHERE v.id IN ($2, $5)"), "{}", sql.text);
        assert_eq!(sql.binds.len(), 6);
        let sql = select(Dialect::Sqlite, "v.id", &[key("a")]);
        assert!(!sql.text.contains("IN ("), "SQLite keeps the plain join: {}", sql.text);
    }
}
