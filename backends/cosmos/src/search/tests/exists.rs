//! The `EXISTS` form (`store.cosmos.search_queries = "exists"`): each clause value a sub-query
//! on the document's own index entries, bound in the search's one query, pinned as SQL text and
//! parameters for every clause kind; and the emulator's refusal of that form (the day it runs
//! it, `the_emulator_refuses_the_exists_form` fails: then run the contract suite in this form).

use fhirgate_engine::search::query::Compartment;
use fhirgate_engine::storage::contract::query::parsed;
use fhirgate_engine::storage::contract::version;
use fhirgate_engine::storage::{IndexEntry, IndexValue, Store, Write};
use serde_json::{Value, json};

use super::super::Translator;
use super::super::form::{SearchQueries, probe_text};
use super::{Statement, store};
use crate::{CosmosSettings, CosmosStore, Layout, read};

/// The filter of a search in the `EXISTS` form; it runs no sub-query.
async fn translate(resource_type: Option<&str>, params: &[(&str, &str)]) -> Statement {
    let store = store().await;
    let query = parsed(resource_type, params);
    let mut t = Translator::new(&store, &query);
    t.form = SearchQueries::Exists;
    let filter = match t.filter(&query).await {
        Ok(filter) => filter,
        Err(e) => panic!("{params:?} does not translate: {e}"),
    };
    assert!(t.ran.is_empty(), "{params:?}: no sub-query runs, got {:?}", t.ran);
    Statement::of(filter, &t.params.values)
}

/// The filter on `c` of the searched types (bound first) and `clauses`.
fn filter(clauses: &str) -> String {
    format!("c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p1, c.t) AND {clauses}")
}

/// `EXISTS` of an entry of the parameter bound as `param`, of `kinds`, meeting `condition`.
fn entry(param: &str, kinds: &str, condition: &str) -> String {
    format!("EXISTS(SELECT VALUE x FROM x IN c.x WHERE x.p = {param} AND x.k IN ({kinds}) AND {condition})")
}

/// (type, parameter, value, entry kinds, condition on the entry, the values it binds)
type Case = (&'static str, &'static str, &'static str, &'static str, &'static str, Vec<Value>);

#[tokio::test]
async fn each_parameter_type_is_one_exists_on_its_entry_kinds() {
    let cases: [Case; 8] = [
        (
            "Observation",
            "code",
            "http://loinc.org|1234-5",
            "'t'",
            "x.sy = @p2 AND x.co = @p3",
            vec![json!("http://loinc.org"), json!("1234-5")],
        ),
        ("Patient", "gender", "male", "'t'", "x.co = @p2", vec![json!("male")]),
        ("Patient", "family", "chal", "'s'", "STARTSWITH(x.v, @p2)", vec![json!("chal")]),
        (
            "Observation",
            "date",
            "2020",
            "'d'",
            "(x.st >= @p2 AND x.en <= @p3)",
            vec![json!("2020-01-01T00:00:00.000Z"), json!("2020-12-31T23:59:59.999Z")],
        ),
        ("RiskAssessment", "probability", "0.5", "'n'", "(x.n >= @p2 AND x.n < @p3)", vec![json!(0.45), json!(0.55)]),
        ("Observation", "value-quantity", "5", "'q'", "(x.n >= @p2 AND x.n < @p3)", vec![json!(4.5), json!(5.5)]),
        (
            "Observation",
            "subject",
            "http://other.org/Patient/1",
            "'r'",
            "x.r = @p2",
            vec![json!("http://other.org/Patient/1")],
        ),
        ("ValueSet", "url", "http://acme.org", "'u'", "x.v = @p2", vec![json!("http://acme.org")]),
    ];
    for (resource_type, param, value, kinds, condition, bound) in cases {
        let t = translate(Some(resource_type), &[(param, value)]).await;
        let at = format!("@p{}", bound.len() + 2);
        assert_eq!(t.text, filter(&format!("({})", entry(&at, kinds, condition))), "{param}={value}");
        let mut params = vec![json!([resource_type])];
        params.extend(bound);
        params.push(json!(param));
        assert_eq!(t.params, params, "{param}={value}");
    }
}

#[tokio::test]
async fn not_is_not_exists_and_missing_asks_for_any_entry() {
    let t = translate(Some("Observation"), &[("code:not", "1234-5")]).await;
    assert_eq!(
        t,
        Statement::new(
            &filter(&format!("(NOT {})", entry("@p3", "'t'", "x.co = @p2"))),
            vec![json!(["Observation"]), json!("1234-5"), json!("code")]
        )
    );
    let t = translate(Some("Observation"), &[("code:missing", "true")]).await;
    assert_eq!(
        t,
        Statement::new(
            &filter(&format!("(NOT {})", entry("@p2", "'t', 'o', 'i'", "true"))),
            vec![json!(["Observation"]), json!("code")]
        )
    );
    let t = translate(Some("Observation"), &[("code:missing", "false")]).await;
    assert_eq!(t.text, filter(&format!("({})", entry("@p2", "'t', 'o', 'i'", "true"))));
}

#[tokio::test]
async fn values_are_or_and_clauses_are_and_numbered_in_order() {
    let t = translate(Some("Patient"), &[("gender", "male,female"), ("family", "chal")]).await;
    assert_eq!(
        t,
        Statement::new(
            &filter(&format!(
                "({} OR {}) AND ({})",
                entry("@p3", "'t'", "x.co = @p2"),
                entry("@p5", "'t'", "x.co = @p4"),
                entry("@p7", "'s'", "STARTSWITH(x.v, @p6)")
            )),
            vec![
                json!(["Patient"]),
                json!("male"),
                json!("gender"),
                json!("female"),
                json!("gender"),
                json!("chal"),
                json!("family")
            ]
        )
    );
}

#[tokio::test]
async fn a_compartment_is_its_owner_or_an_exists_on_its_references() {
    let store = store().await;
    let mut query = parsed(Some("Observation"), &[("code", "1234-5")]);
    query.compartment = Some(Compartment {
        resource_type: "Patient".into(),
        id: "p1".into(),
        params: vec![("Observation".into(), vec!["subject".into(), "performer".into()])],
    });
    let mut t = Translator::new(&store, &query);
    t.form = SearchQueries::Exists;
    let filter = match t.filter(&query).await {
        Ok(filter) => filter,
        Err(e) => panic!("the compartment does not translate: {e}"),
    };
    assert!(t.ran.is_empty(), "{:?}", t.ran);
    assert_eq!(
        Statement::of(filter, &t.params.values),
        Statement::new(
            &format!(
                "c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p1, c.t) AND ((c.t = @p2 AND c.rid = @p3) OR \
                 EXISTS(SELECT VALUE x FROM x IN c.x WHERE x.k = 'r' AND x.rt = @p4 AND x.ri = @p5 AND \
                 ((c.t = @p6 AND ARRAY_CONTAINS(@p7, x.p))))) AND ({})",
                entry("@p9", "'t'", "x.co = @p8")
            ),
            vec![
                json!(["Observation"]),
                json!("Patient"),
                json!("p1"),
                json!("Patient"),
                json!("p1"),
                json!("Observation"),
                json!(["subject", "performer"]),
                json!("1234-5"),
                json!("code")
            ]
        )
    );
}

#[tokio::test]
async fn a_chain_stays_key_set() {
    let store = store().await;
    let query = parsed(Some("Observation"), &[("subject:Patient.family", "chal")]);
    let mut t = Translator::new(&store, &query);
    t.form = SearchQueries::Exists;
    let filter = match t.filter(&query).await {
        Ok(filter) => filter,
        Err(e) => panic!("the chain does not translate: {e}"),
    };
    // The patients named so are found by a query of their own (whose clause is an `EXISTS`
    // there), and the observation's reference is tested against their keys.
    assert_eq!(t.ran.len(), 2, "{:?}", t.ran);
    assert!(t.ran[0].0.contains(&entry("@p2", "'s'", "STARTSWITH(x.v, @p1)")), "{:?}", t.ran[0]);
    assert!(filter.contains("ARRAY_CONTAINS(@p2, c.key)"), "{filter}");
}

/// `SearchQueries::parse` takes the two names the configuration documents, and only those.
#[test]
fn the_setting_names_its_two_forms() {
    assert_eq!(SearchQueries::parse("key-set").ok(), Some(SearchQueries::KeySet));
    assert_eq!(SearchQueries::parse("exists").ok(), Some(SearchQueries::Exists));
    assert_eq!(SearchQueries::default(), SearchQueries::KeySet);
    for other in ["", "EXISTS", "keyset", "one-query"] {
        assert!(SearchQueries::parse(other).is_err(), "{other}");
    }
}

/// A store asked for the `EXISTS` form on the emulator does not start, and says why and what
/// to use instead; the statement a search of that form sends is refused by the emulator in
/// both layouts. The day either passes, run the contract suite with the form.
#[tokio::test]
async fn the_emulator_refuses_the_exists_form() {
    for layout in [Layout::Single, Layout::Partitioned] {
        let mut settings = match CosmosSettings::emulator() {
            Ok(settings) => settings,
            Err(e) => panic!("emulator settings: {e}"),
        };
        settings.layout = layout;
        settings.search_queries = SearchQueries::Exists;
        match CosmosStore::connect(&settings).await {
            Ok(_) => panic!(
                "{layout:?}: the emulator now runs EXISTS sub-queries: run the contract suite with \
                 `search_queries = exists` and make it a tested form"
            ),
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains("store.cosmos.search_queries") && message.contains("key-set"), "{message}");
            }
        }
        // What a search of the form sends, on a store holding a male patient.
        settings.search_queries = SearchQueries::KeySet;
        let store = match CosmosStore::connect(&settings).await {
            Ok(store) => store,
            Err(e) => panic!("connect: {e}"),
        };
        let male = IndexValue::Token { system: None, code: Some("male".into()), text: None };
        let write = Write {
            version: version("Patient", "p1", 1, 0),
            index: vec![IndexEntry { param: "gender".into(), value: male }],
        };
        if let Err(e) = store.transact(vec![write]).await {
            panic!("write: {e}");
        }
        // The start-up probe, run here as the store would on another endpoint.
        match read::query::<Value>(&store, "probe", azure_data_cosmos::Query::from(probe_text(&store))).await {
            Ok(rows) => panic!("{layout:?}: the emulator ran the probe ({rows:?}): make the EXISTS form a tested one"),
            Err(e) => assert!(e.to_string().contains("subqueries"), "{layout:?}: {e}"),
        }
        let query = parsed(Some("Patient"), &[("gender", "male")]);
        let mut t = Translator::new(&store, &query);
        t.form = SearchQueries::Exists;
        let filter = match t.filter(&query).await {
            Ok(filter) => filter,
            Err(e) => panic!("translate: {e}"),
        };
        let sent = match t.params.query(format!("SELECT c.t, c.rid, c.v FROM c WHERE {filter}")) {
            Ok(query) => query,
            Err(e) => panic!("bind: {e}"),
        };
        match read::query::<Value>(&store, "search", sent).await {
            Ok(rows) => panic!("{layout:?}: the emulator ran the EXISTS form ({rows:?}): make it a tested form"),
            Err(e) => assert!(e.to_string().contains("subqueries"), "{layout:?}: {e}"),
        }
    }
}
