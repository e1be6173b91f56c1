//! Contract case for [`Store::reindex`]: a current version's index replaced without a new
//! version (searches see the new entries at once), and a no-op for a version that is no longer
//! current, deleted or unknown.

use super::search::{ids, index_put};
use super::{at, ok};
use crate::storage::{IndexEntry, IndexValue, ResourceVersion, Store, Write, WriteKind};

fn family(name: &str) -> Vec<IndexEntry> {
    vec![IndexEntry {
        param: "family".into(),
        value: IndexValue::String { value: name.to_lowercase(), exact: name.into() },
    }]
}

fn patient(id: &str, family: &str) -> serde_json::Value {
    serde_json::json!({ "resourceType": "Patient", "id": id, "name": [{ "family": family }] })
}

pub async fn reindex_replaces_the_current_index(store: &dyn Store) {
    index_put(store, patient("p1", "Muller"), 1, 0).await;
    index_put(store, patient("p2", "Muller"), 1, 1).await;
    assert!(ok(store.reindex("Patient", "p1", 1, &family("Schmidt")).await, "reindex"), "v1 is current");
    assert_eq!(ids(store, "Patient", "family=schmidt").await, ["p1"]);
    assert_eq!(ids(store, "Patient", "family=muller").await, ["p2"]);
    assert_eq!(ok(store.index("Patient", "p1", 1).await, "index"), Some(family("Schmidt")));
    let found = ok(store.search(&super::search::query(Some("Patient"), "family=schmidt"), 10).await, "search");
    assert_eq!(found[0].version, 1, "no new version");

    // A version that is no longer current: nothing changes, the newer one's entries stay.
    index_put(store, patient("p1", "Muller"), 2, 10).await;
    assert!(!ok(store.reindex("Patient", "p1", 1, &family("Weber")).await, "reindex"));
    assert_eq!(ids(store, "Patient", "family=muller").await, ["p1", "p2"]);
    assert!(ids(store, "Patient", "family=weber").await.is_empty());

    // Deleted or unknown: nothing.
    let deletion = ResourceVersion {
        resource_type: "Patient".into(),
        id: "p2".into(),
        version: 2,
        last_updated: at(11),
        kind: WriteKind::Delete,
        json: None,
    };
    ok(store.transact(vec![Write { version: deletion, index: Vec::new() }]).await, "deleting p2");
    assert!(!ok(store.reindex("Patient", "p2", 2, &family("Weber")).await, "reindex"));
    assert!(!ok(store.reindex("Patient", "p2", 1, &family("Weber")).await, "reindex"));
    assert!(!ok(store.reindex("Patient", "nobody", 1, &family("Weber")).await, "reindex"));
    assert!(ids(store, "Patient", "family=weber").await.is_empty());
}
