//! What the in-process emulator's Cosmos SQL accepts, probed in both layouts (inside the store's
//! partition, and across partitions with `FeedScope::full_container`). The search translation
//! rests on these answers: `EXISTS` sub-queries would make a search one query without key lists,
//! and the emulator refuses them in every position; the day it accepts them these tests fail and
//! the opt-in `EXISTS` form (`exists.rs`) can be tested (README, "What the emulator cannot show").

use fhirgate_engine::storage::contract::version;
use fhirgate_engine::storage::{IndexEntry, IndexValue, Store, Write};
use serde_json::{Value, json};

use super::super::Params;
use crate::{CosmosSettings, CosmosStore, Layout, read};

/// A store of `layout` on a fresh emulator account, holding `Patient/p1` (male, named Peter)
/// and `Patient/p2` (female).
async fn two_patients(layout: Layout) -> CosmosStore {
    let mut settings = match CosmosSettings::emulator() {
        Ok(settings) => settings,
        Err(e) => panic!("emulator settings: {e}"),
    };
    settings.layout = layout;
    let store = match CosmosStore::connect(&settings).await {
        Ok(store) => store,
        Err(e) => panic!("connect to the emulator: {e}"),
    };
    let token = |code: &str| IndexValue::Token { system: None, code: Some(code.into()), text: None };
    let name = IndexValue::String { value: "peter".into(), exact: "Peter".into() };
    let writes = vec![
        Write {
            version: version("Patient", "p1", 1, 0),
            index: vec![
                IndexEntry { param: "gender".into(), value: token("male") },
                IndexEntry { param: "name".into(), value: name },
            ],
        },
        Write {
            version: version("Patient", "p2", 1, 0),
            index: vec![IndexEntry { param: "gender".into(), value: token("female") }],
        },
    ];
    if let Err(e) = store.transact(writes).await {
        panic!("writing the patients failed: {e:?}");
    }
    store
}

/// Runs `where_` (a condition on the current documents `c`, `@g` bound to `male`, `@n` to
/// `name`) as `select`: the rows, or the error's text.
async fn run(store: &CosmosStore, select: &str, where_: &str) -> Result<Vec<Value>, String> {
    let text = format!("{select} WHERE {}c.k = 'c' AND {where_}", store.in_store("c"));
    let mut p = Params::default();
    // `@p1`, `@p2`: the statements below name them `@g` and `@n` for readability.
    let (g, n) = (p.text("male"), p.text("name"));
    let text = text.replace("@g", &g).replace("@n", &n);
    let query = p.query(text).map_err(|e| e.to_string())?;
    read::query::<Value>(store, "probe", query).await.map_err(|e| e.to_string())
}

/// `EXISTS` on the index entries: a male patient.
const MALE: &str = "EXISTS(SELECT VALUE x FROM x IN c.x WHERE x.p = 'gender' AND x.co = @g)";
/// `EXISTS` on the index entries: a patient with a name.
const NAMED: &str = "EXISTS(SELECT VALUE x FROM x IN c.x WHERE x.p = @n)";

/// Every position a search would put `EXISTS` in, each refused by the emulator with
/// `unsupported expression: subqueries`.
async fn exists_is_refused_everywhere(layout: Layout) {
    let store = two_patients(layout).await;
    let statements = [
        ("SELECT c.rid FROM c", MALE.to_owned()),
        ("SELECT c.rid FROM c", format!("NOT {MALE}")),
        ("SELECT c.rid FROM c", format!("{MALE} AND {NAMED}")),
        ("SELECT TOP 10 c.t, c.rid, c.v FROM c", format!("{MALE} ORDER BY c.key")),
        ("SELECT VALUE 1 FROM c", MALE.to_owned()),
        // `EXISTS` with a constant inside: still a sub-query.
        ("SELECT c.rid FROM c", "EXISTS(SELECT VALUE 1 FROM x IN c.x)".to_owned()),
    ];
    for (select, where_) in statements {
        match run(&store, select, &where_).await {
            Ok(rows) => panic!(
                "the emulator ({layout:?}) now runs `{select} WHERE {where_}` ({rows:?}): searches can become \
                 one query with EXISTS"
            ),
            Err(e) => assert!(e.contains("unsupported expression: subqueries"), "{layout:?} `{where_}`: {e}"),
        }
    }
    // What the key-set translation uses instead runs: a join over the entries...
    let keys = run(&store, "SELECT VALUE c.key FROM c JOIN x IN c.x", "x.p = 'gender' AND x.co = @g").await;
    assert_eq!(keys, Ok(vec![json!("Patient/p1")]), "{layout:?}");
    // ...and `ARRAY_CONTAINS` of the keys found.
    let rows = run(&store, "SELECT VALUE c.rid FROM c", "ARRAY_CONTAINS(['Patient/p1'], c.key)").await;
    assert_eq!(rows, Ok(vec![json!("p1")]), "{layout:?}");
}

#[tokio::test]
async fn exists_is_refused_inside_the_stores_partition() {
    exists_is_refused_everywhere(Layout::Single).await;
}

#[tokio::test]
async fn exists_is_refused_across_partitions() {
    exists_is_refused_everywhere(Layout::Partitioned).await;
}

/// The third argument of `ARRAY_CONTAINS` (partial match of objects), which on the service tests
/// whether an entry has the given fields, is ignored here (whole-object equality): a translation
/// using it would answer differently on the emulator and the service, so none does.
#[tokio::test]
async fn partial_array_contains_is_whole_object_equality_here() {
    let store = two_patients(Layout::Single).await;
    let partial =
        run(&store, "SELECT VALUE c.rid FROM c", "ARRAY_CONTAINS(c.x, {'p': 'gender', 'co': @g}, true)").await;
    assert_eq!(partial, Ok(vec![]), "the emulator now matches partially: such a translation could be tested");
}

/// Aggregates: `COUNT(1)` inside one partition; across partitions the SDK refuses it before
/// sending it, so a partitioned count reads one `1` per match (`read::count`).
#[tokio::test]
async fn count_runs_inside_a_partition_only() {
    let single = two_patients(Layout::Single).await;
    assert_eq!(run(&single, "SELECT VALUE COUNT(1) FROM c", "true").await, Ok(vec![json!(2)]));
    let partitioned = two_patients(Layout::Partitioned).await;
    match run(&partitioned, "SELECT VALUE COUNT(1) FROM c", "true").await {
        Ok(rows) => panic!("the SDK now counts across partitions ({rows:?}): `read::count` can use COUNT(1)"),
        Err(e) => assert!(e.contains("aggregates in cross-partition queries"), "{e}"),
    }
}
