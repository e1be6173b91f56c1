//! The storage contract suite on PostgreSQL, each case in a database of its own, plus what only
//! a server store can show: reconnecting, several pools racing for one version, bad URLs.
//!
//! Needs a server: run through `scripts/with-postgres.sh`, which starts a throwaway cluster and
//! sets `FHIRGATE_TEST_POSTGRES_URL`. Without it every test fails (never passes silently).

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]
#![expect(clippy::panic, reason = "tests: a panic is a failed test")]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use fhirgate_engine::storage::contract::{
    Scoped, assert_conflict, check_reopened, history_query, put, seed_for_reopening, version, write,
};
use fhirgate_engine::storage::{HistoryQuery, Store, StoreError};
use fhirgate_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

const URL_VAR: &str = "FHIRGATE_TEST_POSTGRES_URL";

/// Where the test server is, from [`URL_VAR`].
fn admin_options() -> PgConnectOptions {
    let Ok(url) = std::env::var(URL_VAR) else {
        panic!(
            "{URL_VAR} is not set: run these tests through `bash scripts/with-postgres.sh cargo test -p fhirgate-postgres`"
        )
    };
    PgConnectOptions::from_str(&url).unwrap_or_else(|e| panic!("{URL_VAR} is not a postgres url: {e}"))
}

/// A database of its own, created empty, dropped (with its connections) when this is dropped.
struct TempDatabase {
    admin: PgConnectOptions,
    name: String,
}

impl TempDatabase {
    async fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("fhirgate_t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = admin_options();
        let mut conn = admin.connect().await.expect("connect to the test server");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        conn.close().await.expect("close the admin connection");
        Self { admin, name }
    }

    fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    async fn store(&self) -> PostgresStore {
        fhirgate_postgres::connect_with(self.options()).await.expect("connect a store")
    }
}

impl Drop for TempDatabase {
    /// Best effort on a thread of its own: `Drop` cannot await on the test's runtime.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = admin.connect().await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A store on a fresh database that disappears with it.
async fn fresh_store() -> Scoped<PostgresStore, TempDatabase> {
    let database = TempDatabase::new().await;
    Scoped::new(database.store().await, database)
}

mod contract {
    fhirgate_engine::store_contract!(super::fresh_store().await);
}

#[tokio::test]
async fn data_and_history_survive_reconnecting() {
    let database = TempDatabase::new().await;
    let store = database.store().await;
    let before = seed_for_reopening(&store).await;
    store.close().await;
    drop(store);

    let store = database.store().await;
    check_reopened(&store, before).await;
    // Migrating an up-to-date schema again changes nothing.
    store.backend().migrate().await.expect("migrate again");
    assert_eq!(store.history(&history_query(None, None, 100)).await.expect("history").total, 8);
    store.close().await;
}

/// Stores with pools of their own stand for several gateways: only PostgreSQL's row locks keep
/// check-then-insert atomic. Each round, eight writers on four pools race for one version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_of_several_pools_of_the_same_next_version_one_wins() {
    let database = TempDatabase::new().await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(database.store().await);
    }
    for round in 1..=10_u64 {
        let id = format!("r{round}");
        for next in 1..=3_u64 {
            let mut tasks = tokio::task::JoinSet::new();
            for writer in 0..8_usize {
                let store = stores[writer % stores.len()].clone();
                let mut v = version("Patient", &id, next, 10);
                v.json = Some(format!(r#"{{"resourceType":"Patient","id":"{id}","writer":{writer}}}"#));
                tasks.spawn(async move { (v.json.clone(), store.transact(vec![write(v)]).await) });
            }
            let results = tasks.join_all().await;
            let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).map(|(json, _)| json.clone()).collect();
            assert_eq!(winners.len(), 1, "round {round} version {next}: {results:?}");
            for (_, result) in results.into_iter().filter(|(_, r)| r.is_err()) {
                assert_conflict(result, "Patient", &id, next - 1, next);
            }
            let current = stores[0].read("Patient", &id).await.expect("read");
            assert_eq!(current.and_then(|v| v.json), winners.into_iter().next().flatten());
        }
        let history = stores[0].history(&history_query(Some("Patient"), Some(&id), 10)).await.expect("history");
        assert_eq!(history.total, 3, "round {round}: no loser left a version behind");
    }
    for store in stores {
        store.close().await;
    }
}

/// Two batches writing the same two resources in opposite orders neither deadlock nor both win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_crossing_the_same_resources_do_not_deadlock() {
    let database = TempDatabase::new().await;
    let (one, two) = (database.store().await, database.store().await);
    for round in 1..=20_u64 {
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        let forward = vec![write(version("Patient", &x, 1, 0)), write(version("Patient", &y, 1, 0))];
        let backward = vec![write(version("Patient", &y, 1, 0)), write(version("Patient", &x, 1, 0))];
        let (a, b) = tokio::join!(one.transact(forward), two.transact(backward));
        assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|won| **won).count(), 1, "round {round}: {a:?} {b:?}");
        // The loser reports the first write of its own batch that failed.
        match (a, b) {
            (Ok(()), loser) => assert_conflict(loser, "Patient", &y, 0, 1),
            (loser, _) => assert_conflict(loser, "Patient", &x, 0, 1),
        }
    }
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn connect_rejects_other_urls_and_reports_an_unreachable_server_as_unavailable() {
    for url in ["sqlite::memory:", "mysql://u:secret@localhost/db", "127.0.0.1:5432"] {
        let error = fhirgate_postgres::connect(url).await.expect_err(url);
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)), "{url}");
    }
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let error = fhirgate_postgres::connect("postgresql://postgres@127.0.0.1:1/none").await.expect_err("port 1");
    assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)));
}

#[tokio::test]
async fn health_and_kind() {
    let store = fresh_store().await;
    assert_eq!(store.health().await.ok(), Some(()));
    assert_eq!(store.kind(), "postgres");
    store.close().await;
    assert!(matches!(store.health().await, Err(StoreError::Unavailable(_))), "a closed pool is unavailable");
}

/// Write positions are drawn in commit order: while writers of different resources commit in
/// parallel, a total read once at a snapshot is the total read at that snapshot ever after
/// (a position committed after a larger one would make it grow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_stay_stable_while_parallel_writers_commit() {
    let database = TempDatabase::new().await;
    let store = database.store().await;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let store = database.store().await;
        writers.spawn(async move {
            for n in 0..60 {
                put(&store, version("Patient", &format!("w{writer}-{n}"), 1, n)).await;
            }
            store.close().await;
        });
    }
    let mut seen = Vec::new();
    while !writers.is_empty() {
        let page = store.history(&history_query(None, None, 1)).await.expect("history");
        seen.push((page.snapshot, page.total));
        if let Some(done) = writers.try_join_next() {
            done.expect("writer");
        }
    }
    assert!(seen.len() > 5, "the reader ran while the writers wrote: {}", seen.len());
    for (snapshot, total) in seen {
        let pinned = HistoryQuery { snapshot: Some(snapshot), ..history_query(None, None, 1) };
        assert_eq!(store.history(&pinned).await.expect("history").total, total, "snapshot {snapshot}");
    }
    assert_eq!(store.history(&history_query(None, None, 1)).await.expect("history").total, 240);
    store.close().await;
}
