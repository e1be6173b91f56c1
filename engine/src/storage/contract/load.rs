//! Contract cases for [`Store::load`] (an initial load's batch): its resources readable,
//! searchable, indexed and in history exactly as [`Store::transact`] would leave them, and a
//! batch naming a resource that exists or existed refused whole.

use serde_json::{Value, json};

use super::search::ids;
use super::{assert_conflict, at, deletion, ok, put, version};
use crate::definitions::Definitions;
use crate::resource::set_meta;
use crate::search::index::extract;
use crate::storage::{ResourceVersion, Store, StoreError, Write, WriteKind};

/// Version 1 of `resource` at [`at`]`(ms)`, indexed as the engine indexes every write.
fn create(resource: Value, ms: i64) -> Write {
    written(resource, 1, WriteKind::Create, ms)
}

/// Version `version` of `resource` (a `kind` write) at [`at`]`(ms)`, indexed.
fn written(mut resource: Value, version: u64, kind: WriteKind, ms: i64) -> Write {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default().to_owned();
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    if let Some(map) = resource.as_object_mut() {
        set_meta(map, version, at(ms));
    }
    let index = extract(Definitions::r4(), &resource);
    let json = Some(resource.to_string());
    Write { version: ResourceVersion { resource_type, id, version, last_updated: at(ms), kind, json }, index }
}

fn patient(id: &str, family: &str) -> Value {
    json!({ "resourceType": "Patient", "id": id, "name": [{ "family": family }], "gender": "female" })
}

fn observation(id: &str, subject: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] },
        "subject": { "reference": format!("Patient/{subject}") },
        "effectiveDateTime": "2024-02-03",
        "valueQuantity": { "value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min" },
        "component": [{ "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
                        "valueQuantity": { "value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } }]
    })
}

/// 120 patients and an observation of each, loaded in as few loads as the store takes (Cosmos
/// DB: 49 writes each).
async fn load_patients(store: &dyn Store) -> Vec<Write> {
    let mut writes: Vec<Write> =
        (0..120).map(|n| create(patient(&format!("p{n}"), &format!("Family{}", n % 3)), n)).collect();
    writes.extend((0..120).map(|n| create(observation(&format!("o{n}"), &format!("p{n}"), f64::from(n)), 200)));
    for chunk in writes.chunks(store.capabilities().max_batch_writes.unwrap_or(usize::MAX)) {
        ok(store.load(chunk).await, "load");
    }
    writes
}

/// What a search of every kind of index row finds of [`load_patients`] (`changed`: after
/// `p0` became `Family1`, `p1` was deleted and `o7` became `o7`'s twin at 2024-03-04).
async fn assert_searches(store: &dyn Store, changed: bool) {
    // Changed, Family1 gained p0 and lost p1.
    assert_eq!(ids(store, "Patient", "family=family1&gender=female").await.len(), 40);
    assert_eq!(ids(store, "Patient", "family=family0").await.len(), if changed { 39 } else { 40 });
    assert_eq!(
        ids(store, "Observation", "subject=Patient/p7&date=2024-02-03&code=http://loinc.org|8867-4").await,
        if changed { Vec::<String>::new() } else { vec!["o7".to_owned()] }
    );
    assert_eq!(ids(store, "Observation", "value-quantity=gt118&value-quantity=lt119.5").await, ["o119"]);
    assert_eq!(
        ids(store, "Observation", "component-code-value-quantity=http://loinc.org|8480-6$120").await.len(),
        if changed { 119 } else { 120 }
    );
}

pub async fn load_writes_resources_as_transact_would(store: &dyn Store) {
    let writes = load_patients(store).await;
    for w in [&writes[0], &writes[119], &writes[239]] {
        let v = &w.version;
        assert_eq!(ok(store.read(&v.resource_type, &v.id).await, "read").as_ref(), Some(v), "read of {}", v.id);
        assert_eq!(ok(store.vread(&v.resource_type, &v.id, 1).await, "vread").as_ref(), Some(v));
        assert_eq!(ok(store.index(&v.resource_type, &v.id, 1).await, "index"), Some(w.index.clone()));
    }
    // Every kind of index row: string, token, reference, date, quantity, composite.
    assert_searches(store, false).await;
    let history = ok(store.history(&super::history_query(None, None, 300)).await, "history");
    assert_eq!(history.total, 240);
    assert_eq!(history.versions.last().map(|v| v.id.as_str()), Some("p0"), "in load order, newest first");
    // The loaded resources take versions on like any other.
    put(store, version("Patient", "p0", 2, 500)).await;
    assert_eq!(ok(store.read("Patient", "p0").await, "read").map(|v| v.version), Some(2));
}

pub async fn load_of_a_resource_that_exists_stores_nothing(store: &dyn Store) {
    put(store, version("Patient", "there", 1, 0)).await;
    put(store, version("Patient", "gone", 1, 0)).await;
    put(store, deletion("Patient", "gone", 2, 10)).await;
    for taken in ["there", "gone"] {
        let writes =
            vec![create(patient("new1", "A"), 20), create(patient(taken, "B"), 20), create(patient("new2", "C"), 20)];
        let result = store.load(&writes).await;
        assert!(
            matches!(result, Err(StoreError::VersionConflict { ref id, .. }) if id == taken),
            "{taken}: {result:?}"
        );
        assert_eq!(ok(store.read("Patient", "new1").await, "read"), None, "nothing of the batch is stored");
        assert_eq!(ids(store, "Patient", "family=a").await, Vec::<String>::new());
    }
    // A resource twice in one load: the second is a conflict too.
    let twice = vec![create(patient("twice", "A"), 30), create(patient("twice", "B"), 30)];
    assert!(matches!(store.load(&twice).await, Err(StoreError::VersionConflict { .. })));
    assert_eq!(ok(store.read("Patient", "twice").await, "read"), None);
    // And the batch goes in once nothing clashes.
    ok(store.load(&[create(patient("new1", "A"), 40)]).await, "load");
    assert_conflict(store.load(&[create(patient("new1", "A"), 50)]).await, "Patient", "new1", 0, 1);
}

/// An initial load between [`Store::load_begins`] and [`Store::load_ends`] (when a store may
/// have set its search indexes aside): every search, update and deletion is answered right
/// meanwhile and after; a second begin on a store that holds resources changes nothing.
pub async fn a_load_answers_right_before_and_after_it_ends(store: &dyn Store) {
    ok(store.load_begins().await, "load begins");
    load_patients(store).await;
    assert_searches(store, false).await;
    let mut o7 = observation("o7", "p7", 7.0);
    o7["effectiveDateTime"] = json!("2024-03-04");
    o7["component"] = json!([]);
    for resource in [patient("p0", "Family1"), o7] {
        let update = written(resource, 2, WriteKind::Update, 300);
        ok(store.transact(vec![update]).await, "update during the load");
    }
    put(store, deletion("Patient", "p1", 2, 310)).await;
    assert_searches(store, true).await;
    let mut pieces = 0;
    while ok(store.load_ends().await, "load ends") {
        pieces += 1;
        assert!(pieces < 100, "load_ends keeps answering that pieces remain");
    }
    assert_searches(store, true).await;
    assert_eq!(ids(store, "Observation", "date=2024-03-04").await, ["o7"]);
    ok(store.load_begins().await, "a load into a store that holds resources");
    ok(store.load(&[create(patient("late", "Late"), 400)]).await, "load");
    assert!(!ok(store.load_ends().await, "load ends"), "nothing set aside in a store that held resources");
    assert_eq!(ids(store, "Patient", "family=late").await, ["late"]);
}
