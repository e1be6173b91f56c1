//! The inner searches of chains and `_has` (`Predicate::Chain`, `Predicate::Has`): Cosmos SQL
//! cannot join two documents, so the inner clause runs first, on the types at the other end, and
//! the keys it found become a parameter of the outer condition, at any depth.

use fhirgate_engine::storage::contract::version;
use fhirgate_engine::storage::{IndexEntry, IndexValue, Store, Write};
use serde_json::json;

use super::{Statement, entry_query, parsed, store, translate, translate_on};

/// `Patient/p1` named Peter and `Observation/o1` (code `1234-5`) about it.
fn peter_and_his_observation() -> Vec<Write> {
    let name = IndexValue::String { value: "peter".into(), exact: "Peter".into() };
    let subject = IndexValue::Reference {
        reference: "Patient/p1".into(),
        resource_type: Some("Patient".into()),
        id: Some("p1".into()),
    };
    let code = IndexValue::Token { system: None, code: Some("1234-5".into()), text: None };
    vec![
        Write {
            version: version("Patient", "p1", 1, 0),
            index: vec![IndexEntry { param: "name".into(), value: name }],
        },
        Write {
            version: version("Observation", "o1", 1, 0),
            index: vec![
                IndexEntry { param: "subject".into(), value: subject },
                IndexEntry { param: "code".into(), value: code },
            ],
        },
    ]
}

#[tokio::test]
async fn a_chain_finds_its_targets_then_the_references_to_them() {
    let store = store().await;
    if let Err(e) = store.transact(peter_and_his_observation()).await {
        panic!("writing the resources failed: {e:?}");
    }
    let t = translate_on(&store, &parsed(Some("Observation"), &[("subject:Patient.name", "pet")])).await;
    assert_eq!(
        t.filter,
        Statement::new(
            "c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p1, c.t) AND (ARRAY_CONTAINS(@p2, c.key))",
            vec![json!(["Observation"]), json!(["Observation/o1"])],
        )
    );
    assert_eq!(
        t.ran,
        vec![
            // The name on the patients...
            Statement::new(
                &entry_query("@p3", "@p2", "'s'", "STARTSWITH(x.v, @p1)"),
                vec![json!("pet"), json!("name"), json!(["Patient"])]
            ),
            // ...the patients whose name matched...
            Statement::new(
                "SELECT VALUE c.key FROM c WHERE c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p2, c.t) \
                 AND (ARRAY_CONTAINS(@p1, c.key))",
                vec![json!(["Patient/p1"]), json!(["Patient"])]
            ),
            // ...and the observations referring to them.
            Statement::new(
                &entry_query("@p3", "@p2", "'r'", "ARRAY_CONTAINS(@p1, CONCAT(x.rt, '/', x.ri))"),
                vec![json!(["Patient/p1"]), json!("subject"), json!(["Observation"])]
            ),
        ]
    );
}

#[tokio::test]
async fn has_finds_the_referring_resources_then_what_they_point_to() {
    let store = store().await;
    if let Err(e) = store.transact(peter_and_his_observation()).await {
        panic!("writing the resources failed: {e:?}");
    }
    let t = translate_on(&store, &parsed(Some("Patient"), &[("_has:Observation:subject:code", "1234-5")])).await;
    assert_eq!(t.filter.params, vec![json!(["Patient"]), json!(["Patient/p1"])]);
    assert_eq!(
        t.filter.text,
        "c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p1, c.t) AND (ARRAY_CONTAINS(@p2, c.key))"
    );
    assert_eq!(t.ran.len(), 2);
    assert_eq!(t.ran[0].params, vec![json!("1234-5"), json!("code"), json!(["Observation"])]);
    assert_eq!(
        t.ran[1],
        Statement::new(
            "SELECT VALUE CONCAT(y.rt, '/', y.ri) FROM c JOIN y IN c.x WHERE c.k = 'c' AND c.del = false \
             AND ARRAY_CONTAINS(@p3, c.t) AND y.p = @p2 AND y.k = 'r' AND IS_DEFINED(y.ri) AND (ARRAY_CONTAINS(@p1, c.key))",
            vec![json!(["Observation/o1"]), json!("subject"), json!(["Observation"])]
        )
    );
}

#[tokio::test]
async fn chains_nest_to_any_depth_innermost_first() {
    let t = translate(Some("Observation"), &[("subject:Patient.organization.name", "acme")]).await;
    let texts: Vec<&str> = t.ran.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(t.ran.len(), 5, "{texts:#?}");
    // The organizations' names, the organizations, the patients referring to them, the
    // patients, then the observations referring to those.
    assert!(texts[0].ends_with("x.k IN ('s') AND STARTSWITH(x.v, @p1)"), "{}", texts[0]);
    assert_eq!(t.ran[0].params.last(), Some(&json!(["Organization"])));
    assert!(texts[2].ends_with("x.k IN ('r') AND ARRAY_CONTAINS(@p1, CONCAT(x.rt, '/', x.ri))"), "{}", texts[2]);
    assert_eq!(t.ran[2].params.last(), Some(&json!(["Patient"])));
    assert_eq!(t.ran[4].params.last(), Some(&json!(["Observation"])));
}
