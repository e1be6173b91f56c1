//! Contract cases for history: instance, type and system level, `_since`, `_at`, paging and
//! snapshots. Every case starts from [`seed`].

use super::{at, deletion, history_query, ok, put, version};
use crate::storage::{HistoryPage, HistoryQuery, ResourceVersion, Store};

/// Writes seven versions of three resources, one at a time, 10 ms apart:
///
/// | ms | write |
/// |----|-------|
/// | 0  | Patient/a 1 |
/// | 10 | Patient/b 1 |
/// | 20 | Observation/o 1 |
/// | 30 | Patient/a 2 |
/// | 40 | Patient/b 2 (deletion) |
/// | 50 | Observation/o 2 |
/// | 60 | Patient/a 3 |
///
/// Returns them in write order.
pub async fn seed(store: &dyn Store) -> Vec<ResourceVersion> {
    let versions = vec![
        version("Patient", "a", 1, 0),
        version("Patient", "b", 1, 10),
        version("Observation", "o", 1, 20),
        version("Patient", "a", 2, 30),
        deletion("Patient", "b", 2, 40),
        version("Observation", "o", 2, 50),
        version("Patient", "a", 3, 60),
    ];
    for v in &versions {
        put(store, v.clone()).await;
    }
    versions
}

/// `Type/id/version` of each version of a page, for readable comparisons.
pub fn keys(page: &HistoryPage) -> Vec<String> {
    page.versions.iter().map(|v| format!("{}/{}/{}", v.resource_type, v.id, v.version)).collect()
}

async fn history(store: &dyn Store, query: &HistoryQuery) -> HistoryPage {
    ok(store.history(query).await, "history")
}

/// Instance history lists every version of one resource, newest first, exactly as written.
pub async fn instance_history_newest_first(store: &dyn Store) {
    let written = seed(store).await;
    let page = history(store, &history_query(Some("Patient"), Some("a"), 100)).await;
    let expected: Vec<_> =
        written.iter().rev().filter(|v| v.resource_type == "Patient" && v.id == "a").cloned().collect();
    assert_eq!(page.versions, expected);
    assert_eq!(page.total, 3);

    let deleted = history(store, &history_query(Some("Patient"), Some("b"), 100)).await;
    assert_eq!(keys(&deleted), ["Patient/b/2", "Patient/b/1"]);
    assert!(deleted.versions.first().is_some_and(ResourceVersion::is_deleted));

    let unknown = history(store, &history_query(Some("Patient"), Some("zz"), 100)).await;
    assert_eq!((unknown.total, unknown.versions.len()), (0, 0));
}

/// Type history covers every resource of one type, deletions included.
pub async fn type_history_covers_one_type(store: &dyn Store) {
    seed(store).await;
    let patients = history(store, &history_query(Some("Patient"), None, 100)).await;
    assert_eq!(keys(&patients), ["Patient/a/3", "Patient/b/2", "Patient/a/2", "Patient/b/1", "Patient/a/1"]);
    assert_eq!(patients.total, 5);
    let observations = history(store, &history_query(Some("Observation"), None, 100)).await;
    assert_eq!(keys(&observations), ["Observation/o/2", "Observation/o/1"]);
    assert_eq!(observations.total, 2);
    let none = history(store, &history_query(Some("Encounter"), None, 100)).await;
    assert_eq!((none.total, none.versions.len()), (0, 0));
}

/// System history covers every version of every type, newest first.
pub async fn system_history_covers_all_types(store: &dyn Store) {
    let written = seed(store).await;
    let page = history(store, &history_query(None, None, 100)).await;
    assert_eq!(page.versions, written.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(page.total, 7);
}

/// `_since` keeps versions with `last_updated >= since` (inclusive).
pub async fn history_since(store: &dyn Store) {
    seed(store).await;
    let since = |ms: i64, resource_type: Option<&str>| HistoryQuery {
        since: Some(at(ms)),
        ..history_query(resource_type, None, 100)
    };
    let page = history(store, &since(30, None)).await;
    assert_eq!(keys(&page), ["Patient/a/3", "Observation/o/2", "Patient/b/2", "Patient/a/2"]);
    assert_eq!(page.total, 4);
    assert_eq!(history(store, &since(31, None)).await.total, 3);
    let patients = history(store, &since(30, Some("Patient"))).await;
    assert_eq!(keys(&patients), ["Patient/a/3", "Patient/b/2", "Patient/a/2"]);
    assert_eq!(history(store, &since(61, None)).await.total, 0);
}

/// `_at` gives, per resource, the version current at that instant; deleted resources are absent.
pub async fn history_at(store: &dyn Store) {
    seed(store).await;
    let at_ms = |ms: i64, resource_type: Option<&str>, id: Option<&str>| HistoryQuery {
        at: Some(at(ms)),
        ..history_query(resource_type, id, 100)
    };
    let page = history(store, &at_ms(35, None, None)).await;
    assert_eq!(keys(&page), ["Patient/a/2", "Observation/o/1", "Patient/b/1"]);
    assert_eq!(page.total, 3);
    // A version is current from its own instant on: at exactly 30 ms Patient/a is at version 2.
    assert_eq!(keys(&history(store, &at_ms(30, None, None)).await), ["Patient/a/2", "Observation/o/1", "Patient/b/1"]);
    // Patient/b was deleted at 40 ms: from then on it is not part of the state.
    assert_eq!(keys(&history(store, &at_ms(45, None, None)).await), ["Patient/a/2", "Observation/o/1"]);
    assert_eq!(keys(&history(store, &at_ms(60, None, None)).await), ["Patient/a/3", "Observation/o/2"]);
    assert_eq!(history(store, &at_ms(-1, None, None)).await.total, 0);
    assert_eq!(keys(&history(store, &at_ms(45, Some("Patient"), None)).await), ["Patient/a/2"]);
    assert_eq!(keys(&history(store, &at_ms(15, Some("Patient"), Some("b"))).await), ["Patient/b/1"]);
    assert_eq!(history(store, &at_ms(45, Some("Patient"), Some("b"))).await.total, 0);
    // With `_since` too: the versions current at 35 ms that were written at 15 ms or later.
    let both = HistoryQuery { since: Some(at(15)), ..at_ms(35, None, None) };
    assert_eq!(keys(&history(store, &both).await), ["Patient/a/2", "Observation/o/1"]);
}

/// `offset` and `count` page through the matches; `total` counts them all.
pub async fn history_paging(store: &dyn Store) {
    seed(store).await;
    let page = |offset: u64, count: u32| HistoryQuery { offset, ..history_query(None, None, count) };
    let first = history(store, &page(0, 3)).await;
    assert_eq!(keys(&first), ["Patient/a/3", "Observation/o/2", "Patient/b/2"]);
    let second = history(store, &page(3, 3)).await;
    assert_eq!(keys(&second), ["Patient/a/2", "Observation/o/1", "Patient/b/1"]);
    let third = history(store, &page(6, 3)).await;
    assert_eq!(keys(&third), ["Patient/a/1"]);
    for p in [&first, &second, &third] {
        assert_eq!(p.total, 7);
    }
    for (offset, count) in [(7, 3), (100, 3), (0, 0)] {
        let empty = history(store, &page(offset, count)).await;
        assert_eq!((empty.total, empty.versions.len()), (7, 0), "offset {offset} count {count}");
    }
    let instance = history(store, &HistoryQuery { offset: 1, ..history_query(Some("Patient"), Some("a"), 1) }).await;
    assert_eq!((keys(&instance), instance.total), (vec!["Patient/a/2".to_owned()], 3));
}

/// A page read with an earlier page's snapshot sees neither the versions written since nor
/// their effect on `total` or `_at`; a query without a snapshot sees everything.
pub async fn history_snapshot_hides_later_writes(store: &dyn Store) {
    let empty = history(store, &history_query(None, None, 10)).await;
    assert_eq!(empty.total, 0);
    seed(store).await;
    let still_empty =
        history(store, &HistoryQuery { snapshot: Some(empty.snapshot.clone()), ..history_query(None, None, 10) }).await;
    assert_eq!(still_empty.total, 0, "the snapshot of an empty store hides everything");

    let first = history(store, &history_query(None, None, 3)).await;
    put(store, version("Patient", "c", 1, 70)).await;
    put(store, version("Patient", "a", 4, 80)).await;

    let pinned = |query: HistoryQuery| HistoryQuery { snapshot: Some(first.snapshot.clone()), ..query };
    let second = history(store, &pinned(HistoryQuery { offset: 3, ..history_query(None, None, 3) })).await;
    assert_eq!(keys(&second), ["Patient/a/2", "Observation/o/1", "Patient/b/1"]);
    assert_eq!((second.total, &second.snapshot), (7, &first.snapshot));
    assert_eq!(history(store, &pinned(history_query(Some("Patient"), Some("a"), 10))).await.total, 3);
    let then = history(store, &pinned(HistoryQuery { at: Some(at(100)), ..history_query(None, None, 10) })).await;
    assert_eq!(keys(&then), ["Patient/a/3", "Observation/o/2"]);

    let now = history(store, &history_query(None, None, 3)).await;
    assert_eq!(keys(&now), ["Patient/a/4", "Patient/c/1", "Patient/a/3"]);
    assert_eq!(now.total, 9);
    assert!(now.snapshot.covers(&first.snapshot) && now.snapshot != first.snapshot, "the write positions grow");
}

/// Type and system history read page by page with the first page's snapshot, while other
/// writers create and update resources of many ids (so, on a store with position buckets, in
/// several buckets at once): every version of the snapshot is listed exactly once, `total`
/// never moves, and no page shows a version written after the snapshot was taken.
pub async fn history_pages_stable_under_concurrent_writes(store: &dyn Store) {
    const BEFORE: usize = 24;
    let ids: Vec<String> = (0..BEFORE).map(|n| format!("h{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        put(store, version("Patient", id, 1, i64::try_from(n).unwrap_or(0))).await;
    }
    let first = history(store, &history_query(None, None, 5)).await;
    let pinned = |offset: u64, resource_type: Option<&str>| HistoryQuery {
        snapshot: Some(first.snapshot.clone()),
        offset,
        ..history_query(resource_type, None, 5)
    };
    // Two writers at once: one updates the first eight resources three times, one creates 24
    // new ones; 48 versions in all, spread over many ids.
    let updates = async {
        for next in 2..=4 {
            for id in ids.iter().take(8) {
                put(store, version("Patient", id, next, 1_000 + i64::try_from(next).unwrap_or(0))).await;
            }
        }
    };
    let creates = async {
        for n in 0..BEFORE {
            put(store, version("Patient", &format!("late{n}"), 1, 2_000)).await;
        }
    };
    let writers = async {
        tokio::join!(updates, creates);
    };
    let readers = async {
        let mut seen = Vec::new();
        for resource_type in [None, Some("Patient")] {
            let mut listed = keys(&first);
            if resource_type.is_some() {
                listed.clear();
            }
            let mut offset = if resource_type.is_some() { 0 } else { 5 };
            loop {
                let page = history(store, &pinned(offset, resource_type)).await;
                assert_eq!(page.total, BEFORE as u64, "the total inside the snapshot never moves");
                assert_eq!(page.snapshot, first.snapshot);
                if page.versions.is_empty() {
                    break;
                }
                offset += page.versions.len() as u64;
                listed.extend(keys(&page));
                tokio::task::yield_now().await;
            }
            seen.push(listed);
        }
        seen
    };
    let ((), seen) = tokio::join!(writers, readers);
    let mut expected: Vec<String> = ids.iter().map(|id| format!("Patient/{id}/1")).collect();
    expected.reverse();
    for listed in seen {
        assert_eq!(listed, expected, "every version of the snapshot once, newest first, none written later");
    }
    let now = history(store, &history_query(None, None, 1)).await;
    assert_eq!(now.total, BEFORE as u64 + 48, "the writes all landed");
}
