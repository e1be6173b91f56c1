//! The sort pass (`translate/sort.rs`): `_sort` keys as the smallest (ascending) or largest
//! (descending) value of each parameter, resources without one last, type and id breaking ties.

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::SortValue;

use super::{parsed, select, texts_then_limit};
use crate::bind::Dialect;

#[test]
fn keys_sort_by_the_extreme_value_missing_last_then_type_and_id() {
    let sql = select(Dialect::Postgres, Some("Patient"), &[("_sort", "-birthdate,family")]);
    assert_eq!(
        sql.text,
        "SELECT resource_type, id, version, s0, s1 FROM (SELECT r.resource_type, r.id, r.version, \
         (SELECT MAX(x1.end_at) FROM search_date x1 WHERE x1.resource_type = r.resource_type AND x1.id = r.id \
         AND x1.param = $2) AS s0, \
         (SELECT MIN(x2.value) FROM search_string x2 WHERE x2.resource_type = r.resource_type AND x2.id = r.id \
         AND x2.param = $3) AS s1 \
         FROM search_current r WHERE r.resource_type IN ($1)) q \
         ORDER BY (s0 IS NULL), s0 DESC, (s1 IS NULL), s1 ASC, resource_type, id LIMIT $4"
    );
    assert_eq!(sql.binds, texts_then_limit(&["Patient", "birthdate", "family"]));
}

#[test]
fn tokens_sort_by_code_of_plain_tokens_only_and_common_keys_by_column() {
    let sql = select(Dialect::Sqlite, Some("Observation"), &[("_sort", "code")]);
    assert_eq!(
        sql.text,
        "SELECT resource_type, id, version, s0 FROM (SELECT r.resource_type, r.id, r.version, \
         (SELECT MIN(x1.code) FROM search_token x1 WHERE x1.resource_type = r.resource_type AND x1.id = r.id \
         AND x1.param = ?2 AND x1.kind = ?3) AS s0 \
         FROM search_current r WHERE r.resource_type IN (?1)) q ORDER BY (s0 IS NULL), s0 ASC, resource_type, id LIMIT ?4"
    );
    assert_eq!(sql.binds, texts_then_limit(&["Observation", "code", "t"]));

    let sql = select(Dialect::Postgres, Some("Patient"), &[("_sort", "-_lastUpdated,_id")]);
    assert_eq!(
        sql.text,
        "SELECT resource_type, id, version, s0, s1 FROM (SELECT r.resource_type, r.id, r.version, \
         r.last_updated AS s0, r.id AS s1 FROM search_current r WHERE r.resource_type IN ($1)) q \
         ORDER BY (s0 IS NULL), s0 DESC, (s1 IS NULL), s1 ASC, resource_type, id LIMIT $2"
    );
}

#[test]
fn composites_cannot_be_sorted_by() {
    let query = parsed(Some("Observation"), &[("_sort", "code-value-quantity")]);
    let error = crate::translate::select(Dialect::Postgres, Definitions::r4(), &query, 10).err();
    assert_eq!(error.map(|e| e.0), Some("cannot sort by `code-value-quantity` (composite parameter)".to_owned()));
}

#[test]
fn a_sorted_continuation_is_after_the_key_values_outside_missing_values_last() {
    let mut query = parsed(Some("Patient"), &[("_sort", "-birthdate,family")]);
    query.after = Some(("Patient".into(), "p2".into()));
    query.after_sort = vec![Some(SortValue::Text("1980-02-29".into())), None];
    let sql = crate::translate::select(Dialect::Postgres, Definitions::r4(), &query, 10).map(|s| s.sql);
    let text = sql.map(|s| s.text).unwrap_or_default();
    assert!(!text.contains("(r.resource_type, r.id) >"), "not by type and id alone: {text}");
    assert!(
        text.contains(
            ") q WHERE (((s0 < $4 OR s0 IS NULL)) OR (s0 = $4 AND s1 IS NULL AND (resource_type, id) > ($5, $6))) ORDER BY"
        ),
        "{text}"
    );
    query.after_sort = vec![Some(SortValue::Integer(3)), None];
    let wrong = crate::translate::select(Dialect::Postgres, Definitions::r4(), &query, 10).err();
    assert!(wrong.is_some(), "a value of another type than the key's is refused");
}
