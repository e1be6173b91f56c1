//! The steps of a write that both stores take the same way (create, update, delete and
//! transaction all end here; <https://hl7.org/fhir/R4/http.html#concurrency>). How a store makes
//! the check and the insert atomic, and its write positions commit-ordered, is its own.

use std::collections::HashMap;

use fhirgate_engine::storage::{Guard, Write, WriteKind};

use crate::bind::{Bind, Binder, Dialect, Sql};
use crate::driver::Driver;
use crate::instant::{millis_floor, version_from_sql, version_to_sql};
use crate::{Error, rows, search, versions};

/// The current version a write expects (its own minus one; 0 for a create).
pub fn expected(write: &Write) -> Result<u64, Error> {
    let v = &write.version;
    v.version.checked_sub(1).ok_or_else(|| Error::Invalid(format!("version 0 of `{}/{}`", v.resource_type, v.id)))
}

/// The newest stored version of a resource, 0 if it never existed.
pub async fn stored_version(db: &mut dyn Driver, resource_type: &str, id: &str) -> Result<u64, Error> {
    let mut b = Binder::new(db.dialect());
    let text = format!(
        "SELECT COALESCE(MAX(version), 0) FROM resource_version WHERE resource_type = {} AND id = {}",
        b.text(resource_type),
        b.text(id)
    );
    version_from_sql(db.integer(&Sql { text, binds: b.binds }).await?.unwrap_or(0))
}

/// The newest stored version of each resource `writes` name (0 for one never stored), a few
/// hundred resources per statement rather than a round trip each.
pub async fn stored_versions(db: &mut dyn Driver, writes: &[Write]) -> Result<HashMap<(String, String), u64>, Error> {
    let mut keys: Vec<(&str, &str)> =
        writes.iter().map(|w| (w.version.resource_type.as_str(), w.version.id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(versions::MAX_KEYS) {
        for (resource_type, id, version) in db.matches(&newest_versions(db.dialect(), chunk)).await? {
            found.insert((resource_type, id), version_from_sql(version)?);
        }
    }
    Ok(found)
}

/// The statement selecting the newest stored version of each of `keys` (0 for one never stored).
/// A lookup per key: as a join grouped by key, SQLite (3.50) chose, from about a hundred keys, to
/// build an automatic index over every stored version for each statement, which made each
/// transaction Bundle read the whole table.
pub fn newest_versions(dialect: Dialect, keys: &[(&str, &str)]) -> Sql {
    let mut b = Binder::new(dialect);
    let rows: Vec<String> = keys.iter().map(|(t, id)| format!("({}, {})", b.text(t), b.text(id))).collect();
    let text = format!(
        "WITH k (resource_type, id) AS (VALUES {}) SELECT k.resource_type, k.id, \
         COALESCE((SELECT MAX(v.version) FROM resource_version v WHERE v.resource_type = k.resource_type AND v.id = k.id), 0) \
         FROM k",
        rows.join(", ")
    );
    Sql { text, binds: b.binds }
}

/// Fails with [`Error::GuardMatched`] for the first guard some current resource matches. Run
/// inside the batch's transaction, after whatever serialises batches with the same guards.
pub async fn check_guards(db: &mut dyn Driver, guards: &[Guard]) -> Result<(), Error> {
    for (n, guard) in guards.iter().enumerate() {
        if search::count(db, &guard.query).await? > 0 {
            return Err(Error::GuardMatched(n));
        }
    }
    Ok(())
}

/// Inserts every version of `writes` (whose preconditions the store has checked), in order, with
/// its index entries (one JSON array in the version's row), and its rows in the search tables
/// (replacing those of the version before); the table gives each version its write position
/// (SQLite: `AUTOINCREMENT`). Where the driver joins statements (sqlx's SQLite driver, a
/// hand-off to its thread per text), they go as as few texts as SQLite's parameter limit
/// allows: a transaction Bundle's thousand resources in a handful of hand-offs rather than one
/// per resource.
pub async fn append_all(db: &mut dyn Driver, writes: &[Write]) -> Result<(), Error> {
    append_positioned(db, writes.iter().map(|w| (w, None))).await
}

/// [`append_all`] with the write position of each version given by the store: its bucket and
/// its position in the bucket (PostgreSQL, `write_bucket`), or `None` for the table's own.
pub async fn append_positioned<'w>(
    db: &mut dyn Driver,
    writes: impl IntoIterator<Item = (&'w Write, Option<(i64, i64)>)>,
) -> Result<(), Error> {
    append_then(db, writes, Vec::new()).await
}

/// [`append_positioned`], then `after` (statements of the store's own, joined with the rest
/// where they can be).
pub async fn append_then<'w>(
    db: &mut dyn Driver,
    writes: impl IntoIterator<Item = (&'w Write, Option<(i64, i64)>)>,
    after: Vec<Sql>,
) -> Result<(), Error> {
    // Statements go as they are made, a few texts' worth at a time: a transaction Bundle's
    // statements all at once held a copy of every value of its thousands of resources.
    let writes: Vec<(&Write, Option<(i64, i64)>)> = writes.into_iter().collect();
    let mut pending = Vec::new();
    let mut binds = 0;
    for (write, position) in writes {
        for statement in statements(db.dialect(), write, position)? {
            binds += statement.binds.len();
            pending.push(statement);
        }
        if binds >= PARAMETERS_PER_BATCH {
            run(db, std::mem::take(&mut pending)).await?;
            binds = 0;
        }
    }
    pending.extend(after);
    run(db, pending).await
}

/// Runs `statements` in order, joined into as few as the driver takes.
async fn run(db: &mut dyn Driver, mut statements: Vec<Sql>) -> Result<(), Error> {
    if db.joins_statements() {
        statements = combined(statements);
    } else if db.dialect() == Dialect::Postgres {
        statements = with_ctes(statements);
    }
    for statement in &statements {
        db.execute(statement).await?;
    }
    Ok(())
}

/// The statements of [`append`], in order.
fn statements(dialect: Dialect, write: &Write, position: Option<(i64, i64)>) -> Result<Vec<Sql>, Error> {
    let v = &write.version;
    let (version, last_updated) = (version_to_sql(v.version)?, millis_floor(v.last_updated)?);
    let index = serde_json::to_string(&write.index)
        .map_err(|e| Error::Invalid(format!("the index of `{}/{}` is not serialisable: {e}", v.resource_type, v.id)))?;
    let mut b = Binder::new(dialect);
    let mut text = format!(
        "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json, index_entries{}) \
         VALUES ({}, {}, {}, {}, {}, {}, {}",
        if position.is_some() { ", bucket, pos" } else { "" },
        b.text(&v.resource_type),
        b.text(&v.id),
        b.bind(Bind::Int(version)),
        b.bind(Bind::Int(last_updated)),
        b.text(v.kind.code()),
        b.bind(v.json.as_ref().map_or(Bind::Null, |json| Bind::Text(json.clone()))),
        b.bind(Bind::Text(index)),
    );
    if let Some((bucket, pos)) = position {
        text.push_str(&format!(", {}, {}", b.bind(Bind::Int(bucket)), b.bind(Bind::Int(pos))));
    }
    text.push(')');
    let mut statements = vec![Sql { text, binds: b.binds }];
    statements.extend(rows::replace(dialect, write, version, last_updated));
    Ok(statements)
}

/// Parameters per combined SQLite statement, under SQLite's limit of 32,766 per statement.
const PARAMETERS_PER_BATCH: usize = 30_000;

/// SQLite statements joined into as few as possible: each one's numbered placeholders (`?1`,
/// `?2`... in the order they appear, as [`Binder`] writes them) become anonymous `?`, which
/// SQLite and sqlx number on across the statements of one text. A statement whose placeholders
/// are not in that order stays on its own.
fn combined(statements: Vec<Sql>) -> Vec<Sql> {
    let mut out: Vec<Sql> = Vec::new();
    let mut current = Sql::default();
    for statement in statements {
        let Some(text) = anonymous(&statement) else {
            out.extend([std::mem::take(&mut current), statement].into_iter().filter(|s| !s.text.is_empty()));
            continue;
        };
        if !current.text.is_empty() && current.binds.len() + statement.binds.len() > PARAMETERS_PER_BATCH {
            out.push(std::mem::take(&mut current));
        }
        if !current.text.is_empty() {
            current.text.push_str(";\n");
        }
        current.text.push_str(&text);
        current.binds.extend(statement.binds);
    }
    if !current.text.is_empty() {
        out.push(current);
    }
    out
}

/// The statement's text with `?1`, `?2`... written `?`, if they appear exactly in that order.
fn anonymous(statement: &Sql) -> Option<String> {
    let mut text = String::with_capacity(statement.text.len());
    let mut next = 1_usize;
    let mut chars = statement.text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' || c == ';' {
            return None; // a literal or a second statement: not ours to rewrite
        }
        text.push(c);
        if c != '?' {
            continue;
        }
        let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        if digits.parse::<usize>().ok() != Some(next) {
            return None;
        }
        next += 1;
    }
    (next - 1 == statement.binds.len()).then_some(text)
}

/// PostgreSQL statements joined into as few as possible, each a `WITH` of data-modifying
/// statements, so that a create is one round trip to the database instead of one per search
/// table (with `BEGIN`, the locks and `COMMIT`, half the exchanges of a create; each is a
/// `send` waking the server, a third of fhirgate's CPU per create in perf). The parts of one
/// statement all see the database as it was before it and run in no set order, so a statement
/// that changes a table an earlier part changes starts a new one (an update's deletions of its
/// old rows, then its new rows), except inserts after inserts; a statement with a literal or a
/// second statement in its text stays on its own, as does anything past [`PARAMETERS_PER_BATCH`].
fn with_ctes(statements: Vec<Sql>) -> Vec<Sql> {
    let mut out = Vec::new();
    let mut group: Vec<(Sql, (bool, &'static str))> = Vec::new();
    let mut binds = 0;
    for statement in statements {
        let target = changed_table(&statement.text);
        let fits = target.is_some_and(|(insert, table)| {
            binds + statement.binds.len() <= PARAMETERS_PER_BATCH
                && group.iter().all(|(_, (i, other))| *other != table || (*i && insert))
        });
        if !fits {
            out.extend(joined_with_ctes(std::mem::take(&mut group)));
            binds = 0;
        }
        let Some(target) = target else {
            out.push(statement);
            continue;
        };
        binds += statement.binds.len();
        group.push((statement, target));
    }
    out.extend(joined_with_ctes(group));
    out
}

/// Whether a statement inserts, and the table it changes, for the statements [`statements`]
/// writes and PostgreSQL's move of `resource_current`; `None` for anything else (or with a
/// literal or a `;` in its text).
fn changed_table(text: &str) -> Option<(bool, &'static str)> {
    if text.contains('\'') || text.contains(';') {
        return None;
    }
    let (insert, rest) = if let Some(rest) = text.strip_prefix("INSERT INTO ") {
        (true, rest)
    } else {
        (false, text.strip_prefix("DELETE FROM ").or_else(|| text.strip_prefix("UPDATE "))?)
    };
    let name = rest.split([' ', '(']).next()?;
    let table = rows::TABLES.iter().chain(&["resource_version", "resource_current"]).find(|t| **t == name)?;
    Some((insert, table))
}

/// One statement of `group`'s, in order: every one but the last in a `WITH`, their `$n`
/// placeholders numbered on.
fn joined_with_ctes(group: Vec<(Sql, (bool, &'static str))>) -> Option<Sql> {
    let count = group.len();
    let mut joined = Sql::default();
    for (n, (statement, _)) in group.into_iter().enumerate() {
        let text = renumbered(&statement.text, joined.binds.len());
        match (n, n + 1 == count) {
            (0, true) => joined.text = text,
            (0, false) => joined.text = format!("WITH w0 AS ({text})"),
            (_, false) => joined.text.push_str(&format!(", w{n} AS ({text})")),
            (_, true) => joined.text.push_str(&format!(" {text}")),
        }
        joined.binds.extend(statement.binds);
    }
    (count > 0).then_some(joined)
}

/// `text` with each placeholder `$n` written `$(n + offset)`.
fn renumbered(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
            match digits.parse::<usize>() {
                Ok(n) => out.push_str(&(n + offset).to_string()),
                Err(_) => out.push_str(&digits),
            }
        }
    }
    out
}

/// Refuses an initial load's batch holding anything but creates of version 1 (what
/// `Store::load` takes), before a store writes any of it.
pub fn only_creates(writes: &[Write]) -> Result<(), Error> {
    match writes.iter().find(|w| w.version.version != 1 || w.version.kind != WriteKind::Create) {
        Some(w) => {
            let v = &w.version;
            Err(Error::Unsupported(format!(
                "a load writes creates only, not version {} of `{}/{}`",
                v.version, v.resource_type, v.id
            )))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str, binds: i64) -> Sql {
        Sql { text: text.into(), binds: (0..binds).map(Bind::Int).collect() }
    }

    #[test]
    fn postgres_statements_join_into_ctes_unless_a_table_is_changed_twice() {
        let create = with_ctes(vec![
            sql("INSERT INTO resource_version (a, b) VALUES ($1, $2)", 2),
            sql("INSERT INTO search_current (a) VALUES ($1)", 1),
            sql("INSERT INTO search_token (a) VALUES ($1), ($2)", 2),
            sql("INSERT INTO search_token (b) VALUES ($1)", 1),
        ]);
        assert_eq!(create.len(), 1, "{create:?}");
        assert_eq!(
            create[0].text,
            "WITH w0 AS (INSERT INTO resource_version (a, b) VALUES ($1, $2)), \
             w1 AS (INSERT INTO search_current (a) VALUES ($3)), w2 AS (INSERT INTO search_token (a) VALUES ($4), ($5)) \
             INSERT INTO search_token (b) VALUES ($6)"
        );
        assert_eq!(create[0].binds, [0, 1, 0, 0, 1, 0].map(Bind::Int));
        // An update: its old rows go in one statement, its new ones in the next.
        let update = with_ctes(vec![
            sql("INSERT INTO resource_version (a) VALUES ($1)", 1),
            sql("DELETE FROM search_token WHERE id = $1", 1),
            sql("DELETE FROM search_current WHERE id = $1", 1),
            sql("INSERT INTO search_current (a) VALUES ($1)", 1),
            sql("INSERT INTO search_token (a) VALUES ($1)", 1),
        ]);
        let texts: Vec<&str> = update.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "WITH w0 AS (INSERT INTO resource_version (a) VALUES ($1)), w1 AS (DELETE FROM search_token WHERE id = $2) \
                 DELETE FROM search_current WHERE id = $3",
                "WITH w0 AS (INSERT INTO search_current (a) VALUES ($1)) INSERT INTO search_token (a) VALUES ($2)",
            ]
        );
        // Anything else, or with a literal, stays on its own, in its place.
        let apart = with_ctes(vec![
            sql("INSERT INTO search_uri (a) VALUES ($1)", 1),
            sql("UPDATE write_bucket SET pos = $1", 1),
            sql("INSERT INTO search_uri (a) VALUES ('$1')", 0),
            sql("INSERT INTO search_date (a) VALUES ($1)", 1),
        ]);
        assert_eq!(apart.len(), 4, "{apart:?}");
        assert_eq!(apart[3].text, "INSERT INTO search_date (a) VALUES ($1)");
        assert_eq!(renumbered("$1, $12, $", 3), "$4, $15, $");
    }

    #[test]
    fn sqlite_statements_combine_with_anonymous_placeholders_in_order() {
        let joined = combined(vec![sql("INSERT INTO a VALUES (?1, ?2)", 2), sql("DELETE FROM b WHERE x = ?1", 1)]);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].text, "INSERT INTO a VALUES (?, ?);\nDELETE FROM b WHERE x = ?");
        assert_eq!(joined[0].binds, [Bind::Int(0), Bind::Int(1), Bind::Int(0)]);
        // A placeholder used twice, or out of order, keeps its statement apart.
        let apart = combined(vec![sql("SELECT ?1, ?1", 1), sql("SELECT ?2, ?1", 2), sql("SELECT ?1", 1)]);
        assert_eq!(apart.len(), 3, "{apart:?}");
        assert_eq!(apart[2].text, "SELECT ?");
        assert!(anonymous(&sql("SELECT '?1'", 1)).is_none());
        // SQLite's parameter limit per text is kept.
        let wide = |n: usize| Sql {
            text: format!("INSERT INTO a VALUES ({})", (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")),
            binds: vec![Bind::Null; n],
        };
        let split = combined(vec![wide(20_000), wide(5_000), wide(20_000)]);
        assert_eq!(split.iter().map(|s| s.binds.len()).collect::<Vec<_>>(), [25_000, 20_000]);
    }
}
