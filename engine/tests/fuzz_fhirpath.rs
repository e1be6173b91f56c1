//! Fuzz target: the FHIRPath parser and evaluator on arbitrary text, on token soups of the
//! language's own words, on generated well-formed expressions, and on expressions nested
//! thousands deep, evaluated against a sample resource under a small work budget. Parsing
//! answers an expression or a syntax error; evaluation answers items or an evaluation,
//! unsupported or budget error; nothing panics, overflows the stack, or runs past its budget.

mod fuzz;

use std::time::Duration;

use fhirgate_engine::fhirpath::{Budget, Env, ErrorKind, evaluate, parse};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// A Patient with enough in it for quadratic expressions to cost something.
fn sample() -> Value {
    let names: Vec<Value> =
        (0..200).map(|i| json!({"use": "official", "family": format!("F{i}"), "given": ["A", "B"]})).collect();
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "birthDate": "1970-01-01",
        "name": names,
        "telecom": [{"system": "phone", "value": "123"}],
        "managingOrganization": {"reference": "#org"},
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "extension": [{"url": "u", "valueQuantity": {"value": 1.5, "unit": "mg", "code": "mg"}}]
    })
}

/// Words and symbols of the language.
const TOKENS: &[&str] = &[
    "Patient",
    "name",
    "given",
    "family",
    "telecom",
    "extension",
    "value",
    "contained",
    ".",
    "(",
    ")",
    "[",
    "]",
    ",",
    "where(",
    "select(",
    "repeat(",
    "exists(",
    "all(",
    "iif(",
    "aggregate(",
    "descendants()",
    "children()",
    "count()",
    "distinct()",
    "first()",
    "union(",
    "combine(",
    "resolve()",
    "ofType(",
    "as",
    "is",
    "%resource",
    "%context",
    "$this",
    "$index",
    "$total",
    "|",
    "+",
    "-",
    "*",
    "/",
    "&",
    "and",
    "or",
    "implies",
    "xor",
    "=",
    "!=",
    "~",
    "<",
    ">=",
    "in",
    "contains",
    "'a'",
    "1",
    "2.5",
    "@2020-01-01",
    "@T12:00",
    "5 'mg'",
    "true",
    "{}",
    "not()",
    "empty()",
    "substring(",
    "replace(",
    "matches(",
    "toString()",
    "toInteger()",
    "sort(",
    "`x`",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.join(" ").replace(" . ", "."))
}

/// Well-formed expressions built recursively.
fn well_formed() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(&["name", "given", "Patient.name", "%resource", "$this", "1", "'a'", "true"][..])
        .prop_map(str::to_owned);
    leaf.prop_recursive(6, 64, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(&["given", "family", "descendants()", "count()", "distinct()"][..]))
                .prop_map(|(a, f)| format!("{a}.{f}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}.where({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}.select({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} | {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}.combine({b}).distinct()")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} = {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("iif({a}.exists(), {b}, {{}})")),
        ]
    })
}

/// An expression nested `depth` times with one of several wrappers.
fn deep() -> impl Strategy<Value = String> {
    let wrappers = prop::sample::select(&["paren", "where", "iif", "index", "negate", "chain", "mixed"][..]);
    (wrappers, 0usize..6_000).prop_map(|(wrapper, depth)| match wrapper {
        "paren" => format!("{}name{}", "(".repeat(depth), ")".repeat(depth)),
        "where" => format!("name{}{}", ".where(true".repeat(depth), ")".repeat(depth)),
        "iif" => format!("{}1{}", "iif(true, ".repeat(depth), ", 0)".repeat(depth)),
        "index" => format!("name{}", "[0]".repeat(depth)),
        "negate" => format!("{}1", "-".repeat(depth)),
        "chain" => format!("Patient{}", ".name".repeat(depth)),
        _ => (0..depth.min(200)).fold("name".to_owned(), |e, i| format!("({e}).given{}", ".first()".repeat(i % 30))),
    })
}

fn expression() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), token_soup(), well_formed(), "[a-z.()%$|'0-9 ]{0,60}"]
}

/// A budget small enough for a debug build to run many cases quickly.
fn budget() -> Budget {
    Budget { max_steps: 200_000, max_time: Duration::from_secs(5) }
}

/// Parses and evaluates, checking the kinds of errors.
fn check(text: &str, resource: &Value) -> Result<(), TestCaseError> {
    let expr = match parse(text) {
        Ok(expr) => expr,
        Err(e) => {
            prop_assert_eq!(e.kind, ErrorKind::Syntax, "parse error of another kind: {}", e);
            return Ok(());
        }
    };
    match evaluate(&expr, resource, &Env::new().with_budget(budget())) {
        Ok(_) => Ok(()),
        Err(e) => {
            prop_assert!(
                matches!(e.kind, ErrorKind::Evaluation | ErrorKind::Unsupported | ErrorKind::Budget),
                "evaluation error of an unexpected kind: {e}"
            );
            Ok(())
        }
    }
}

#[test]
fn arbitrary_expressions_parse_and_evaluate_cleanly() {
    let resource = sample();
    fuzz::run("fhirpath expressions", fuzz::CASES, expression(), |text| check(&text, &resource));
}

#[test]
fn deep_expressions_are_refused_cleanly() {
    let resource = sample();
    fuzz::run("deep fhirpath", 64, deep(), |text| check(&text, &resource));
}

#[test]
fn costly_expressions_stop_at_the_budget() {
    let resource = sample();
    let costly = prop::sample::select(
        &[
            "Patient.name.where(%resource.descendants().count() < 0).family",
            "Patient.name.select(%resource.name).distinct().count()",
            "(Patient.name.select(%resource.name) | Patient.name).count()",
            "Patient.name.select(%resource.name.given.combine(%resource.name.given)).count()",
            "Patient.name.repeat(%resource.name).count()",
            "Patient.name.aggregate($total & 'xxxxxxxxxxxxxxxx' & $total, '').length()",
        ][..],
    );
    fuzz::run("costly fhirpath", 6, costly, |text| {
        let expr = parse(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let small = Budget { max_steps: 50_000, max_time: Duration::from_secs(5) };
        let result = evaluate(&expr, &resource, &Env::new().with_budget(small));
        prop_assert!(matches!(&result, Err(e) if e.kind == ErrorKind::Budget), "{text}: {result:?}");
        Ok(())
    });
}
