//! The bound on the keys one search carries (`CosmosSettings::max_search_keys`): every clause,
//! chain, `_has` and compartment finds the keys of the resources it matches first, and a search
//! whose sub-queries find more than the bound in all is refused (400, not-supported) before its
//! final query is sent, in both layouts; a search within the bound answers as before.

use fhirgate_engine::storage::contract::version;
use fhirgate_engine::storage::{IndexEntry, IndexValue, Store, StoreError, Write};

use super::parsed;
use crate::{CosmosSettings, CosmosStore, Layout};

/// A store of `layout` whose searches may carry at most `max` keys, holding three male patients
/// `m1`..`m3` (the first two named Peter) and one female `f1`, and an observation (code
/// `1234-5`) of each.
async fn store(layout: Layout, max: usize) -> CosmosStore {
    let mut settings = match CosmosSettings::emulator() {
        Ok(settings) => settings,
        Err(e) => panic!("emulator settings: {e}"),
    };
    settings.layout = layout;
    settings.max_search_keys = max;
    let store = match CosmosStore::connect(&settings).await {
        Ok(store) => store,
        Err(e) => panic!("connect to the emulator: {e}"),
    };
    let token = |code: &str| IndexValue::Token { system: None, code: Some(code.into()), text: None };
    let mut writes = Vec::new();
    for (id, gender, named) in
        [("m1", "male", true), ("m2", "male", true), ("m3", "male", false), ("f1", "female", false)]
    {
        let mut index = vec![IndexEntry { param: "gender".into(), value: token(gender) }];
        if named {
            let name = IndexValue::String { value: "peter".into(), exact: "Peter".into() };
            index.push(IndexEntry { param: "name".into(), value: name });
        }
        writes.push(Write { version: version("Patient", id, 1, 0), index });
        let subject = IndexValue::Reference {
            reference: format!("Patient/{id}"),
            resource_type: Some("Patient".into()),
            id: Some(id.into()),
        };
        writes.push(Write {
            version: version("Observation", &format!("o-{id}"), 1, 0),
            index: vec![
                IndexEntry { param: "subject".into(), value: subject },
                IndexEntry { param: "code".into(), value: token("1234-5") },
            ],
        });
    }
    if let Err(e) = store.transact(writes).await {
        panic!("writing the resources failed: {e:?}");
    }
    store
}

/// The ids `params` finds on `store` (a search of `resource_type`), or the refusal's text.
async fn ids(store: &CosmosStore, resource_type: &str, params: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let query = parsed(Some(resource_type), params);
    match store.search(&query, 100).await {
        Ok(matches) => Ok(matches.into_iter().map(|m| m.id).collect()),
        Err(StoreError::Unsupported(message)) => Err(message),
        Err(e) => panic!("{params:?}: not a refusal: {e:?}"),
    }
}

/// Asserts that `result` is the refusal of a search broader than `max` keys.
fn refused(result: Result<Vec<String>, String>, max: usize, what: &str) {
    match result {
        Ok(ids) => panic!("{what}: answered {ids:?} although it carries more than {max} keys"),
        Err(message) => {
            assert!(message.contains(&format!("more than {max} resources")), "{what}: {message}");
            assert!(message.contains("store.cosmos.max_search_keys"), "{what}: {message}");
        }
    }
}

async fn bounded(layout: Layout) {
    // Within the bound: the three males (three keys), and a count of them.
    let store = store(layout, 3).await;
    assert_eq!(ids(&store, "Patient", &[("gender", "male")]).await, Ok(vec!["m1".into(), "m2".into(), "m3".into()]));
    assert!(matches!(store.count(&parsed(Some("Patient"), &[("gender", "male")])).await, Ok(3)));
    // Just above it: two clauses of two and three keys, or a chain (three patients, then three
    // observations), or a negation (it finds the three males to leave them out).
    let store = self::store(layout, 4).await;
    refused(ids(&store, "Patient", &[("gender", "male"), ("name", "pet")]).await, 4, "two clauses");
    refused(ids(&store, "Observation", &[("subject:Patient.gender", "male")]).await, 4, "a chain");
    assert_eq!(ids(&store, "Patient", &[("gender:not", "male")]).await, Ok(vec!["f1".into()]));
    let store = self::store(layout, 2).await;
    refused(ids(&store, "Patient", &[("gender:not", "male")]).await, 2, "a negation");
    match store.count(&parsed(Some("Patient"), &[("gender", "male")])).await {
        Err(StoreError::Unsupported(message)) => assert!(message.contains("more than 2 resources"), "{message}"),
        other => panic!("a count above the bound: {other:?}"),
    }
    // `_has`: the four observations of code 1234-5, then the four patients they refer to.
    let has = [("_has:Observation:subject:code", "1234-5")];
    let store = self::store(layout, 8).await;
    assert_eq!(ids(&store, "Patient", &has).await, Ok(vec!["f1".into(), "m1".into(), "m2".into(), "m3".into()]));
    let store = self::store(layout, 7).await;
    refused(ids(&store, "Patient", &has).await, 7, "_has");
}

#[tokio::test]
async fn a_search_carries_at_most_max_search_keys_in_one_partition() {
    bounded(Layout::Single).await;
}

#[tokio::test]
async fn a_search_carries_at_most_max_search_keys_across_partitions() {
    bounded(Layout::Partitioned).await;
}
