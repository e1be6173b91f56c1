//! The filter pass (`Translator::filter`): the current documents of the searched types, each
//! clause as `ARRAY_CONTAINS` of the keys its sub-query found (negated for `:not` and
//! `:missing=true`), alternatives joined by `OR`, clauses by `AND`; compartments and
//! continuations.

use fhirgate_engine::search::query::Compartment;
use serde_json::json;

use super::{Statement, entry_query, parsed, store, translate, translate_on};

/// The filter on `c` of the searched types (bound first) and `clauses`.
fn filter(clauses: &str) -> String {
    format!("c.k = 'c' AND c.del = false AND ARRAY_CONTAINS(@p1, c.t) AND {clauses}")
}

#[tokio::test]
async fn a_clause_tests_the_keys_its_entries_were_found_under() {
    let t = translate(Some("Observation"), &[("code", "http://loinc.org|1234-5")]).await;
    assert_eq!(
        t.filter,
        Statement::new(&filter("(ARRAY_CONTAINS(@p2, c.key))"), vec![json!(["Observation"]), json!([])])
    );
    assert_eq!(
        t.ran,
        vec![Statement::new(
            &entry_query("@p4", "@p3", "'t'", "x.sy = @p1 AND x.co = @p2"),
            vec![json!("http://loinc.org"), json!("1234-5"), json!("code"), json!(["Observation"])]
        )]
    );
}

#[tokio::test]
async fn each_parameter_type_searches_its_own_entry_kinds() {
    // (type, parameter, value, entry kinds, condition on the entry, how many values it binds)
    let cases = [
        ("Patient", "family", "chal", "'s'", "STARTSWITH(x.v, @p1)", 1),
        ("Patient", "gender", "male", "'t'", "x.co = @p1", 1),
        ("Observation", "subject", "http://other.org/Patient/1", "'r'", "x.r = @p1", 1),
        ("Observation", "date", "2020", "'d'", "(x.st >= @p1 AND x.en <= @p2)", 2),
        ("RiskAssessment", "probability", "0.5", "'n'", "(x.n >= @p1 AND x.n < @p2)", 2),
        ("Observation", "value-quantity", "5", "'q'", "(x.n >= @p1 AND x.n < @p2)", 2),
        ("ValueSet", "url", "http://acme.org", "'u'", "x.v = @p1", 1),
    ];
    for (resource_type, param, value, kinds, condition, bound) in cases {
        let t = translate(Some(resource_type), &[(param, value)]).await;
        assert_eq!(t.filter.text, filter("(ARRAY_CONTAINS(@p2, c.key))"), "{param}={value}");
        let (param_at, types_at) = (format!("@p{}", bound + 1), format!("@p{}", bound + 2));
        assert_eq!(t.ran.len(), 1, "{param}={value}");
        assert_eq!(t.ran[0].text, entry_query(&types_at, &param_at, kinds, condition), "{param}={value}");
        assert_eq!(t.ran[0].params[bound..], [json!(param), json!([resource_type])], "{param}={value}");
    }
}

#[tokio::test]
async fn alternatives_are_or_and_clauses_are_and() {
    let t = translate(Some("Patient"), &[("gender", "male,female"), ("family", "chal")]).await;
    assert_eq!(
        t.filter.text,
        filter("(ARRAY_CONTAINS(@p2, c.key) OR ARRAY_CONTAINS(@p3, c.key)) AND (ARRAY_CONTAINS(@p4, c.key))")
    );
    let conditions: Vec<&str> = t.ran.iter().map(|s| s.text.rsplit(" AND ").next().unwrap_or_default()).collect();
    assert_eq!(conditions, ["x.co = @p1", "x.co = @p1", "STARTSWITH(x.v, @p1)"]);
    assert_eq!(t.ran[1].params[0], json!("female"));
}

#[tokio::test]
async fn not_and_missing_negate_the_keys_or_ask_for_any_entry() {
    let t = translate(Some("Observation"), &[("code:not", "1234-5")]).await;
    assert_eq!(t.filter.text, filter("(NOT ARRAY_CONTAINS(@p2, c.key))"));
    assert_eq!(t.ran[0].text, entry_query("@p3", "@p2", "'t'", "x.co = @p1"));

    // `:missing=true`: no entry of any of the parameter type's kinds.
    let t = translate(Some("Observation"), &[("code:missing", "true")]).await;
    assert_eq!(t.filter.text, filter("(NOT ARRAY_CONTAINS(@p2, c.key))"));
    assert_eq!(
        t.ran[0],
        Statement::new(
            &entry_query("@p2", "@p1", "'t', 'o', 'i'", "true"),
            vec![json!("code"), json!(["Observation"])]
        )
    );
    let t = translate(Some("Observation"), &[("code:missing", "false")]).await;
    assert_eq!(t.filter.text, filter("(ARRAY_CONTAINS(@p2, c.key))"));
}

#[tokio::test]
async fn token_modifiers_search_their_own_fields() {
    let t = translate(Some("Observation"), &[("code:text", "Glucose")]).await;
    assert_eq!(
        t.ran[0],
        Statement::new(
            &entry_query("@p3", "@p2", "'t'", "STARTSWITH(x.tx, @p1)"),
            vec![json!("glucose"), json!("code"), json!(["Observation"])]
        )
    );

    let t = translate(
        Some("Patient"),
        &[("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053")],
    )
    .await;
    assert_eq!(
        t.ran[0],
        Statement::new(
            &entry_query("@p5", "@p4", "'o'", "x.sy = @p1 AND x.co = @p2 AND x.v = @p3"),
            vec![
                json!("http://terminology.hl7.org/CodeSystem/v2-0203"),
                json!("MR"),
                json!("446053"),
                json!("identifier"),
                json!(["Patient"])
            ]
        )
    );

    let t = translate(Some("Observation"), &[("subject:identifier", "http://acme.org/mrn|12345")]).await;
    assert_eq!(t.ran[0].text, entry_query("@p4", "@p3", "'i'", "x.sy = @p1 AND x.co = @p2"));
}

#[tokio::test]
async fn composites_test_each_component_of_one_entry() {
    let t = translate(Some("Observation"), &[("code-value-quantity", "http://loinc.org|8480-6$gt100")]).await;
    assert_eq!(
        t.ran[0],
        Statement::new(
            &entry_query("@p5", "@p4", "'c'", "x.cs[0].sy = @p1 AND x.cs[0].co = @p2 AND x.cs[1].n > @p3"),
            vec![
                json!("http://loinc.org"),
                json!("8480-6"),
                json!(100.0),
                json!("code-value-quantity"),
                json!(["Observation"])
            ]
        )
    );
}

#[tokio::test]
async fn a_search_of_all_types_names_none() {
    let t = translate(None, &[("_id", "a1")]).await;
    assert_eq!(t.filter.text, "c.k = 'c' AND c.del = false AND (ARRAY_CONTAINS(@p1, c.key))");
    assert_eq!(
        t.ran[0].text,
        "SELECT VALUE c.key FROM c JOIN x IN c.x WHERE c.k = 'c' AND c.del = false AND x.p = @p2 AND x.k IN ('t') AND x.co = @p1"
    );
    // `_type` names them.
    let t = translate(None, &[("_type", "Patient,Group"), ("_id", "a1")]).await;
    assert_eq!(t.filter.params[0], json!(["Patient", "Group"]));
    assert_eq!(t.ran[0].params.last(), Some(&json!(["Patient", "Group"])));
}

#[tokio::test]
async fn a_continuation_starts_after_the_last_key() {
    let mut query = parsed(Some("Patient"), &[]);
    query.after = Some(("Patient".into(), "p9".into()));
    let t = translate_on(&store().await, &query).await;
    assert_eq!(t.filter, Statement::new(&filter("c.key > @p2"), vec![json!(["Patient"]), json!("Patient/p9")]));
    assert!(t.ran.is_empty());
}

#[tokio::test]
async fn a_compartment_is_its_owner_or_what_refers_to_it() {
    let mut query = parsed(Some("Observation"), &[]);
    query.compartment = Some(Compartment {
        resource_type: "Patient".into(),
        id: "p1".into(),
        params: vec![("Observation".into(), vec!["subject".into(), "performer".into()])],
    });
    let t = translate_on(&store().await, &query).await;
    assert_eq!(
        t.filter,
        Statement::new(
            &filter("((c.t = @p2 AND c.rid = @p3) OR ARRAY_CONTAINS(@p4, c.key))"),
            vec![json!(["Observation"]), json!("Patient"), json!("p1"), json!([])]
        )
    );
    assert_eq!(
        t.ran,
        vec![Statement::new(
            "SELECT VALUE c.key FROM c JOIN x IN c.x WHERE c.k = 'c' AND c.del = false AND x.k = 'r' AND x.rt = @p1 \
             AND x.ri = @p2 AND ((c.t = @p3 AND ARRAY_CONTAINS(@p4, x.p)))",
            vec![json!("Patient"), json!("p1"), json!("Observation"), json!(["subject", "performer"])]
        )]
    );
}
