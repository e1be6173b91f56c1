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
        let pinned = HistoryQuery { snapshot: Some(snapshot.clone()), ..history_query(None, None, 1) };
        assert_eq!(store.history(&pinned).await.expect("history").total, total, "snapshot {snapshot:?}");
    }
    assert_eq!(store.history(&history_query(None, None, 1)).await.expect("history").total, 240);
    store.close().await;
}

/// A database of the schema before migration 0006 (one identity sequence for `pos`, index
/// entries of old versions in `index_entry`), with versions in it written as that schema's
/// writer wrote them, is migrated when a store connects: history, vread and index entries read
/// as before, writing goes on in the buckets, and snapshots still hide later writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_schema_migrates_with_its_data() {
    use fhirgate_engine::storage::contract::{at, sample_index};

    let database = TempDatabase::new().await;
    let mut conn = database.options().connect().await.expect("connect");
    sqlx::migrate!("./migrations").run_to(5, &mut conn).await.expect("the schema before 0006");
    let old = |resource_type: &str, id: &str, version: i64, ms: i64, with_entries: bool| {
        let millis = (at(ms) - time::OffsetDateTime::UNIX_EPOCH).whole_milliseconds();
        let json = format!(r#"{{"resourceType":"{resource_type}","id":"{id}","v":{version}}}"#);
        let entries = with_entries.then(|| serde_json::to_string(&sample_index()).expect("json"));
        sqlx::query(
            "INSERT INTO resource_version (resource_type, id, version, last_updated, kind, json, index_entries) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING pos",
        )
        .bind(resource_type.to_owned())
        .bind(id.to_owned())
        .bind(version)
        .bind(i64::try_from(millis).expect("millis"))
        .bind(if version == 1 { "create" } else { "update" })
        .bind(json)
        .bind(entries)
    };
    // Patient/a 1 from before migration 0004 (entries in `index_entry`), then versions of 0004's.
    let legacy: i64 =
        old("Patient", "a", 1, 0, false).fetch_one(&mut conn).await.map(|r| sqlx::Row::get(&r, 0)).expect("v1");
    for (seq, entry) in sample_index().iter().enumerate() {
        sqlx::query("INSERT INTO index_entry (pos, seq, param, value) VALUES ($1, $2, $3, $4)")
            .bind(legacy)
            .bind(i32::try_from(seq).expect("seq"))
            .bind(entry.param.clone())
            .bind(serde_json::to_string(&entry.value).expect("json"))
            .execute(&mut conn)
            .await
            .expect("index entry");
    }
    old("Observation", "o", 1, 10, true).execute(&mut conn).await.expect("o1");
    old("Patient", "a", 2, 20, true).execute(&mut conn).await.expect("a2");
    for (resource_type, id, version) in [("Patient", "a", 2_i64), ("Observation", "o", 1)] {
        sqlx::query("INSERT INTO resource_current (resource_type, id, version) VALUES ($1, $2, $3)")
            .bind(resource_type)
            .bind(id)
            .bind(version)
            .execute(&mut conn)
            .await
            .expect("current");
    }
    conn.close().await.expect("close");

    let store = database.store().await;
    let before = store.history(&history_query(None, None, 10)).await.expect("history");
    let listed: Vec<_> =
        before.versions.iter().map(|v| format!("{}/{}/{}", v.resource_type, v.id, v.version)).collect();
    assert_eq!(listed, ["Patient/a/2", "Observation/o/1", "Patient/a/1"]);
    assert_eq!(store.index("Patient", "a", 1).await.expect("index"), Some(sample_index()), "moved from `index_entry`");
    assert_eq!(store.index("Patient", "a", 2).await.expect("index"), Some(sample_index()));
    assert_eq!(store.vread("Patient", "a", 1).await.expect("vread").map(|v| v.version), Some(1));

    put(&store, version("Patient", "a", 3, 30)).await;
    for n in 0..20 {
        put(&store, version("Patient", &format!("n{n}"), 1, 40 + n)).await;
    }
    let instance = store.history(&history_query(Some("Patient"), Some("a"), 10)).await.expect("history");
    assert_eq!(instance.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [3, 2, 1]);
    let pinned = HistoryQuery { snapshot: Some(before.snapshot.clone()), ..history_query(None, None, 10) };
    assert_eq!(store.history(&pinned).await.expect("history").total, 3, "the old snapshot hides what came after");
    let now = store.history(&history_query(None, None, 100)).await.expect("history");
    assert_eq!(now.total, 24);
    assert!(now.snapshot.covers(&before.snapshot) && now.snapshot != before.snapshot);
    let mut conn = database.options().connect().await.expect("connect");
    let buckets: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT bucket) FROM resource_version")
        .fetch_one(&mut conn)
        .await
        .expect("buckets");
    assert!(buckets > 4, "new versions spread over the buckets: {buckets}");
    let gone: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('index_entry')::text").fetch_one(&mut conn).await.expect("regclass");
    assert_eq!(gone, None, "`index_entry` is dropped");
    conn.close().await.expect("close");
    store.close().await;
}

/// The search tables' indexes: built (in the catalogue), set aside (recorded).
async fn search_indexes(store: &PostgresStore) -> (i64, i64) {
    let pool = fhirgate_sql::Backend::reader(store.backend());
    let built = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'search\\_%'",
    )
    .fetch_one(pool)
    .await
    .expect("indexes");
    let aside = sqlx::query_scalar("SELECT count(*) FROM deferred_index").fetch_one(pool).await.expect("set aside");
    (built, aside)
}

/// An initial load into an empty store sets its search indexes aside (every one but a primary
/// key's) until it ends; a load that never ended (its gateway died) leaves them recorded for
/// another gateway, whose `load_ends` builds every one; a load into a store that holds
/// resources sets nothing aside.
#[tokio::test]
async fn search_indexes_set_aside_by_a_load_are_built_by_any_gateway() {
    let database = TempDatabase::new().await;
    let first = database.store().await;
    let (built, aside) = search_indexes(&first).await;
    assert!(built >= 17 && aside == 0, "{built} indexes, {aside} set aside");
    first.load_begins().await.expect("load begins");
    assert_eq!(search_indexes(&first).await, (1, built - 1), "only search_current's primary key stays");
    put(&first, version("Patient", "a", 1, 0)).await;
    first.close().await;
    drop(first);

    let second = database.store().await;
    assert_eq!(search_indexes(&second).await, (1, built - 1), "still recorded");
    let mut pieces = 0;
    while second.load_ends().await.expect("load ends") {
        pieces += 1;
        assert!(pieces < 100);
    }
    assert_eq!(search_indexes(&second).await, (built, 0));
    // The load's end analysed the tables: the planner has their statistics at once.
    let pool = fhirgate_sql::Backend::reader(second.backend());
    let analysed: Option<i64> = sqlx::query_scalar(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = 'search_current'::regclass AND reltuples >= 0",
    )
    .fetch_optional(pool)
    .await
    .expect("statistics");
    assert_eq!(analysed, Some(1), "search_current analysed: its one row counted");
    second.load_begins().await.expect("a load into a store that holds a resource");
    assert_eq!(search_indexes(&second).await, (built, 0), "nothing set aside");
    second.close().await;
}
