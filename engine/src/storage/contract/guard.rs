//! Contract cases for [`Store::transact_guarded`]: a guarded batch is refused when its guard
//! matches, and of concurrent batches guarded by the same criteria, exactly one writes.

use serde_json::json;

use super::search::{index_put, query};
use super::{at, ok};
use crate::definitions::Definitions;
use crate::resource::set_meta;
use crate::search::index::extract;
use crate::storage::{Guard, ResourceVersion, Store, StoreError, Write, WriteKind};

fn guard(params: &str) -> Guard {
    Guard { key: format!("Patient?{params}"), query: query(Some("Patient"), params) }
}

fn create(id: &str, mrn: &str) -> Write {
    let mut resource =
        json!({ "resourceType": "Patient", "id": id, "identifier": [{ "system": "urn:mrn", "value": mrn }] });
    if let Some(map) = resource.as_object_mut() {
        set_meta(map, 1, at(0));
    }
    let index = extract(Definitions::r4(), &resource);
    let version = ResourceVersion {
        resource_type: "Patient".into(),
        id: id.into(),
        version: 1,
        last_updated: at(0),
        kind: WriteKind::Create,
        json: Some(resource.to_string()),
    };
    Write { version, index }
}

/// A batch whose guard matches stores nothing and names the guard.
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub async fn guarded_batch_is_refused_when_the_guard_matches(store: &dyn Store) {
    index_put(
        store,
        json!({ "resourceType": "Patient", "id": "old", "identifier": [{ "system": "urn:mrn", "value": "1" }] }),
        1,
        0,
    )
    .await;
    let guards = [guard("identifier=urn:mrn|2"), guard("identifier=urn:mrn|1")];
    match store.transact_guarded(vec![create("new", "1")], &guards).await {
        Err(StoreError::GuardMatched(1)) => {}
        other => panic!("expected guard 1 to match, got {other:?}"),
    }
    assert_eq!(ok(store.read("Patient", "new").await, "read"), None, "nothing was stored");
    ok(store.transact_guarded(vec![create("new", "2")], &[guard("identifier=urn:mrn|2")]).await, "unmatched guard");
    assert!(ok(store.read("Patient", "new").await, "read").is_some());
}

/// Concurrent batches creating different resources under the same guard: exactly one writes.
pub async fn concurrent_guarded_creates_one_wins(store: &dyn Store) {
    for round in 0..10 {
        let mrn = format!("race-{round}");
        let params = format!("identifier=urn:mrn|{mrn}");
        let g = [guard(&params)];
        let (a, b, c) = tokio::join!(
            store.transact_guarded(vec![create(&format!("a{round}"), &mrn)], &g),
            store.transact_guarded(vec![create(&format!("b{round}"), &mrn)], &g),
            store.transact_guarded(vec![create(&format!("c{round}"), &mrn)], &g),
        );
        let results = [a, b, c];
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::GuardMatched(0)))), "{results:?}");
        let found = ok(store.count(&query(Some("Patient"), &params)).await, "count");
        assert_eq!(found, 1, "round {round}");
    }
}
