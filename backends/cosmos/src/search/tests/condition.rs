//! The condition pass (`search/condition.rs`): one predicate as a condition on one flattened
//! index entry `x`, per value type, modifier and prefix.

use serde_json::{Value, json};

use super::{predicate, texts};
use crate::search::{Params, condition};

/// The condition on entry `x` of `param=value` searched on `resource_type`, and its parameters.
fn rendered(resource_type: &str, param: &str, value: &str) -> (String, Vec<Value>) {
    let mut p = Params::default();
    let text = match condition::value(&mut p, "x", &predicate(resource_type, param, value)) {
        Ok(text) => text,
        Err(e) => format!("unsupported: {e}"),
    };
    (text, p.values.into_iter().map(|(_, v)| v).collect())
}

#[test]
fn strings_start_with_match_exactly_or_contain() {
    assert_eq!(rendered("Patient", "family", "Chal"), ("STARTSWITH(x.v, @p1)".into(), texts(&["chal"])));
    assert_eq!(rendered("Patient", "family:exact", "Chalmers"), ("x.e = @p1".into(), texts(&["Chalmers"])));
    assert_eq!(rendered("Patient", "family:contains", "alm"), ("CONTAINS(x.v, @p1)".into(), texts(&["alm"])));
}

#[test]
fn tokens_test_the_system_only_as_written() {
    assert_eq!(
        rendered("Observation", "code", "http://loinc.org|1234-5"),
        ("x.sy = @p1 AND x.co = @p2".into(), texts(&["http://loinc.org", "1234-5"]))
    );
    assert_eq!(rendered("Observation", "code", "1234-5"), ("x.co = @p1".into(), texts(&["1234-5"])));
    assert_eq!(
        rendered("Observation", "code", "|1234-5"),
        ("NOT IS_DEFINED(x.sy) AND x.co = @p1".into(), texts(&["1234-5"]))
    );
    assert_eq!(
        rendered("Observation", "code", "http://loinc.org|"),
        ("x.sy = @p1".into(), texts(&["http://loinc.org"]))
    );
}

#[test]
fn references_are_local_ids_of_the_allowed_types_or_urls() {
    assert_eq!(
        rendered("Observation", "subject", "Patient/p1"),
        ("x.ri = @p1 AND ARRAY_CONTAINS(@p2, x.rt)".into(), vec![json!("p1"), json!(["Patient"])])
    );
    assert_eq!(
        rendered("Observation", "subject:Patient", "p1"),
        ("x.ri = @p1 AND ARRAY_CONTAINS(@p2, x.rt)".into(), vec![json!("p1"), json!(["Patient"])])
    );
    assert_eq!(
        rendered("Observation", "subject", "http://other.org/fhir/Patient/1"),
        ("x.r = @p1".into(), texts(&["http://other.org/fhir/Patient/1"]))
    );
}

#[test]
fn dates_compare_their_ranges_as_the_prefix_says() {
    let (day_start, day_end) = ("2020-01-01T00:00:00.000Z", "2020-01-01T23:59:59.999Z");
    assert_eq!(
        rendered("Observation", "date", "2020-01-01"),
        ("(x.st >= @p1 AND x.en <= @p2)".into(), texts(&[day_start, day_end]))
    );
    assert_eq!(
        rendered("Observation", "date", "ge2020-01-01"),
        ("(x.en > @p1 OR (x.st >= @p2 AND x.en <= @p3))".into(), texts(&[day_end, day_start, day_end]))
    );
}

#[test]
fn numbers_and_quantities_compare_the_implicit_range() {
    assert_eq!(rendered("RiskAssessment", "probability", "gt0.5"), ("x.n > @p1".into(), vec![json!(0.5)]));
    let (text, params) = rendered("Observation", "value-quantity", "5.4|http://unitsofmeasure.org|mg");
    assert_eq!(text, "(x.n >= @p1 AND x.n < @p2) AND x.sy = @p3 AND x.co = @p4");
    assert_eq!(params, vec![json!(5.35), json!(5.45), json!("http://unitsofmeasure.org"), json!("mg")]);
    // Without a system the unit matches as code or as written.
    let (text, params) = rendered("Observation", "value-quantity", "5.4||mg");
    assert_eq!(text, "(x.n >= @p1 AND x.n < @p2) AND (x.co = @p3 OR x.un = @p3)");
    assert_eq!(params[2..], texts(&["mg"]));
}

#[test]
fn uris_match_exactly_below_or_above() {
    let url = "http://acme.org/fhir/ValueSet/1";
    assert_eq!(rendered("ValueSet", "url", url), ("x.v = @p1".into(), texts(&[url])));
    assert_eq!(
        rendered("ValueSet", "url:below", "http://acme.org/fhir"),
        ("STARTSWITH(x.v, @p1)".into(), texts(&["http://acme.org/fhir"]))
    );
    assert_eq!(
        rendered("ValueSet", "url:above", url),
        ("(IS_STRING(x.v) AND STARTSWITH(@p1, x.v))".into(), texts(&[url]))
    );
}

#[test]
fn what_is_no_value_is_refused() {
    let (text, params) = rendered("Patient", "name:missing", "true");
    assert!(text.starts_with("unsupported: "), "{text}");
    assert!(params.is_empty());
}
