//! The filter pass (`translate/mod.rs`): clauses as conditions on `search_current r`, the
//! narrowest one driving through an uncorrelated sub-query, the others probed per candidate;
//! chains, `_has` and composites nested; compartments and continuations.

use fhirgate_engine::search::query::Compartment;

use super::super::Target;
use super::{parsed, select, select_query, texts_then_limit};
use crate::bind::Dialect;

/// PostgreSQL without the value indexes to walk (as while an initial load has set them aside):
/// every search takes the general statement.
const GENERAL: Target = Target { dialect: Dialect::Postgres, value_indexes: false };

/// The general statement around a filter on `r`.
fn general(filter: &str) -> String {
    format!(
        "SELECT resource_type, id, version FROM (SELECT r.resource_type, r.id, r.version FROM search_current r \
         WHERE {filter}) q ORDER BY resource_type, id LIMIT $"
    )
}

#[test]
fn the_narrowest_clause_drives_and_the_others_are_probed_per_candidate() {
    let sql = select(GENERAL, Some("Observation"), &[("code", "x"), ("patient", "p1")]);
    // (On PostgreSQL `OFFSET 0` keeps the `EXISTS` a probe: see `On::render`.)
    let filter = "r.resource_type IN ($1) \
         AND (EXISTS (SELECT 1 FROM search_token x1 WHERE x1.resource_type = r.resource_type AND x1.id = r.id \
         AND x1.param = $2 AND x1.kind = $3 AND x1.code = $4 OFFSET 0)) \
         AND ((r.resource_type, r.id) IN (SELECT x2.resource_type, x2.id FROM search_reference x2 \
         WHERE x2.param = $5 AND x2.target_id = $6))";
    assert_eq!(sql.text, format!("{}7", general(filter)));
    assert_eq!(sql.binds, texts_then_limit(&["Observation", "code", "t", "x", "patient", "p1"]));
}

#[test]
fn alternatives_are_or_and_negations_are_not_in() {
    let sql = select(GENERAL, Some("Observation"), &[("code:not", "x")]);
    let filter = "r.resource_type IN ($1) AND ((r.resource_type, r.id) NOT IN (SELECT x1.resource_type, x1.id \
         FROM search_token x1 WHERE x1.param = $2 AND x1.kind = $3 AND x1.code = $4))";
    assert_eq!(sql.text, format!("{}5", general(filter)));

    let sql = select(GENERAL, Some("Patient"), &[("gender", "male,female")]);
    let filter = "r.resource_type IN ($1) AND ((r.resource_type, r.id) IN (SELECT x1.resource_type, x1.id \
         FROM search_token x1 WHERE x1.param = $2 AND x1.kind = $3 AND x1.code = $4) \
         OR (r.resource_type, r.id) IN (SELECT x2.resource_type, x2.id \
         FROM search_token x2 WHERE x2.param = $5 AND x2.kind = $6 AND x2.code = $7))";
    assert_eq!(sql.text, format!("{}8", general(filter)));
    assert_eq!(sql.binds, texts_then_limit(&["Patient", "gender", "t", "male", "gender", "t", "female"]));
}

#[test]
fn chains_and_has_nest_through_search_reference() {
    let sql = select(GENERAL, Some("Observation"), &[("subject:Patient.name", "peter")]);
    let filter = "r.resource_type IN ($1) AND ((r.resource_type, r.id) IN (SELECT x1.resource_type, x1.id \
         FROM search_reference x1 WHERE x1.param = $2 AND x1.target_type IN ($3) \
         AND ((x1.target_type, x1.target_id) IN (SELECT x2.resource_type, x2.id FROM search_string x2 \
         WHERE x2.param = $4 AND x2.value >= $5 AND x2.value < $6))))";
    assert_eq!(sql.text, format!("{}7", general(filter)));

    let sql = select(GENERAL, Some("Patient"), &[("_has:Observation:patient:code", "1234")]);
    let filter = "r.resource_type IN ($1) AND ((r.resource_type, r.id) IN (SELECT x1.target_type, x1.target_id \
         FROM search_reference x1 WHERE x1.resource_type = $2 AND x1.param = $3 \
         AND ((x1.resource_type, x1.id) IN (SELECT x2.resource_type, x2.id FROM search_token x2 \
         WHERE x2.param = $4 AND x2.kind = $5 AND x2.code = $6))))";
    assert_eq!(sql.text, format!("{}7", general(filter)));
    assert_eq!(sql.binds, texts_then_limit(&["Patient", "Observation", "patient", "code", "t", "1234"]));
}

#[test]
fn a_composite_joins_the_components_of_one_value() {
    let sql = select(GENERAL, Some("Observation"), &[("code-value-quantity", "http://loinc.org|8480-6$gt100")]);
    let filter = "r.resource_type IN ($1) AND ((r.resource_type, r.id) IN (SELECT x2.resource_type, x2.id \
         FROM search_composite x2 JOIN search_composite x3 ON x3.resource_type = x2.resource_type \
         AND x3.id = x2.id AND x3.param = x2.param AND x3.grp = x2.grp AND x3.comp = 1 \
         WHERE x2.param = $2 AND x2.comp = 0 AND x2.system = $3 AND x2.code = $4 AND x3.num > $5))";
    assert_eq!(sql.text, format!("{}6", general(filter)));
}

#[test]
fn a_compartment_is_its_owner_or_what_refers_to_it() {
    let mut query = parsed(Some("Observation"), &[("code", "x")]);
    query.compartment = Some(Compartment {
        resource_type: "Patient".into(),
        id: "p1".into(),
        params: vec![("Observation".into(), vec!["subject".into(), "performer".into()])],
    });
    let sql = select_query(GENERAL, &query);
    // The compartment drives; the code is probed per candidate.
    let filter = "r.resource_type IN ($1) AND ((r.resource_type = $2 AND r.id = $3) \
         OR (r.resource_type, r.id) IN (SELECT x1.resource_type, x1.id FROM search_reference x1 \
         WHERE x1.target_id = $4 AND x1.target_type = $5 AND x1.param IN ($6, $7) AND x1.resource_type = $8)) \
         AND (EXISTS (SELECT 1 FROM search_token x2 WHERE x2.resource_type = r.resource_type AND x2.id = r.id \
         AND x2.param = $9 AND x2.kind = $10 AND x2.code = $11 OFFSET 0))";
    assert_eq!(sql.text, format!("{}12", general(filter)));
    assert_eq!(
        sql.binds,
        texts_then_limit(&[
            "Observation",
            "Patient",
            "p1",
            "p1",
            "Patient",
            "subject",
            "performer",
            "Observation",
            "code",
            "t",
            "x"
        ])
    );
}

#[test]
fn a_continuation_over_several_types_compares_type_and_id_together() {
    let mut query = parsed(None, &[("_type", "Patient,Group")]);
    query.after = Some(("Group".into(), "g9".into()));
    let sql = select_query(GENERAL, &query);
    let filter = "r.resource_type IN ($1, $2) AND (r.resource_type, r.id) > ($3, $4)";
    assert_eq!(sql.text, format!("{}5", general(filter)));
    assert_eq!(sql.binds, texts_then_limit(&["Patient", "Group", "Group", "g9"]));
}
