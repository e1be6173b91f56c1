//! The storage contract suite on SQLite (a fresh file per case, and in memory), plus what only
//! a file-backed store can show: reopening, creating directories, URLs.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use fhirgate_engine::storage::contract::{Scoped, check_reopened, history_query, put, seed_for_reopening, version};
use fhirgate_engine::storage::{Store, Write};
use fhirgate_sqlite::SqliteStore;

/// A directory under the system temp dir, unique to this process and call, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("fhirgate-sqlite-{}-{n}", std::process::id())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store on a fresh file that disappears with it.
async fn file_store() -> Scoped<SqliteStore, TempDir> {
    let dir = TempDir::new();
    let store = fhirgate_sqlite::open(&dir.0.join("fhir.db")).await.expect("open a fresh store");
    Scoped::new(store, dir)
}

async fn memory_store() -> Box<SqliteStore> {
    Box::new(fhirgate_sqlite::connect("sqlite::memory:").await.expect("open an in-memory store"))
}

mod file {
    fhirgate_engine::store_contract!(super::file_store().await);
}

mod memory {
    fhirgate_engine::store_contract!(super::memory_store().await);
}

async fn open(path: &Path) -> SqliteStore {
    fhirgate_sqlite::open(path).await.expect("open store")
}

#[tokio::test]
async fn data_and_history_survive_reopening() {
    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let store = open(&path).await;
    let before = seed_for_reopening(&store).await;
    store.close().await;
    drop(store);

    let store = open(&path).await;
    check_reopened(&store, before).await;
    store.close().await;
}

#[tokio::test]
async fn open_creates_missing_directories_and_uses_wal() {
    let dir = TempDir::new();
    let path = dir.0.join("a").join("b").join("fhir.db");
    let store = open(&path).await;
    assert!(path.is_file(), "{} exists", path.display());
    put(&store, version("Patient", "a", 1, 0)).await;
    let wal = path.with_file_name("fhir.db-wal");
    assert!(wal.is_file(), "write-ahead log {} exists", wal.display());
    store.close().await;
}

#[test]
fn sqlite_is_built_with_a_page_cache_per_connection() {
    // `.cargo/config.toml`: built with SQLITE_ENABLE_MEMORY_MANAGEMENT, every connection shares
    // one cache behind one mutex, and the readers of a search load wait on each other.
    let connection = rusqlite::Connection::open_in_memory().expect("open");
    let mut statement = connection.prepare("PRAGMA compile_options").expect("pragma");
    let options: Vec<String> =
        statement.query_map([], |r| r.get(0)).expect("options").collect::<Result<_, _>>().expect("read");
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
}

#[tokio::test]
async fn connect_accepts_sqlite_urls() {
    let dir = TempDir::new();
    for (n, prefix) in ["sqlite:", "sqlite://"].into_iter().enumerate() {
        let path = dir.0.join(format!("d{n}")).join("fhir.db");
        let url = format!("{prefix}{}", path.display());
        let store = fhirgate_sqlite::connect(&url).await.expect("connect");
        put(&store, version("Patient", "a", 1, 0)).await;
        store.close().await;
        assert!(path.is_file(), "{url} made {}", path.display());
    }
    let memory = fhirgate_sqlite::connect("sqlite::memory:").await.expect("connect in memory");
    assert_eq!(memory.health().await.ok(), Some(()));
    assert_eq!(memory.kind(), "sqlite");
}

/// Two stores on one file stand for two processes: their writers do not share a pool, so only
/// SQLite's lock (`BEGIN IMMEDIATE` + busy timeout) keeps check-then-insert atomic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_two_stores_on_one_file_do_not_both_win() {
    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let (one, two) = (open(&path).await, open(&path).await);
    for round in 1..=20_u64 {
        let id = format!("r{round}");
        let (a, b) = tokio::join!(
            one.transact(vec![fhirgate_engine::storage::contract::write(version("Patient", &id, 1, 0))]),
            two.transact(vec![fhirgate_engine::storage::contract::write(version("Patient", &id, 1, 0))]),
        );
        let outcomes = [a.is_ok(), b.is_ok()];
        assert_eq!(outcomes.iter().filter(|won| **won).count(), 1, "round {round}: {a:?} {b:?}");
        let loser = if outcomes[0] { b } else { a };
        fhirgate_engine::storage::contract::assert_conflict(loser, "Patient", &id, 0, 1);
    }
    one.close().await;
    two.close().await;
}

/// The file is in WAL mode (persistent, so any connection sees it), and while another
/// connection holds the write lock mid-transaction, reads answer at once from the last
/// committed state. (A rollback journal would also let these reads through until the writer
/// commits; the `journal_mode` check is what pins WAL.)
#[tokio::test]
async fn reads_do_not_wait_for_a_writer() {
    use sqlx::Connection;

    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let store = open(&path).await;
    put(&store, version("Patient", "a", 1, 0)).await;

    let url = format!("sqlite://{}", path.display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("second connection");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut other).await.expect("journal mode");
    assert_eq!(mode, "wal");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("take the write lock");
    sqlx::query("DELETE FROM index_entry").execute(&mut other).await.expect("write inside the lock");

    let quick = std::time::Duration::from_secs(1);
    let read = tokio::time::timeout(quick, store.read("Patient", "a")).await.expect("read without waiting");
    assert_eq!(read.expect("read").map(|v| v.version), Some(1));
    let history = tokio::time::timeout(quick, store.history(&history_query(None, None, 10))).await;
    assert_eq!(history.expect("history without waiting").expect("history").total, 1);

    sqlx::query("ROLLBACK").execute(&mut other).await.expect("release the lock");
    other.close().await.expect("close");
    store.close().await;
}

/// Versions written before a version's index entries were kept in its row (migration 0004) have
/// them in `index_entry` rows: they are still read from there.
#[tokio::test]
async fn index_entries_written_as_rows_are_still_read() {
    use sqlx::Connection;

    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let store = open(&path).await;
    let written = fhirgate_engine::storage::contract::sample_index();
    assert!(written.len() > 1);
    let write = Write { version: version("Patient", "a", 1, 0), index: written.clone() };
    store.transact(vec![write]).await.expect("write");
    assert_eq!(store.index("Patient", "a", 1).await.expect("index"), Some(written.clone()));

    // Rewrite the version as an older server stored it.
    let url = format!("sqlite://{}", path.display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("second connection");
    let pos: i64 = sqlx::query_scalar("SELECT pos FROM resource_version WHERE resource_type = 'Patient' AND id = 'a'")
        .fetch_one(&mut other)
        .await
        .expect("position");
    for (seq, entry) in (0_i64..).zip(&written) {
        sqlx::query("INSERT INTO index_entry (pos, seq, param, value) VALUES (?1, ?2, ?3, ?4)")
            .bind(pos)
            .bind(seq)
            .bind(&entry.param)
            .bind(serde_json::to_string(&entry.value).expect("entry as JSON"))
            .execute(&mut other)
            .await
            .expect("index row");
    }
    sqlx::query("UPDATE resource_version SET index_entries = NULL").execute(&mut other).await.expect("old form");
    assert_eq!(store.index("Patient", "a", 1).await.expect("index"), Some(written));
}

/// A large batch goes to SQLite as a few joined statements and stored-version lookups of a few
/// hundred resources each: every write lands with its index, a resource written twice in one
/// batch gets both versions, and a conflict anywhere stores nothing.
#[tokio::test]
async fn large_batches_store_every_write_or_none() {
    use fhirgate_engine::storage::contract::sample_index;

    let store = memory_store().await;
    let indexed = |v| Write { version: v, index: sample_index() };
    let mut batch: Vec<Write> = (0..2_000).map(|n| indexed(version("Observation", &format!("o{n}"), 1, 0))).collect();
    batch.push(indexed(version("Patient", "twice", 1, 0)));
    batch.push(indexed(version("Patient", "twice", 2, 10)));
    store.transact(batch).await.expect("a large batch");
    for id in ["o0", "o999", "o1999"] {
        assert_eq!(store.read("Observation", id).await.expect("read").map(|v| v.version), Some(1), "{id}");
        assert_eq!(store.index("Observation", id, 1).await.expect("index"), Some(sample_index()), "{id}");
    }
    assert_eq!(store.read("Patient", "twice").await.expect("read").map(|v| v.version), Some(2));
    assert_eq!(store.index("Patient", "twice", 1).await.expect("index"), Some(sample_index()));

    let mut refused: Vec<Write> = (0..1_000).map(|n| indexed(version("Encounter", &format!("e{n}"), 1, 0))).collect();
    refused.push(indexed(version("Patient", "twice", 2, 20)));
    assert!(store.transact(refused).await.is_err(), "version 2 exists: a conflict");
    assert_eq!(store.read("Encounter", "e0").await.expect("read"), None, "nothing of the batch is stored");
}

/// The search tables' indexes (built, set aside) as the file records them.
fn search_indexes(path: &Path) -> (i64, i64) {
    let connection = rusqlite::Connection::open(path).expect("open");
    let built = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name LIKE 'search%'",
            [],
            |row| row.get(0),
        )
        .expect("indexes");
    let aside = connection.query_row("SELECT count(*) FROM deferred_index", [], |row| row.get(0)).expect("set aside");
    (built, aside)
}

/// An initial load into an empty store sets its search indexes aside until it ends; one that
/// never ends (the process died) leaves them recorded, and the store builds every one of them
/// when it opens again, before it answers.
#[tokio::test]
async fn search_indexes_set_aside_by_an_unended_load_are_built_on_reopening() {
    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let store = open(&path).await;
    let (built, aside) = search_indexes(&path);
    assert!(built >= 16 && aside == 0, "{built} indexes, {aside} set aside");
    store.load_begins().await.expect("load begins");
    assert_eq!(search_indexes(&path), (0, built));
    put(&store, version("Patient", "a", 1, 0)).await;
    drop(store);

    let store = open(&path).await;
    assert_eq!(search_indexes(&path), (built, 0));
    assert!(store.read("Patient", "a").await.expect("read").is_some());
    store.load_begins().await.expect("a load into a store that holds a resource");
    assert_eq!(search_indexes(&path), (built, 0), "nothing set aside");
    store.close().await;
}

/// Another store on the same file (another process) sets the indexes aside after this one
/// opened: this one's searches and counts still answer (they find the index gone and scan),
/// and walk the indexes again once they are built.
#[tokio::test]
async fn searches_answer_while_another_store_on_the_file_has_set_the_indexes_aside() {
    use fhirgate_engine::storage::contract::{ids, sample_index};

    let dir = TempDir::new();
    let path = dir.0.join("fhir.db");
    let loader = open(&path).await;
    let other = open(&path).await;
    loader.load_begins().await.expect("load begins");
    let (built, aside) = search_indexes(&path);
    assert!(built == 0 && aside > 0, "{built} indexes, {aside} set aside");
    let write = Write { version: version("Patient", "a", 1, 0), index: sample_index() };
    loader.load(&[write]).await.expect("load");
    assert_eq!(ids(&other, "Patient", "family=chalmers").await, ["a"]);
    while loader.load_ends().await.expect("load ends") {}
    assert_eq!(search_indexes(&path).1, 0);
    assert_eq!(ids(&other, "Patient", "family=chalmers&gender=male").await, ["a"]);
    other.close().await;
    loader.close().await;
}
