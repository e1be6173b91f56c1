//! Contract cases for reads, writes, preconditions, atomicity, deletion, index entries and
//! concurrency.

use time::macros::datetime;

use super::{assert_conflict, deletion, ok, put, sample_index, version, write};
use crate::storage::{IndexEntry, IndexValue, ResourceVersion, SearchMatch, Store, Write, WriteKind};

/// The health check answers and the store names its kind.
pub async fn health_answers(store: &dyn Store) {
    ok(store.health().await, "health");
    assert!(!store.kind().is_empty(), "kind() must name the store");
}

/// What was written is read back, as the current version and by version number.
pub async fn create_then_read_and_vread(store: &dyn Store) {
    let v1 = version("Patient", "a", 1, 0);
    put(store, v1.clone()).await;
    assert_eq!(ok(store.read("Patient", "a").await, "read"), Some(v1.clone()));
    assert_eq!(ok(store.vread("Patient", "a", 1).await, "vread"), Some(v1.clone()));

    let v2 = version("Patient", "a", 2, 10);
    put(store, v2.clone()).await;
    assert_eq!(ok(store.read("Patient", "a").await, "read"), Some(v2.clone()));
    assert_eq!(ok(store.vread("Patient", "a", 1).await, "vread"), Some(v1));
    assert_eq!(ok(store.vread("Patient", "a", 2).await, "vread"), Some(v2));
}

/// Many versions at once come back in the order asked, without the ones not stored, also for
/// more keys than one statement takes.
pub async fn vread_many_keeps_the_order_asked(store: &dyn Store) {
    let (a1, a2, b1) = (version("Patient", "a", 1, 0), version("Patient", "a", 2, 1), version("Patient", "b", 1, 2));
    let other_type = version("Observation", "a", 1, 3);
    for v in [&a1, &a2, &b1, &other_type] {
        put(store, v.clone()).await;
    }
    let key = |v: &ResourceVersion| SearchMatch {
        resource_type: v.resource_type.clone(),
        id: v.id.clone(),
        version: v.version,
    };
    let missing = |t: &str, id: &str, n: u64| SearchMatch { resource_type: t.into(), id: id.into(), version: n };
    let keys =
        [key(&b1), missing("Patient", "zz", 1), key(&a1), key(&other_type), missing("Patient", "a", 9), key(&a2)];
    let found = ok(store.vread_many(&keys).await, "vread_many");
    assert_eq!(found, [b1.clone(), a1.clone(), other_type, a2.clone()]);
    assert_eq!(ok(store.vread_many(&[]).await, "vread_many of nothing"), []);
    let many: Vec<SearchMatch> = (0..700).map(|n| if n % 2 == 0 { key(&a1) } else { key(&b1) }).collect();
    let found = ok(store.vread_many(&many).await, "vread_many of 700");
    assert_eq!(found.len(), 700);
    assert!(found.iter().enumerate().all(|(n, v)| *v == if n % 2 == 0 { a1.clone() } else { b1.clone() }));
}

/// Unknown resources and versions are `None`, not errors; ids are case-sensitive.
pub async fn read_of_unknown_is_none(store: &dyn Store) {
    assert_eq!(ok(store.read("Patient", "nope").await, "read"), None);
    assert_eq!(ok(store.vread("Patient", "nope", 1).await, "vread"), None);
    put(store, version("Patient", "a", 1, 0)).await;
    assert_eq!(ok(store.vread("Patient", "a", 0).await, "vread"), None);
    assert_eq!(ok(store.vread("Patient", "a", 2).await, "vread"), None);
    assert_eq!(ok(store.read("Patient", "A").await, "read"), None);
    assert_eq!(ok(store.read("Observation", "a").await, "read"), None);
}

/// Writing version 1 of an existing resource is a conflict and changes nothing.
pub async fn creating_twice_conflicts(store: &dyn Store) {
    let first = version("Patient", "a", 1, 0);
    put(store, first.clone()).await;
    let mut second = version("Patient", "a", 1, 5);
    second.json = Some(r#"{"resourceType":"Patient","id":"a","active":true}"#.into());
    assert_conflict(store.transact(vec![write(second)]).await, "Patient", "a", 0, 1);
    assert_eq!(ok(store.read("Patient", "a").await, "read"), Some(first));
}

/// A write must name exactly the next version: gaps and updates of nothing are conflicts.
pub async fn skipping_a_version_conflicts(store: &dyn Store) {
    let v1 = version("Patient", "a", 1, 0);
    put(store, v1.clone()).await;
    assert_conflict(store.transact(vec![write(version("Patient", "a", 3, 5))]).await, "Patient", "a", 2, 1);
    assert_eq!(ok(store.vread("Patient", "a", 3).await, "vread"), None);
    assert_eq!(ok(store.read("Patient", "a").await, "read"), Some(v1));

    assert_conflict(store.transact(vec![write(version("Patient", "b", 2, 5))]).await, "Patient", "b", 1, 0);
    assert_eq!(ok(store.read("Patient", "b").await, "read"), None);
}

/// One failed precondition in a batch stores none of its writes, before or after it.
pub async fn batch_is_atomic(store: &dyn Store) {
    put(store, version("Patient", "c", 1, 0)).await;
    let indexed = |v: ResourceVersion| Write { version: v, index: sample_index() };
    let batch = vec![
        indexed(version("Patient", "a", 1, 10)),
        indexed(version("Observation", "b", 1, 10)),
        indexed(version("Patient", "c", 1, 10)),
        indexed(version("Patient", "d", 1, 10)),
    ];
    assert_conflict(store.transact(batch).await, "Patient", "c", 0, 1);
    for (resource_type, id) in [("Patient", "a"), ("Observation", "b"), ("Patient", "d")] {
        assert_eq!(ok(store.read(resource_type, id).await, "read"), None, "{resource_type}/{id}");
        assert_eq!(ok(store.index(resource_type, id, 1).await, "index"), None, "{resource_type}/{id}");
    }
    let all = ok(store.history(&super::history_query(None, None, 100)).await, "history");
    assert_eq!(all.total, 1, "only the write before the batch is stored");
}

/// A batch without conflicts stores every write.
pub async fn batch_writes_every_resource(store: &dyn Store) {
    let versions = [version("Patient", "a", 1, 0), version("Observation", "b", 1, 0), version("Patient", "c", 1, 0)];
    ok(store.transact(versions.iter().cloned().map(write).collect()).await, "transact");
    for v in versions {
        assert_eq!(ok(store.read(&v.resource_type, &v.id).await, "read"), Some(v));
    }
}

/// A transaction as large as a Synthea patient (1,200 resources, or the store's own limit if it
/// is lower) is one atomic batch: a conflict on its last write stores none of it; without it
/// every write is stored. A store with a limit refuses a batch above it and stores nothing.
pub async fn large_batch_is_atomic(store: &dyn Store) {
    let limit = store.capabilities().max_batch_writes;
    let size = limit.unwrap_or(usize::MAX).min(1_200);
    let batch = |conflict: bool, count: usize| -> Vec<Write> {
        (0..count)
            .map(|n| {
                let next = if conflict && n + 1 == count { 2 } else { 1 };
                write(version("Observation", &format!("o{n}"), next, 0))
            })
            .collect()
    };
    assert_conflict(store.transact(batch(true, size)).await, "Observation", &format!("o{}", size - 1), 1, 0);
    let none = ok(store.history(&super::history_query(None, None, 10)).await, "history");
    assert_eq!(none.total, 0, "a failed batch of {size} stores nothing");
    if let Some(limit) = limit {
        let refused = store.transact(batch(false, limit + 1)).await;
        assert!(matches!(refused, Err(crate::storage::StoreError::Unsupported(_))), "{refused:?}");
        assert_eq!(ok(store.history(&super::history_query(None, None, 10)).await, "history").total, 0);
    }
    ok(store.transact(batch(false, size)).await, "a large batch");
    let all = ok(store.history(&super::history_query(Some("Observation"), None, 10)).await, "history");
    assert_eq!(all.total, u64::try_from(size).unwrap_or(u64::MAX));
    assert_eq!(ok(store.read("Observation", &format!("o{}", size - 1)).await, "read").map(|v| v.version), Some(1));
}

/// A deletion is a version: read returns it, and the versions before it stay readable.
pub async fn delete_keeps_history(store: &dyn Store) {
    let v1 = version("Patient", "a", 1, 0);
    let v2 = version("Patient", "a", 2, 10);
    let v3 = deletion("Patient", "a", 3, 20);
    for v in [&v1, &v2, &v3] {
        put(store, v.clone()).await;
    }
    let current = ok(store.read("Patient", "a").await, "read");
    assert_eq!(current, Some(v3.clone()));
    assert!(current.is_some_and(|v| v.is_deleted() && v.json.is_none()));
    assert_eq!(ok(store.vread("Patient", "a", 1).await, "vread"), Some(v1.clone()));
    assert_eq!(ok(store.vread("Patient", "a", 2).await, "vread"), Some(v2.clone()));
    assert_eq!(ok(store.vread("Patient", "a", 3).await, "vread"), Some(v3.clone()));
    let history = ok(store.history(&super::history_query(Some("Patient"), Some("a"), 10)).await, "history");
    assert_eq!(history.total, 3);
    assert_eq!(history.versions, vec![v3, v2, v1]);

    // A resource can come back after a deletion, as its next version.
    let v4 = version("Patient", "a", 4, 30);
    put(store, v4.clone()).await;
    assert_eq!(ok(store.read("Patient", "a").await, "read"), Some(v4));
}

/// The JSON text comes back exactly as written: spacing, key order, numbers, escapes.
pub async fn json_is_returned_byte_identical(store: &dyn Store) {
    let text = "{ \"resourceType\" : \"Patient\",\n  \"id\":\"a\", \"zeta\": 1.50, \"alpha\": 1e2,\
                \"big\": 12345678901234567890.000000000001,\n\t\"name\":[{\"family\":\"Ch\\u00e4lmers é 😀 \\\"q\\\" \\\\\"}],\
                \"none\":null }\n";
    let mut v1 = version("Patient", "a", 1, 0);
    v1.json = Some(text.to_owned());
    put(store, v1).await;
    let read = ok(store.read("Patient", "a").await, "read");
    assert_eq!(read.and_then(|v| v.json).as_deref(), Some(text));
    let vread = ok(store.vread("Patient", "a", 1).await, "vread");
    assert_eq!(vread.and_then(|v| v.json).as_deref(), Some(text));
}

/// `last_updated` comes back as the same instant, with its milliseconds, before 1970 too.
pub async fn last_updated_round_trips(store: &dyn Store) {
    let instants = [
        datetime!(2024-02-29 12:34:56.789 UTC),
        datetime!(2024-06-30 23:59:59.999 +02:00),
        datetime!(1969-12-31 23:59:59.999 UTC),
        datetime!(2024-01-01 00:00:00.001 UTC),
    ];
    for (n, instant) in instants.into_iter().enumerate() {
        let id = format!("p{n}");
        let mut v1 = version("Patient", &id, 1, 0);
        v1.last_updated = instant;
        put(store, v1).await;
        let read = ok(store.read("Patient", &id).await, "read");
        assert_eq!(read.map(|v| v.last_updated), Some(instant), "{instant}");
    }
}

/// `Patient/x` and `Observation/x` are different resources with their own versions.
pub async fn same_id_in_different_types_is_independent(store: &dyn Store) {
    put(store, version("Patient", "x", 1, 0)).await;
    put(store, version("Observation", "x", 1, 0)).await;
    let patient = version("Patient", "x", 2, 10);
    put(store, patient.clone()).await;
    let gone = deletion("Observation", "x", 2, 20);
    put(store, gone.clone()).await;
    assert_eq!(ok(store.read("Patient", "x").await, "read"), Some(patient));
    assert_eq!(ok(store.read("Observation", "x").await, "read"), Some(gone));
    let patients = ok(store.history(&super::history_query(Some("Patient"), Some("x"), 10)).await, "history");
    assert_eq!(patients.total, 2);
    assert!(patients.versions.iter().all(|v| v.resource_type == "Patient"));
}

/// Index entries are kept per version, in order, duplicates included.
pub async fn index_entries_are_stored(store: &dyn Store) {
    let one = vec![IndexEntry {
        param: "active".into(),
        value: IndexValue::Token { system: None, code: Some("true".into()), text: None },
    }];
    let writes = [
        Write { version: version("Patient", "a", 1, 0), index: sample_index() },
        Write { version: version("Patient", "a", 2, 10), index: one.clone() },
        Write { version: deletion("Patient", "a", 3, 20), index: Vec::new() },
    ];
    for w in writes {
        ok(store.transact(vec![w]).await, "transact");
    }
    assert_eq!(ok(store.index("Patient", "a", 1).await, "index"), Some(sample_index()));
    assert_eq!(ok(store.index("Patient", "a", 2).await, "index"), Some(one));
    assert_eq!(ok(store.index("Patient", "a", 3).await, "index"), Some(Vec::new()));
    assert_eq!(ok(store.index("Patient", "a", 4).await, "index"), None);
    assert_eq!(ok(store.index("Observation", "a", 1).await, "index"), None);
}

/// Eight writers race for the same next version: one wins, seven get a conflict, never an
/// error of another kind; the stored version is the winner's.
pub async fn concurrent_writers_of_one_version_one_wins(store: &dyn Store) {
    for (id, next) in [("a", 1), ("b", 2)] {
        if next == 2 {
            put(store, version("Patient", id, 1, 0)).await;
        }
        let attempt = |writer: u32| {
            let mut v = version("Patient", id, next, 10);
            v.json = Some(format!(r#"{{"resourceType":"Patient","id":"{id}","writer":{writer}}}"#));
            async move { (v.json.clone(), store.transact(vec![write(v)]).await) }
        };
        let results = tokio::join!(
            attempt(0),
            attempt(1),
            attempt(2),
            attempt(3),
            attempt(4),
            attempt(5),
            attempt(6),
            attempt(7)
        );
        let results = [results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7];
        let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).map(|(json, _)| json.clone()).collect();
        assert_eq!(winners.len(), 1, "exactly one writer of {id} version {next} wins: {results:?}");
        for (_, result) in results.into_iter().filter(|(_, r)| r.is_err()) {
            assert_conflict(result, "Patient", id, next - 1, next);
        }
        let current = ok(store.read("Patient", id).await, "read");
        assert_eq!(current.as_ref().map(|v| v.version), Some(next));
        assert_eq!(current.and_then(|v| v.json), winners.into_iter().next().flatten());
        let kind = if next == 1 { WriteKind::Create } else { WriteKind::Update };
        let history = ok(store.history(&super::history_query(Some("Patient"), Some(id), 10)).await, "history");
        assert_eq!(history.total, next, "no loser left a version behind");
        assert_eq!(history.versions.first().map(|v| v.kind), Some(kind));
    }
}
