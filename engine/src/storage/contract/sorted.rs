//! Contract cases for sorted continuations ([`Store::search_keyed`] and
//! [`crate::search::query::SearchQuery::after_sort`]): a `_sort` search continued after a match's
//! key values gives exactly the matches that follow it, in every key type and direction, and
//! keeps doing so when resources are written between the pages (nothing that matched all along
//! and kept its values is repeated or skipped).

use serde_json::json;

use super::ok;
use super::search::{index_put, patient, patients, query};
use crate::storage::{Keyed, Store};

/// The ids of `found`.
fn ids(found: &[Keyed]) -> Vec<String> {
    found.iter().map(|k| k.matched.id.clone()).collect()
}

/// Every match of `params` on `resource_type`, with its key values.
async fn all(store: &dyn Store, resource_type: &str, params: &str) -> Vec<Keyed> {
    ok(store.search_keyed(&query(Some(resource_type), params), 1000).await, &format!("`{resource_type}?{params}`"))
}

/// The matches of `params` after `key`, at most `limit`.
async fn after(store: &dyn Store, resource_type: &str, params: &str, key: &Keyed, limit: u32) -> Vec<Keyed> {
    let mut q = query(Some(resource_type), params);
    q.after = Some((key.matched.resource_type.clone(), key.matched.id.clone()));
    q.after_sort = key.sort.clone();
    let what = format!("`{resource_type}?{params}` after {}", key.matched.id);
    ok(store.search_keyed(&q, limit).await, &what)
}

/// Continuing after each match of a sorted search gives the rest of it, for text, date,
/// instant, id and number keys, both directions, missing values and ties.
pub async fn sorted_search_continues_after_key_values(store: &dyn Store) {
    patients(store).await; // p1 Müller 1974 female, p2 Miller 1980 male, p3 Chalmers 2001 male
    index_put(store, json!({ "resourceType": "Patient", "id": "p0" }), 1, 3).await;
    index_put(store, patient("p4", "Miller", "Eve", "1980-02", "female"), 1, 4).await;
    for (id, value) in [("o1", Some(5.5)), ("o2", Some(10.0)), ("o3", None), ("o4", Some(-2.25))] {
        let mut o = json!({ "resourceType": "Observation", "id": id, "status": "final", "code": { "text": "x" } });
        if let Some(value) = value {
            o["valueQuantity"] = json!({ "value": value, "unit": "kg" });
        }
        index_put(store, o, 1, 5).await;
    }
    let cases: &[(&str, &str, &[&str])] = &[
        ("Patient", "_sort=family", &["p3", "p2", "p4", "p1", "p0"]),
        ("Patient", "_sort=-family", &["p1", "p2", "p4", "p3", "p0"]),
        ("Patient", "_sort=-birthdate", &["p3", "p2", "p4", "p1", "p0"]),
        ("Patient", "_sort=gender,-birthdate", &["p4", "p1", "p3", "p2", "p0"]),
        ("Patient", "_sort=-_lastUpdated", &["p4", "p0", "p3", "p2", "p1"]),
        ("Patient", "_sort=-_id", &["p4", "p3", "p2", "p1", "p0"]),
        ("Patient", "gender=male&_sort=birthdate", &["p2", "p3"]),
        ("Observation", "_sort=value-quantity", &["o4", "o1", "o2", "o3"]),
        ("Observation", "_sort=-value-quantity", &["o2", "o1", "o4", "o3"]),
    ];
    for (resource_type, params, expected) in cases {
        let found = all(store, resource_type, params).await;
        assert_eq!(ids(&found), *expected, "{resource_type}?{params}");
        let keys = query(Some(resource_type), params).result.sort.len();
        assert!(found.iter().all(|k| k.sort.len() == keys), "a value (or none) per key: {found:?}");
        for (n, key) in found.iter().enumerate() {
            let rest = after(store, resource_type, params, key, 1000).await;
            assert_eq!(ids(&rest), expected[n + 1..], "{resource_type}?{params} after {}", key.matched.id);
            let next = after(store, resource_type, params, key, 1).await;
            assert_eq!(ids(&next), expected[n + 1..].iter().take(1).copied().collect::<Vec<_>>());
        }
    }
}

/// A sorted page continued after writes that move, add and remove matches: what matched all
/// along and kept its values comes once, in order, after the page; what moved ahead of the
/// page is not shown again.
pub async fn sorted_continuation_is_stable_under_writes(store: &dyn Store) {
    patients(store).await;
    index_put(store, json!({ "resourceType": "Patient", "id": "p0" }), 1, 3).await;
    index_put(store, patient("p7", "Miller", "Eve", "1990", "female"), 1, 4).await;
    let params = "_sort=family";
    let page = ok(store.search_keyed(&query(Some("Patient"), params), 2).await, "the first page");
    assert_eq!(ids(&page), ["p3", "p2"]);
    let Some(last) = page.last() else { return };
    // Between the pages: the page's last match moves ahead, a new one sorts ahead of the page,
    // another lands after it, one that followed the page is deleted.
    index_put(store, patient("p2", "Aaron", "Adam", "1980-02", "male"), 2, 10).await;
    index_put(store, patient("p5", "Adams", "Ann", "1970", "female"), 1, 11).await;
    index_put(store, patient("p6", "Nakamura", "Ken", "1960", "male"), 1, 12).await;
    let gone = crate::storage::ResourceVersion {
        resource_type: "Patient".into(),
        id: "p1".into(),
        version: 2,
        last_updated: super::at(13),
        kind: crate::storage::WriteKind::Delete,
        json: None,
    };
    ok(store.transact(vec![crate::storage::Write { version: gone, index: Vec::new() }]).await, "deleting p1");
    let rest = after(store, "Patient", params, last, 1000).await;
    assert_eq!(ids(&rest), ["p7", "p6", "p0"], "after Miller/p2 as it was: the tie, the new one, no family last");
}
