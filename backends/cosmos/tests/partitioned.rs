//! The partitioned layout on the in-process emulator (four physical partitions), beyond the
//! contract suite: a cross-partition transaction stopped between every two steps of its
//! protocol is seen whole or not at all by reads, searches and history, and the next writer
//! finishes or removes it; a pending transaction is never overwritten; a one-partition store
//! migrates, resumably; the default layout is detected from what the container holds; what each
//! interaction is charged. (A 1,200-resource transaction is a
//! contract case: `large_batch_is_atomic`.)

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]
#![expect(clippy::panic, reason = "tests: a panic is a failed test")]

use std::time::Duration;

use fhirgate_cosmos::{CosmosSettings, CosmosStore, Layout};
use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::index::extract;
use fhirgate_engine::storage::contract::{at, history_query, query};
use fhirgate_engine::storage::{Guard, ResourceVersion, Store, StoreError, Write, WriteKind};
use serde_json::json;

/// The protocol steps of the transaction of [`transaction`]: begin, lock, three stages,
/// commit, three applies, unlock, finish.
const STEPS: usize = 11;
/// The step before which the commit is sent: crashes from here on leave it committed.
const COMMIT: usize = 5;

/// A fresh emulator account in the partitioned layout; transactions stage one resource at a
/// time so that the crash points are the same in every run.
fn account() -> CosmosSettings {
    let mut settings = CosmosSettings::emulator().expect("emulator settings");
    settings.layout = Layout::Partitioned;
    settings.tx_parallelism = 1;
    settings
}

/// A store on `settings`' account whose transactions may be aborted by others after `lease`.
async fn open(settings: &CosmosSettings, lease: Duration) -> CosmosStore {
    let mut settings = settings.clone();
    settings.tx_lease = lease;
    CosmosStore::connect(&settings).await.expect("connect to the emulator")
}

/// A write of `resource` as `version` (index entries extracted as the engine does).
fn write(resource: serde_json::Value, version: u64) -> Write {
    let index = extract(Definitions::r4(), &resource);
    Write {
        version: ResourceVersion {
            resource_type: resource["resourceType"].as_str().unwrap_or_default().to_owned(),
            id: resource["id"].as_str().unwrap_or_default().to_owned(),
            version,
            last_updated: at(i64::try_from(version).unwrap_or(0) * 10),
            kind: if version == 1 { WriteKind::Create } else { WriteKind::Update },
            json: Some(resource.to_string()),
        },
        index,
    }
}

fn patient(id: &str, mrn: &str) -> serde_json::Value {
    json!({ "resourceType": "Patient", "id": id, "identifier": [{ "system": "urn:mrn", "value": mrn }] })
}

fn guard(mrn: &str) -> Guard {
    let params = format!("identifier=urn:mrn|{mrn}");
    Guard { key: format!("Patient?{params}"), query: query(Some("Patient"), &params) }
}

/// Updates Patient/a to version 2, creates Patient/b (guarded by its identifier) and
/// Observation/c: three partitions, one lock.
async fn transaction(store: &CosmosStore) -> Result<(), StoreError> {
    let writes = vec![
        write(patient("a", "a-2"), 2),
        write(patient("b", "b"), 1),
        write(json!({ "resourceType": "Observation", "id": "c", "subject": { "reference": "Patient/b" } }), 1),
    ];
    store.transact_guarded(writes, &[guard("b")]).await
}

/// What a reader sees of the transaction: `Some(true)` all of it, `Some(false)` none of it;
/// anything else fails the test.
async fn seen(store: &CosmosStore) -> bool {
    let a = store.read("Patient", "a").await.expect("read a").map(|v| v.version);
    let b = store.read("Patient", "b").await.expect("read b").map(|v| v.version);
    let c = store.read("Observation", "c").await.expect("read c").map(|v| v.version);
    let found = store.count(&query(Some("Patient"), "identifier=urn:mrn|b")).await.expect("search");
    let referring = store.count(&query(Some("Observation"), "subject=Patient/b")).await.expect("search");
    let history = store.history(&history_query(None, None, 100)).await.expect("history").total;
    let vread = store.vread("Patient", "a", 2).await.expect("vread").is_some();
    match (a, b, c, found, referring, history, vread) {
        (Some(1), None, None, 0, 0, 1, false) => false,
        (Some(2), Some(1), Some(1), 1, 1, 4, true) => true,
        other => panic!("half a transaction is visible: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_any_two_steps_leaves_all_or_nothing() {
    for crash in 0..=STEPS {
        let settings = account();
        let lease = Duration::from_millis(300);
        let writer = open(&settings, lease).await;
        writer.transact(vec![write(patient("a", "a-1"), 1)]).await.expect("seed");
        writer.crash_after(Some(crash));
        let result = transaction(&writer).await;
        assert_eq!(result.is_ok(), crash == STEPS, "crash before step {crash}: {result:?}");
        let committed = crash > COMMIT;

        // A reader: sees all (committed: it finishes the work) or nothing (pending: left alone
        // within the lease, aborted after it), never a part.
        let reader = open(&settings, Duration::from_secs(60)).await;
        assert_eq!(seen(&reader).await, committed, "crash before step {crash}");

        // A writer after the lease: resolves what it meets (aborts and cleans up a pending
        // transaction), and its own writes go through.
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let next = open(&settings, Duration::from_secs(60)).await;
        let a = next.read("Patient", "a").await.expect("read").map_or(0, |v| v.version);
        next.transact(vec![write(patient("a", "a-3"), a + 1)]).await.expect("the next write of a");
        let retried = next.transact_guarded(vec![write(patient("d", "b"), 1)], &[guard("b")]).await;
        match (committed, retried) {
            (true, Err(StoreError::GuardMatched(0))) | (false, Ok(())) => {}
            (_, other) => panic!("crash before step {crash}: the guard after recovery answered {other:?}"),
        }
        let b = next.read("Patient", "b").await.expect("read b");
        assert_eq!(b.is_some(), committed, "crash before step {crash}");
        let matching = next.count(&query(Some("Patient"), "identifier=urn:mrn|b")).await.expect("count");
        assert_eq!(matching, 1, "crash before step {crash}: one resource per criterion");
        let history = next.history(&history_query(None, None, 100)).await.expect("history").total;
        assert_eq!(history, if committed { 5 } else { 3 }, "crash before step {crash}: no staged version left");

        // The crashed writer's process "restarts" and works again.
        writer.crash_after(None);
        let c = writer.read("Observation", "c").await.expect("read c").map_or(0, |v| v.version);
        let observation = json!({ "resourceType": "Observation", "id": "c", "status": "final" });
        writer.transact(vec![write(observation, c + 1)]).await.expect("write after restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transaction_blocks_writers_until_its_lease_ends() {
    let settings = account();
    let writer = open(&settings, Duration::from_secs(60)).await;
    writer.transact(vec![write(patient("a", "a-1"), 1)]).await.expect("seed");
    writer.crash_after(Some(COMMIT));
    assert!(transaction(&writer).await.is_err());
    // Within the lease another writer of `a` waits, then gives up with 503 (never overwrites).
    let mut impatient = settings.clone();
    impatient.write_attempts = 3;
    impatient.tx_lease = Duration::from_secs(60);
    let other = CosmosStore::connect(&impatient).await.expect("connect");
    let result = other.transact(vec![write(patient("a", "a-x"), 2)]).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert_eq!(other.read("Patient", "a").await.expect("read").map(|v| v.version), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_partition_store_migrates_and_resumes() {
    let mut settings = CosmosSettings::emulator().expect("emulator settings");
    settings.layout = Layout::Single;
    let old = CosmosStore::connect(&settings).await.expect("connect");
    fhirgate_engine::storage::contract::seed(&old).await;
    fhirgate_engine::storage::contract::index_put(
        &old,
        json!({ "resourceType": "Patient", "id": "m", "identifier": [{ "system": "urn:mrn", "value": "7" }] }),
        1,
        70,
    )
    .await;
    let job =
        fhirgate_engine::storage::JobRecord { id: "j1".into(), kind: "export".into(), version: 1, body: "{}".into() };
    old.put_job(&job).await.expect("job");

    settings.layout = Layout::Partitioned;
    let new = CosmosStore::connect(&settings).await.expect("connect");
    let first = new.migrate_from_single("fhir", 4, Some(2)).await.expect("first run");
    assert_eq!((first.copied, first.done), (7, false), "{first:?} (the clock is left behind)");
    let rest = new.migrate_from_single("fhir", 4, None).await.expect("second run");
    assert!(rest.done, "{rest:?}");
    let again = new.migrate_from_single("fhir", 4, None).await.expect("third run");
    assert_eq!((again.copied, again.done), (0, true), "a finished migration does nothing");

    let everything = history_query(None, None, 100);
    let (before, after) =
        (old.history(&everything).await.expect("history"), new.history(&everything).await.expect("history"));
    assert_eq!(after.versions, before.versions, "same history, same order");
    for (t, id) in [("Patient", "a"), ("Patient", "b"), ("Observation", "o"), ("Patient", "m")] {
        assert_eq!(new.read(t, id).await.expect("read"), old.read(t, id).await.expect("read"), "{t}/{id}");
    }
    assert_eq!(new.count(&query(Some("Patient"), "identifier=urn:mrn|7")).await.expect("count"), 1);
    assert_eq!(new.job("j1").await.expect("job"), Some(job));
    // The migrated store takes writes, after the migrated history.
    new.transact(vec![write(patient("m", "8"), 2)]).await.expect("write after migration");
    let latest = new.history(&history_query(None, None, 1)).await.expect("history");
    assert_eq!(latest.versions.first().map(|v| (v.id.as_str(), v.version)), Some(("m", 2)));
}

/// `layout = "auto"` (the default): a new store is partitioned; an existing one-partition store
/// is served as such, its data there (never an empty store), also while its migration is
/// unfinished; once migrated, the partitioned copy is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_layout_is_what_the_container_holds() {
    let fresh = CosmosSettings::emulator().expect("emulator settings");
    assert_eq!(fresh.layout, Layout::Auto);
    let store = CosmosStore::connect(&fresh).await.expect("connect");
    assert_eq!(store.layout(), Layout::Partitioned, "a new store");
    store.transact(vec![write(patient("n", "1"), 1)]).await.expect("write");
    let again = CosmosStore::connect(&fresh).await.expect("reconnect");
    assert_eq!(again.layout(), Layout::Partitioned, "a partitioned store");
    assert_eq!(again.read("Patient", "n").await.expect("read").map(|v| v.version), Some(1));

    let mut settings = CosmosSettings::emulator().expect("emulator settings");
    settings.layout = Layout::Single;
    let old = CosmosStore::connect(&settings).await.expect("connect");
    fhirgate_engine::storage::contract::seed(&old).await;
    let auto = |settings: &CosmosSettings| {
        let mut settings = settings.clone();
        settings.layout = Layout::Auto;
        async move { CosmosStore::connect(&settings).await.expect("connect") }
    };
    let same = |a: CosmosStore, b: CosmosStore| async move {
        for (t, id) in [("Patient", "a"), ("Patient", "b"), ("Observation", "o")] {
            let read = a.read(t, id).await.expect("read");
            assert!(read.is_some(), "{t}/{id} is there");
            assert_eq!(read, b.read(t, id).await.expect("read"), "{t}/{id}");
        }
        let everyone = query(Some("Patient"), "");
        assert_eq!(a.count(&everyone).await.expect("count"), b.count(&everyone).await.expect("count"));
    };
    let detected = auto(&settings).await;
    assert_eq!(detected.layout(), Layout::Single, "an existing one-partition store");
    same(detected, CosmosStore::connect(&settings).await.expect("connect")).await;

    settings.layout = Layout::Partitioned;
    let target = CosmosStore::connect(&settings).await.expect("connect");
    let first = target.migrate_from_single("fhir", 2, Some(1)).await.expect("first run");
    assert!(!first.done, "{first:?}");
    let detected = auto(&settings).await;
    assert_eq!(detected.layout(), Layout::Single, "a migration under way serves the old store");
    same(detected, old).await;
    assert!(target.migrate_from_single("fhir", 2, None).await.expect("the rest").done);
    let detected = auto(&settings).await;
    assert_eq!(detected.layout(), Layout::Partitioned, "a finished migration serves the copy");
    same(detected, target).await;
}

/// What each interaction is charged on the emulator (its request-unit model: 1 RU per KB read,
/// 5.8 RU per KB created, 1.5 times that replaced, 0.3 RU per indexed top-level property), in
/// both layouts; `cargo test -p fhirgate-cosmos --test partitioned charges -- --nocapture`
/// prints the table the README quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_charges_per_interaction() {
    use fhirgate_engine::storage::cost::metered;
    for layout in [Layout::Single, Layout::Partitioned] {
        let mut settings = CosmosSettings::emulator().expect("emulator settings");
        settings.layout = layout;
        let store = CosmosStore::connect(&settings).await.expect("connect");
        let mut rows: Vec<(&str, f64)> = Vec::new();
        let (r, ru) = metered(store.transact(vec![write(patient("p", "1"), 1)])).await;
        r.expect("create");
        rows.push(("create", ru));
        let (r, ru) = metered(store.read("Patient", "p")).await;
        r.expect("read");
        rows.push(("read", ru));
        let (r, ru) = metered(store.transact(vec![write(patient("p", "2"), 2)])).await;
        r.expect("update");
        rows.push(("update", ru));
        let (r, ru) = metered(store.transact_guarded(vec![write(patient("q", "3"), 1)], &[guard("3")])).await;
        r.expect("conditional create");
        rows.push(("conditional create", ru));
        let bundle: Vec<Write> = (0..10).map(|n| write(patient(&format!("t{n}"), &format!("t{n}")), 1)).collect();
        let (r, ru) = metered(store.transact(bundle)).await;
        r.expect("transaction");
        rows.push(("transaction of 10", ru));
        let (r, ru) = metered(store.search(&query(Some("Patient"), "identifier=urn:mrn|2"), 10)).await;
        r.expect("search");
        rows.push(("search (1 clause)", ru));
        // One key-set query per value: two values, two queries before the final one.
        let (r, ru) =
            metered(store.search(&query(Some("Patient"), "identifier=urn:mrn|2,urn:mrn|3&gender:missing=true"), 10))
                .await;
        r.expect("search");
        rows.push(("search (2 clauses, 3 values)", ru));
        let (r, ru) = metered(store.count(&query(Some("Patient"), "identifier=urn:mrn|2"))).await;
        r.expect("count");
        rows.push(("count", ru));
        let (r, ru) = metered(store.history(&history_query(Some("Patient"), Some("p"), 10))).await;
        r.expect("history");
        rows.push(("instance history", ru));
        for (what, ru) in &rows {
            println!("{layout:?}\t{what}\t{ru:.1} RU");
            assert!(*ru > 0.0, "{layout:?} {what}: the emulator reports a charge");
        }
    }
}
