//! The condition pass (`translate/condition.rs`): one predicate as a condition on one row of its
//! search table, per value type and prefix.

use super::{predicate, texts};
use crate::bind::{Bind, Binder, Dialect};
use crate::translate::condition;

/// The condition on row `x` of `param=value` searched on `resource_type`, and its parameters.
fn rendered(resource_type: &str, param: &str, value: &str) -> (String, Vec<Bind>) {
    let mut binder = Binder::new(Dialect::Postgres);
    match condition::value(&mut binder, "x", &predicate(resource_type, param, value)) {
        Ok(text) => (text, binder.binds),
        Err(e) => (format!("unsupported: {}", e.0), binder.binds),
    }
}

#[test]
fn strings_start_with_match_exactly_or_contain() {
    let max = '\u{10FFFF}';
    assert_eq!(
        rendered("Patient", "family", "Chal"),
        ("x.value >= $1 AND x.value < $2".into(), texts(&["chal", &format!("chal{max}")]))
    );
    assert_eq!(rendered("Patient", "family:exact", "Chalmers"), ("x.exact = $1".into(), texts(&["Chalmers"])));
    // `%`, `_` and `\\` in the value are escaped, not wildcards.
    assert_eq!(
        rendered("Patient", "family:contains", "a%b_c"),
        ("x.value LIKE $1 ESCAPE '\\'".into(), texts(&["%a\\%b\\_c%"]))
    );
}

#[test]
fn tokens_test_the_system_only_as_written() {
    assert_eq!(
        rendered("Observation", "code", "http://loinc.org|1234-5"),
        ("x.system = $1 AND x.code = $2".into(), texts(&["http://loinc.org", "1234-5"]))
    );
    assert_eq!(rendered("Observation", "code", "1234-5"), ("x.code = $1".into(), texts(&["1234-5"])));
    assert_eq!(
        rendered("Observation", "code", "|1234-5"),
        ("x.system IS NULL AND x.code = $1".into(), texts(&["1234-5"]))
    );
    assert_eq!(
        rendered("Observation", "code", "http://loinc.org|"),
        ("x.system = $1".into(), texts(&["http://loinc.org"]))
    );
}

#[test]
fn references_are_local_ids_of_the_allowed_types_or_urls() {
    assert_eq!(
        rendered("Observation", "subject", "Patient/p1"),
        ("x.target_id = $1 AND x.target_type IN ($2)".into(), texts(&["p1", "Patient"]))
    );
    assert_eq!(
        rendered("Observation", "subject", "http://other.org/fhir/Patient/1"),
        ("x.reference = $1".into(), texts(&["http://other.org/fhir/Patient/1"]))
    );
}

#[test]
fn dates_compare_their_ranges_as_the_prefix_says() {
    let (day_start, day_end) = ("2020-01-01T00:00:00.000Z", "2020-01-01T23:59:59.999Z");
    assert_eq!(
        rendered("Observation", "date", "2020-01-01"),
        ("(x.start_at >= $1 AND x.end_at <= $2)".into(), texts(&[day_start, day_end]))
    );
    assert_eq!(
        rendered("Observation", "date", "ge2020-01-01"),
        ("(x.end_at > $1 OR (x.start_at >= $2 AND x.end_at <= $3))".into(), texts(&[day_end, day_start, day_end]))
    );
}

#[test]
fn numbers_and_quantities_compare_the_implicit_range() {
    assert_eq!(rendered("RiskAssessment", "probability", "gt0.5"), ("x.num > $1".into(), vec![Bind::Real(0.5)]));
    let (text, binds) = rendered("Observation", "value-quantity", "5.4|http://unitsofmeasure.org|mg");
    assert_eq!(text, "(x.num >= $1 AND x.num < $2) AND x.system = $3 AND x.code = $4");
    assert_eq!(binds[2..], texts(&["http://unitsofmeasure.org", "mg"]));
    assert!(
        matches!(binds[..2], [Bind::Real(low), Bind::Real(high)] if (low - 5.35).abs() < 1e-9 && (high - 5.45).abs() < 1e-9)
    );
    // Without a system, the unit matches as a code or as written, through one parameter.
    let (text, binds) = rendered("Observation", "value-quantity", "5.4||mg");
    assert_eq!(text, "(x.num >= $1 AND x.num < $2) AND (x.code = $3 OR x.unit = $3)");
    assert_eq!(binds[2..], texts(&["mg"]));
}

#[test]
fn uris_match_exactly_below_or_above() {
    let max = '\u{10FFFF}';
    assert_eq!(
        rendered("ValueSet", "url", "http://acme.org/fhir"),
        ("x.value = $1".into(), texts(&["http://acme.org/fhir"]))
    );
    assert_eq!(
        rendered("ValueSet", "url:below", "http://acme.org/fhir"),
        (
            "x.value >= $1 AND x.value < $2".into(),
            texts(&["http://acme.org/fhir", &format!("http://acme.org/fhir{max}")])
        )
    );
    assert_eq!(
        rendered("ValueSet", "url:above", "http://acme.org/fhir/ValueSet/x"),
        ("x.value = substr($1, 1, length(x.value))".into(), texts(&["http://acme.org/fhir/ValueSet/x"]))
    );
}

#[test]
fn a_predicate_of_several_rows_is_no_row_condition() {
    let (text, _) = rendered("Patient", "gender:missing", "true");
    assert!(text.starts_with("unsupported: "), "{text}");
}
