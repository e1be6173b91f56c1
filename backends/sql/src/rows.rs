//! Index entries as rows of the search tables, and the statements that replace a resource's rows.
//!
//! Every table has `resource_type`, `id` and `param`; the other columns depend on the value's type
//! and are named the same wherever they appear, so one condition serves a table and the
//! components of `search_composite` alike.

use fhirgate_engine::storage::{IndexEntry, IndexValue, Write};

use crate::bind::{Bind, Binder, Dialect, Sql};

/// Every search table, `search_current` last.
pub const TABLES: &[&str] = &[
    "search_string",
    "search_token",
    "search_reference",
    "search_date",
    "search_number",
    "search_quantity",
    "search_uri",
    "search_composite",
    "search_current",
];

/// `search_token.kind` of a plain token.
pub(crate) const TOKEN: &str = "t";
/// `search_token.kind` of an identifier with its type, for `:of-type`.
pub(crate) const OF_TYPE: &str = "o";
/// `search_token.kind` of a `Reference.identifier`, for `:identifier`.
pub(crate) const REFERENCE_IDENTIFIER: &str = "i";

/// Rows of one search table for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub table: &'static str,
    pub param: String,
    /// The value columns; a column left out is NULL.
    pub columns: Vec<(&'static str, Bind)>,
}

/// The rows of the index entries of one resource version. Numbers that do not parse (they
/// always do: the engine validated them) are left out rather than stored wrong.
pub fn rows(entries: &[IndexEntry]) -> Vec<Row> {
    let mut out = Vec::with_capacity(entries.len());
    let mut group = 0_i64;
    for entry in entries {
        if let IndexValue::Composite { components } = &entry.value {
            group += 1;
            for (position, component) in (0_i64..).zip(components) {
                let Some((_, mut columns)) = columns(component) else { continue };
                columns.push(("grp", Bind::Int(group)));
                columns.push(("comp", Bind::Int(position)));
                out.push(Row { table: "search_composite", param: entry.param.clone(), columns });
            }
        } else if let Some((table, columns)) = columns(&entry.value) {
            out.push(Row { table, param: entry.param.clone(), columns });
        }
    }
    out
}

/// The table and columns of one (non-composite) value.
fn columns(value: &IndexValue) -> Option<(&'static str, Vec<(&'static str, Bind)>)> {
    let text = |s: &str| Bind::Text(s.to_owned());
    let opt = |name: &'static str, s: &Option<String>| s.as_deref().map(|s| (name, text(s)));
    let number = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite()).map(Bind::Real);
    Some(match value {
        IndexValue::String { value, exact } => ("search_string", vec![("value", text(value)), ("exact", text(exact))]),
        IndexValue::Token { system, code, text: display } => {
            let mut c = vec![("kind", text(TOKEN))];
            c.extend([opt("system", system), opt("code", code), opt("text", display)].into_iter().flatten());
            ("search_token", c)
        }
        IndexValue::OfType { type_system, type_code, value } => {
            let mut c = vec![("kind", text(OF_TYPE)), ("value", text(value))];
            c.extend([opt("system", type_system), opt("code", type_code)].into_iter().flatten());
            ("search_token", c)
        }
        IndexValue::ReferenceIdentifier { system, value } => {
            let mut c = vec![("kind", text(REFERENCE_IDENTIFIER))];
            c.extend([opt("system", system), opt("code", value)].into_iter().flatten());
            ("search_token", c)
        }
        IndexValue::Reference { reference, resource_type, id } => {
            let mut c = vec![("reference", text(reference))];
            c.extend([opt("target_type", resource_type), opt("target_id", id)].into_iter().flatten());
            ("search_reference", c)
        }
        IndexValue::Date { start, end } => ("search_date", vec![("start_at", text(start)), ("end_at", text(end))]),
        IndexValue::Number { value, low, high } => {
            ("search_number", vec![("num", number(value)?), ("low", number(low)?), ("high", number(high)?)])
        }
        IndexValue::Quantity { value, low, high, system, code, unit } => {
            let mut c = vec![("num", number(value)?), ("low", number(low)?), ("high", number(high)?)];
            c.extend([opt("system", system), opt("code", code), opt("unit", unit)].into_iter().flatten());
            ("search_quantity", c)
        }
        IndexValue::Uri { value } => ("search_uri", vec![("value", text(value))]),
        IndexValue::Composite { .. } => return None,
    })
}

/// Rows per `INSERT`, well under both databases' parameter limits.
const ROWS_PER_INSERT: usize = 100;

/// `INSERT` statements for `rows` of resource `resource_type/id`: rows with the same table and
/// columns share a statement (every statement is a round trip to the database).
fn inserts(dialect: Dialect, resource_type: &str, id: &str, rows: &[Row]) -> Vec<Sql> {
    let mut rows: Vec<&Row> = rows.iter().collect();
    let shape = |r: &Row| (r.table, r.columns.iter().map(|c| c.0).collect::<Vec<_>>());
    rows.sort_by_cached_key(|r| shape(r)); // stable: rows keep their order within a shape
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let first = &rows[start];
        let same =
            |r: &&Row| r.table == first.table && r.columns.iter().map(|c| c.0).eq(first.columns.iter().map(|c| c.0));
        let end = rows[start..].iter().take(ROWS_PER_INSERT).take_while(|r| same(r)).count() + start;
        let names: Vec<&str> = first.columns.iter().map(|c| c.0).collect();
        let mut binder = Binder::new(dialect);
        let mut values = Vec::new();
        for row in &rows[start..end] {
            let mut placeholders = vec![binder.text(resource_type), binder.text(id), binder.text(&row.param)];
            placeholders.extend(row.columns.iter().map(|(_, v)| binder.bind(v.clone())));
            values.push(format!("({})", placeholders.join(", ")));
        }
        let text = format!(
            "INSERT INTO {} (resource_type, id, param, {}) VALUES {}",
            first.table,
            names.join(", "),
            values.join(", ")
        );
        out.push(Sql { text, binds: binder.binds });
        start = end;
    }
    out
}

/// The statements that bring a resource's search rows to its newly written version: its earlier
/// rows out (a version 1 has none), then, unless the version is a deletion, its `search_current`
/// row and its index rows in. `version` and `last_updated_ms` are the store's encodings.
pub fn replace(dialect: Dialect, write: &Write, version: i64, last_updated_ms: i64) -> Vec<Sql> {
    let v = &write.version;
    let mut statements = Vec::new();
    if v.version > 1 {
        statements.extend(deletes(dialect, &v.resource_type, &v.id));
    }
    if !v.is_deleted() {
        statements.push(current(dialect, &v.resource_type, &v.id, version, last_updated_ms));
        statements.extend(inserts(dialect, &v.resource_type, &v.id, &rows(&write.index)));
    }
    statements
}

/// The statements that replace the search rows of `resource_type/id`'s current version by those
/// of `index` (a reindex: its `search_current` row stays).
pub fn reindexed(dialect: Dialect, resource_type: &str, id: &str, index: &[IndexEntry]) -> Vec<Sql> {
    let mut statements: Vec<Sql> = deletes(dialect, resource_type, id);
    statements.pop(); // `search_current`, last of `TABLES`
    statements.extend(inserts(dialect, resource_type, id, &rows(index)));
    statements
}

/// Statements that remove every search row of `resource_type/id` (before its new version's rows
/// go in, or when it is deleted).
fn deletes(dialect: Dialect, resource_type: &str, id: &str) -> Vec<Sql> {
    TABLES
        .iter()
        .map(|table| {
            let mut binder = Binder::new(dialect);
            let text = format!(
                "DELETE FROM {table} WHERE resource_type = {} AND id = {}",
                binder.text(resource_type),
                binder.text(id)
            );
            Sql { text, binds: binder.binds }
        })
        .collect()
}

/// The `search_current` row of a resource's new current version.
fn current(dialect: Dialect, resource_type: &str, id: &str, version: i64, last_updated_ms: i64) -> Sql {
    let mut binder = Binder::new(dialect);
    let text = format!(
        "INSERT INTO search_current (resource_type, id, version, last_updated) VALUES ({}, {}, {}, {})",
        binder.text(resource_type),
        binder.text(id),
        binder.bind(Bind::Int(version)),
        binder.bind(Bind::Int(last_updated_ms))
    );
    Sql { text, binds: binder.binds }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_components_share_a_group_and_rows_batch_by_table() -> Result<(), &'static str> {
        let token = |code: &str| IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some(code.into()),
            text: None,
        };
        let entries = vec![
            IndexEntry { param: "code".into(), value: token("1") },
            IndexEntry {
                param: "code-value-string".into(),
                value: IndexValue::Composite {
                    components: vec![token("3"), IndexValue::String { value: "a".into(), exact: "A".into() }],
                },
            },
            IndexEntry { param: "code".into(), value: token("2") },
        ];
        let rows = rows(&entries);
        assert_eq!(rows.len(), 4);
        let grp: Vec<_> = rows[1..3].iter().map(|r| r.columns.iter().find(|c| c.0 == "grp").cloned()).collect();
        assert_eq!(grp, [Some(("grp", Bind::Int(1))), Some(("grp", Bind::Int(1)))]);
        let inserts = inserts(Dialect::Postgres, "Observation", "o1", &rows);
        // Both tokens in one statement, the composite between them notwithstanding; the
        // composite components differ in columns.
        assert_eq!(inserts.len(), 3, "{inserts:#?}");
        let tokens =
            inserts.iter().find(|i| i.text.starts_with("INSERT INTO search_token")).ok_or("no token insert")?;
        assert!(tokens.text.starts_with("INSERT INTO search_token (resource_type, id, param, kind, system, code)"));
        assert_eq!(tokens.binds.len(), 12);
        assert!(tokens.text.ends_with("($7, $8, $9, $10, $11, $12)"));
        Ok(())
    }
}
