//! The search indexes an initial load into an empty store sets aside and builds at its end
//! ([`Store::load_begins`], [`Store::load_ends`]), on the writer thread.
//!
//! Each version of a load adds rows to the search tables, and each row an entry to two indexes
//! (the value's, the resource's) at a random place: past the page cache, every entry was a page
//! read and a page write, and at 1,000 patients (~20 GB) the import ran at 1,800 resources/s
//! with the writer thread busy all the time (bench/results/2026-12-07-bulk-p1000.md). Without
//! the indexes a load only appends to the tables, and `CREATE INDEX` then builds each index in
//! one sorted pass (5 million rows: 100 s inserted into two indexes, 18 s appended then indexed),
//! with full pages.
//!
//! Only an empty store's indexes are set aside (rebuilding a large store's to load a little
//! more would cost more than it saves). Meanwhile every answer stays right: a search that
//! would use an index scans its table instead, and a write that replaces a resource's search
//! rows finds them by scanning, which makes searches and updates during the load slow, not
//! wrong. What is set aside is recorded in `deferred_index` (name and SQL) in the transaction
//! that drops it, and each index is built in the transaction that removes its record, so a crash
//! at any point loses nothing: the store builds what is recorded when it opens again. Another
//! process on the same file learns of it when a statement names a missing index: its search
//! runs again without naming one, and it asks the file before each search until they are back.
//!
//! [`Store::load_begins`]: fhirgate_engine::storage::Store::load_begins
//! [`Store::load_ends`]: fhirgate_engine::storage::Store::load_ends

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fhirgate_sql::Error;
use rusqlite::{Connection, OptionalExtension};

use crate::CACHE_KIB;
use crate::readers::failed;

/// The writer's page cache while it builds an index, in KiB (negative, as `cache_size` takes it).
const SORT_CACHE_KIB: &str = "-8192";

/// Whether search indexes are set aside now, shared by a store's connections: while they are, no
/// statement names one (`Driver::value_indexes`) and searches scan the tables instead.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aside(Arc<AtomicBool>);

impl Aside {
    /// Whether `connection` may name the value indexes: yes unless they were set aside, by this
    /// store or (seen as a missing index, [`Aside::gone`]) by another process on the file; then
    /// the file tells, until they are built again.
    pub(crate) fn value_indexes(&self, connection: &Connection) -> bool {
        !self.maybe() || self.check(connection).is_ok_and(|aside| !aside)
    }

    /// Whether indexes may be set aside: only then does [`Aside::value_indexes`] ask the file.
    pub(crate) fn maybe(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// A statement named an index another process set aside.
    pub(crate) fn gone(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Records whether any index is set aside, as the file says.
    fn check(&self, connection: &Connection) -> Result<bool, Error> {
        let any = connection.query_row("SELECT 1 FROM deferred_index LIMIT 1", [], |_| Ok(())).optional();
        let any = any.map_err(failed)?.is_some();
        self.0.store(any, Ordering::SeqCst);
        Ok(any)
    }
}

/// Sets aside the search tables' indexes if the store holds no resource and none are set aside
/// already (an initial load running since, or an interrupted one).
pub(crate) fn set_aside(connection: &Connection, aside: &Aside) -> Result<(), Error> {
    // Before any index goes: a search that starts meanwhile scans instead of naming it.
    aside.0.store(true, Ordering::SeqCst);
    let result = set_aside_now(connection);
    aside.check(connection)?;
    result
}

fn set_aside_now(connection: &Connection) -> Result<(), Error> {
    within(connection, || {
        let holds = |sql: &str| connection.query_row(sql, [], |_| Ok(())).optional().map(|found| found.is_some());
        if holds("SELECT 1 FROM deferred_index LIMIT 1").map_err(failed)?
            || holds("SELECT 1 FROM resource_version LIMIT 1").map_err(failed)?
        {
            return Ok(());
        }
        let indexes: Vec<(String, String)> = {
            let mut statement = connection
                .prepare(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                     AND tbl_name LIKE 'search\\_%' ESCAPE '\\' ORDER BY name",
                )
                .map_err(failed)?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(failed)?;
            rows.collect::<Result<_, _>>().map_err(failed)?
        };
        for (name, sql) in &indexes {
            connection
                .execute("INSERT INTO deferred_index (name, sql) VALUES (?1, ?2)", [name, sql])
                .map_err(failed)?;
            connection.execute_batch(&format!("DROP INDEX \"{name}\"")).map_err(failed)?;
        }
        if !indexes.is_empty() {
            tracing::info!(indexes = indexes.len(), "initial load: search indexes set aside until it ends");
        }
        Ok(())
    })
}

/// Builds one index set aside; `true` if more remain.
pub(crate) fn build_one(connection: &Connection, aside: &Aside) -> Result<bool, Error> {
    let next: Option<(String, String)> = connection
        .query_row("SELECT name, sql FROM deferred_index ORDER BY name LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .map_err(failed)?;
    let Some((name, sql)) = next else { return Ok(false) };
    let started = std::time::Instant::now();
    // SQLite's sorter holds runs of up to the page cache's size in memory, one per sorting thread
    // (with 32 MB, the build's peak was ~100 MB of the process's); smaller runs only mean more
    // of them to merge. Its runs go to temporary files (the writer keeps its temporary data in
    // memory otherwise, `writer.rs`, which would hold the whole sort).
    connection
        .execute_batch(&format!("PRAGMA cache_size = {SORT_CACHE_KIB}; PRAGMA temp_store = FILE"))
        .map_err(failed)?;
    let built = within(connection, || {
        connection.execute_batch(&sql).map_err(failed)?;
        connection.execute("DELETE FROM deferred_index WHERE name = ?1", [&name]).map_err(failed)?;
        Ok(())
    });
    connection
        .execute_batch(&format!("PRAGMA cache_size = {CACHE_KIB}; PRAGMA temp_store = MEMORY"))
        .map_err(failed)?;
    built?;
    tracing::info!(index = %name, seconds = started.elapsed().as_secs_f64(), "search index built");
    aside.check(connection)
}

/// Runs `work` in a transaction that takes the write lock first (so no other writer, such as
/// the job records' connection or another process, slips in between a check and its write);
/// rolled back if `work` or the `COMMIT` fails (a failed `COMMIT` may leave it open).
pub(crate) fn within(connection: &Connection, work: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    connection.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
    match work().and_then(|()| connection.execute_batch("COMMIT").map_err(failed)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
