//! The walk pass (`translate/walk.rs`): on SQLite, a search in the default order driven by one
//! value reads that value's index in key order (`INDEXED BY`) and stops at the limit.

use super::{count, parsed, select, select_query, texts, texts_then_limit};
use crate::bind::Dialect;

#[test]
fn a_page_walks_the_value_index_in_key_order() {
    let sql = select(Dialect::Sqlite, Some("Observation"), &[("code", "http://loinc.org|1234-5")]);
    assert_eq!(
        sql.text,
        "SELECT r.resource_type, r.id, r.version FROM search_token x1 INDEXED BY search_token_code \
         JOIN search_current r ON r.resource_type = x1.resource_type AND r.id = x1.id \
         WHERE x1.param = ?1 AND x1.kind = ?2 AND x1.system = ?3 AND x1.code = ?4 AND x1.resource_type IN (?5) \
         GROUP BY x1.resource_type, x1.id ORDER BY x1.resource_type, x1.id LIMIT ?6"
    );
    assert_eq!(sql.binds, texts_then_limit(&["code", "t", "http://loinc.org", "1234-5", "Observation"]));
}

#[test]
fn other_clauses_are_probed_per_candidate_and_a_continuation_is_a_range_of_ids() {
    let mut query = parsed(Some("Observation"), &[("code", "x"), ("patient", "p1")]);
    query.after = Some(("Observation".into(), "o5".into()));
    let sql = select_query(Dialect::Sqlite, &query);
    // The patient's references drive; the common code is tested per candidate, on the index
    // row's resource (before the join).
    assert_eq!(
        sql.text,
        "SELECT r.resource_type, r.id, r.version FROM search_reference x1 INDEXED BY search_reference_target \
         JOIN search_current r ON r.resource_type = x1.resource_type AND r.id = x1.id \
         WHERE x1.param = ?1 AND x1.target_id = ?2 AND x1.resource_type IN (?3) \
         AND x1.resource_type = ?4 AND x1.id > ?5 \
         AND (EXISTS (SELECT 1 FROM search_token x2 WHERE x2.resource_type = x1.resource_type AND x2.id = x1.id \
         AND x2.param = ?6 AND x2.kind = ?7 AND x2.code = ?8 LIMIT 1)) \
         GROUP BY x1.resource_type, x1.id ORDER BY x1.resource_type, x1.id LIMIT ?9"
    );
    assert_eq!(sql.binds, texts_then_limit(&["patient", "p1", "Observation", "Observation", "o5", "code", "t", "x"]));
}

#[test]
fn a_count_of_one_value_reads_no_resource_row() {
    let sql = count(Dialect::Sqlite, Some("Patient"), &[("family:exact", "Chalmers")]);
    assert_eq!(
        sql.text,
        "SELECT COUNT(*) FROM (SELECT 1 FROM search_string x1 INDEXED BY search_string_value \
         WHERE x1.param = ?1 AND x1.exact = ?2 AND x1.resource_type IN (?3) GROUP BY x1.resource_type, x1.id) m"
    );
    assert_eq!(sql.binds, texts(&["family", "Chalmers", "Patient"]));
}

#[test]
fn a_count_with_other_clauses_probes_them_without_reading_the_resource_rows() {
    let sql = count(Dialect::Sqlite, Some("Observation"), &[("patient", "p1"), ("code", "x")]);
    assert!(!sql.text.contains("search_current"), "{}", sql.text);
    assert!(sql.text.contains("x2.resource_type = x1.resource_type AND x2.id = x1.id"), "{}", sql.text);
}

#[test]
fn a_probe_per_candidate_seeks_the_resource_index_unless_its_value_fixes_the_value_index() {
    // A date range (or a code of any system on a general statement) would otherwise be a scan
    // of the parameter's range for every candidate on SQLite.
    let sql = select(Dialect::Sqlite, Some("Observation"), &[("patient", "p1"), ("date", "ge2015")]);
    assert!(sql.text.contains("FROM search_date x2 INDEXED BY search_date_resource WHERE"), "{}", sql.text);
    let sql = select(Dialect::Sqlite, Some("Observation"), &[("patient", "p1"), ("code", "x")]);
    assert!(sql.text.contains("FROM search_token x2 WHERE"), "a code fixes the value index: {}", sql.text);
    let sql = select(Dialect::Sqlite, Some("Observation"), &[("patient", "p1"), ("code", "http://loinc.org|")]);
    assert!(sql.text.contains("FROM search_token x2 INDEXED BY search_token_resource WHERE"), "{}", sql.text);
    let sql =
        select(Dialect::Sqlite, Some("Patient"), &[("name", "smith"), ("birthdate", "ge1980"), ("_sort", "name")]);
    assert!(sql.text.contains("INDEXED BY search_date_resource"), "the general statement too: {}", sql.text);
    // Not on PostgreSQL, which plans from statistics, nor while the indexes are set aside.
    let sql = select(Dialect::Postgres, Some("Observation"), &[("patient", "p1"), ("date", "ge2015")]);
    assert!(!sql.text.contains("INDEXED BY"), "{}", sql.text);
    let aside = super::super::Target { dialect: Dialect::Sqlite, value_indexes: false };
    let sql = select(aside, Some("Observation"), &[("patient", "p1"), ("date", "ge2015")]);
    assert!(!sql.text.contains("INDEXED BY"), "{}", sql.text);
}

#[test]
fn postgres_walks_the_same_way_without_naming_the_index() {
    let sql = select(Dialect::Postgres, Some("Observation"), &[("code", "x")]);
    assert!(!sql.text.contains("INDEXED BY"), "{}", sql.text);
    assert!(sql.text.starts_with("SELECT r.resource_type, r.id, r.version FROM search_token x1 JOIN"), "{}", sql.text);
    assert!(sql.text.contains("GROUP BY x1.resource_type, x1.id, r.resource_type, r.id ORDER BY"), "{}", sql.text);
}

#[test]
fn negations_and_sorts_take_the_general_statement() {
    for (dialect, params) in [
        (Dialect::Sqlite, [("code:not", "x")]),
        (Dialect::Sqlite, [("_sort", "code")]),
        (Dialect::Sqlite, [("code:missing", "true")]),
        (Dialect::Postgres, [("code:not", "x")]),
    ] {
        let sql = select(dialect, Some("Observation"), &params);
        assert!(!sql.text.contains("INDEXED BY"), "{dialect:?} {params:?}: {}", sql.text);
        assert!(sql.text.starts_with("SELECT resource_type, id, version"), "{}", sql.text);
        assert!(sql.text.contains(" FROM (SELECT r.resource_type, r.id, r.version"), "{}", sql.text);
    }
}
