//! Known answers for the core of the evaluator (the official suite runs in
//! `engine/tests/fhirpath_official.rs`).

#![expect(clippy::unwrap_used, clippy::panic, reason = "a test fails by panicking")]

use serde_json::{Value, json};

use super::{Budget, Env, ErrorKind, Item, evaluate, evaluate_on, parse};

fn observation() -> Value {
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/example"},
        "performer": [{"reference": "Practitioner/1"}, {"reference": "#org"}],
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "effectiveDateTime": "2016-03-28",
        "valueQuantity": {"unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
    });
    // Parsed from text: `json!` would go through f64 and lose the written precision.
    obs["valueQuantity"]["value"] = serde_json::from_str("185.50").unwrap();
    obs
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "active": true,
        "name": [{"given": ["Peter", "James"], "family": "Chalmers"}, {"given": ["Jim"]}],
        "_birthDate": {"extension": [{"url": "http://example.org/why", "valueString": "unknown"}]},
        "gender": "male"
    })
}

/// Evaluates `expr` on `resource` and returns the items as JSON.
fn run(expr: &str, resource: &Value) -> Vec<Value> {
    let parsed = parse(expr).unwrap_or_else(|e| panic!("`{expr}`: {e}"));
    let items = evaluate(&parsed, resource, &Env::new()).unwrap_or_else(|e| panic!("`{expr}`: {e}"));
    items.iter().map(|i| i.to_json().map(|j| j.into_owned()).unwrap_or(Value::Null)).collect()
}

fn check(expr: &str, resource: &Value, expected: Value) {
    let Value::Array(expected) = expected else { panic!("expected must be an array") };
    assert_eq!(run(expr, resource), expected, "`{expr}`");
}

#[test]
fn arithmetic_and_precedence() {
    let r = Value::Null;
    check("1 + 2 * 3", &r, json!([7]));
    check("(1 + 2) * 3", &r, json!([9]));
    check("7 div 2 + 7 mod 2", &r, json!([4]));
    check("-2.5.abs()", &r, json!([-2.5]));
    check("'a' & {} & 'b'", &r, json!(["ab"]));
    check("(1 | 1 is Integer).count()", &r, json!([2]));
}

#[test]
fn decimals_stay_exact() {
    let r = Value::Null;
    check("0.1 + 0.2 = 0.3", &r, json!([true]));
    check("1.10.toString()", &r, json!(["1.10"]));
    check("1.0 = 1.00", &r, json!([true]));
    check("1.0 ~ 1.04", &r, json!([true]));
    check("1 / 3", &r, json!([0.33333333]));
    check("Observation.value.value.toString()", &observation(), json!(["185.50"]));
}

#[test]
fn choice_elements_are_typed_by_their_suffix() {
    let obs = observation();
    check("Observation.value.ofType(Quantity).unit", &obs, json!(["lbs"]));
    check("Observation.value is FHIR.Quantity", &obs, json!([true]));
    check("Observation.value is Period", &obs, json!([false]));
    check("(Observation.value as Quantity).code", &obs, json!(["[lb_av]"]));
    check("Observation.effective.ofType(dateTime) = @2016-03-28", &obs, json!([true]));
    check("Observation.value > 100 '[lb_av]'", &obs, json!([true]));
}

#[test]
fn resolve_types_references_without_a_store() {
    let obs = observation();
    check("Observation.subject.where(resolve() is Patient).reference", &obs, json!(["Patient/example"]));
    check("Observation.subject.resolve() is Group", &obs, json!([false]));
    check("Observation.performer.resolve().ofType(Organization).name", &obs, json!(["Acme"]));
    check("Observation.performer.resolve().count()", &obs, json!([2]));
}

#[test]
fn primitive_extensions_come_from_the_underscore_sibling() {
    let p = patient();
    check("Patient.birthDate.exists()", &p, json!([true]));
    check("Patient.birthDate.hasValue()", &p, json!([false]));
    check("Patient.birthDate.extension('http://example.org/why').value", &p, json!(["unknown"]));
    check("Patient.gender.hasValue()", &p, json!([true]));
}

#[test]
fn collections_and_functions() {
    let p = patient();
    check("Patient.name.given", &p, json!(["Peter", "James", "Jim"]));
    check("Patient.name.where(given = 'Jim').given.count()", &p, json!([1]));
    check("Patient.name.select(given.first())", &p, json!(["Peter", "Jim"]));
    check("Patient.name.given.where($index > 0 and $this.startsWith('J'))", &p, json!(["James", "Jim"]));
    check("(1 | 2 | 2 | 3).count()", &p, json!([3]));
    check("(1 | 2).combine(2).count()", &p, json!([3]));
    check("Patient.name.given.skip(1).take(1)", &p, json!(["James"]));
    check("Patient.name[1].given", &p, json!(["Jim"]));
    check("'Jim' in Patient.name.given", &p, json!([true]));
    check("Patient.name.given contains 'Bob'", &p, json!([false]));
    check("Patient.name.given.first().substring(1, 3).upper()", &p, json!(["ETE"]));
    check("iif(Patient.active, 'yes', 'no')", &p, json!(["yes"]));
    check("%resource.gender", &p, json!(["male"]));
    check("Patient.descendants().ofType(string).count()", &p, json!([5]));
    check("(1 | 2 | 3).aggregate($this + $total, 0)", &p, json!([6]));
}

#[test]
fn three_valued_logic() {
    let r = Value::Null;
    check("{} and false", &r, json!([false]));
    check("{} and true", &r, json!([]));
    check("{} or true", &r, json!([true]));
    check("true xor {}", &r, json!([]));
    check("false implies {}", &r, json!([true]));
    check("true implies {}", &r, json!([]));
    check("{}.not()", &r, json!([]));
}

#[test]
fn dates_compare_by_precision() {
    let r = Value::Null;
    check("@2012-04 = @2012-04-15", &r, json!([]));
    check("@2012-04 != @2012-05-15", &r, json!([true]));
    check("@2012-04-15 < @2012-04-16", &r, json!([true]));
    check("@2012-04-15T10:00:00+02:00 = @2012-04-15T08:00:00Z", &r, json!([true]));
    check("@2012-04-15T10:00:00.000 = @2012-04-15T10:00:00", &r, json!([true]));
    check("@2012-01-31 + 1 month", &r, json!(["2012-02-29"]));
    check("@T10:30 < @T11", &r, json!([true]));
    check("@T10:30 < @T10", &r, json!([]));
    check("7 days = 1 week", &r, json!([true]));
    check("1 year = 1 'a'", &r, json!([]));
    check("1 year ~ 1 'a'", &r, json!([true]));
}

#[test]
fn errors_are_values() {
    let p = patient();
    let eval = |expr: &str| parse(expr).and_then(|e| evaluate(&e, &p, &Env::new()).map(|_| ()));
    assert_eq!(eval("1 +").unwrap_err().kind, ErrorKind::Syntax);
    assert_eq!(eval("'unterminated").unwrap_err().kind, ErrorKind::Syntax);
    assert_eq!(eval("Patient.name.given.single()").unwrap_err().kind, ErrorKind::Evaluation);
    assert_eq!(eval("Patient.name.given + 1").unwrap_err().kind, ErrorKind::Evaluation);
    assert_eq!(eval("Patient.gender.memberOf('http://x')").unwrap_err().kind, ErrorKind::Unsupported);
    assert_eq!(eval("Patient.frobnicate()").unwrap_err().kind, ErrorKind::Unsupported);
    assert!(eval("%undefined").unwrap_err().message.contains("`%undefined`"));
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(eval(&deep).unwrap_err().kind, ErrorKind::Syntax);
    for long in [format!("name{}", ".given".repeat(50_000)), "1 + ".repeat(50_000) + "1", "-".repeat(50_000) + "1"] {
        assert!(eval(&long).is_err(), "a long chain must fail cleanly");
    }
    let chain = format!("Patient{}", ".name".repeat(300));
    assert!(eval(&chain).is_err(), "evaluation depth is bounded");
    assert_eq!(eval("@2012-01-01 + 9223372036854775807 days").unwrap_err().kind, ErrorKind::Evaluation);
    assert_eq!(eval("9223372036854775807 + 1").unwrap_err().kind, ErrorKind::Evaluation);
}

#[test]
fn items_expose_their_type() {
    let obs = observation();
    let expr = parse("Observation.value | Observation.status | 1.5 | @2012").unwrap();
    let items = evaluate(&expr, &obs, &Env::new()).unwrap();
    let types: Vec<(&str, Option<&str>)> = items.iter().map(|i| (i.namespace(), i.type_name())).collect();
    assert_eq!(
        types,
        [("FHIR", Some("Quantity")), ("FHIR", Some("code")), ("System", Some("Decimal")), ("System", Some("Date"))]
    );
    let env = Env::new().with_variable("limit", vec![Item::Integer(3)]);
    let expr = parse("%limit * 2").unwrap();
    assert_eq!(evaluate(&expr, &obs, &env).unwrap(), vec![Item::Integer(6)]);
}

#[test]
fn composite_components_evaluate_on_each_value() {
    let obs = json!({
        "resourceType": "Observation",
        "component": [
            {"code": {"text": "systolic"}, "valueQuantity": {"value": 120}},
            {"code": {"text": "diastolic"}, "valueQuantity": {"value": 80}}
        ]
    });
    let components = evaluate(&parse("Observation.component").unwrap(), &obs, &Env::new()).unwrap();
    let value = parse("value.ofType(Quantity).value").unwrap();
    let values: Vec<Value> = components
        .iter()
        .flat_map(|c| evaluate_on(&value, &obs, std::slice::from_ref(c), &Env::new()).unwrap())
        .map(|i| i.to_json().unwrap().into_owned())
        .collect();
    assert_eq!(values, [json!(120), json!(80)]);
    let context = evaluate_on(&parse("%context.code.text").unwrap(), &obs, &components[..1], &Env::new()).unwrap();
    assert_eq!(context.len(), 1);
    assert_eq!(context[0].to_json().unwrap().as_str(), Some("systolic"));
}

/// A Patient with `n` names, each with a family and two given names.
fn patient_with_names(n: usize) -> Value {
    let names: Vec<Value> = (0..n).map(|i| json!({"family": format!("F{i}"), "given": ["A", "B"]})).collect();
    json!({"resourceType": "Patient", "name": names})
}

#[test]
fn a_quadratic_expression_ends_with_a_budget_error() {
    let p = patient_with_names(3_000);
    let expr = parse("Patient.name.where(%resource.descendants().count() < 0).family").unwrap();
    let started = std::time::Instant::now();
    // The default steps, and time enough that a loaded machine stops on the steps.
    let steps = Budget { max_time: std::time::Duration::from_secs(600), ..Budget::DEFAULT };
    let err = evaluate(&expr, &p, &Env::new().with_budget(steps)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Budget, "{err}");
    assert!(err.to_string().contains("work budget"), "{err}");
    // With the default budget it ends too, on the steps or the time.
    assert_eq!(evaluate(&expr, &p, &Env::new()).unwrap_err().kind, ErrorKind::Budget);
    // Well below the full run (3,000 × 15,000 items); a loose bound, not a speed target.
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    // The same expression on a small resource is fine.
    assert!(evaluate(&expr, &patient_with_names(3), &Env::new()).unwrap().is_empty());
}

#[test]
fn a_budget_is_shared_by_the_evaluations_of_one_environment() {
    let p = patient_with_names(10);
    let expr = parse("Patient.name.given").unwrap();
    let env = Env::new().with_budget(Budget { max_steps: 100, max_time: std::time::Duration::from_secs(60) });
    // Each evaluation spends about 50 steps (4 nodes, 1 + 10 + 20 + 20 items).
    assert!(evaluate(&expr, &p, &env).is_ok());
    let err = (0..3).try_for_each(|_| evaluate(&expr, &p, &env).map(drop)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Budget);
    // A fresh environment has a fresh default budget.
    assert!(evaluate(&expr, &p, &Env::new()).is_ok());
    // An exhausted deadline stops evaluation too (checked every few thousand steps).
    let late = Env::new().with_budget(Budget { max_steps: u64::MAX, max_time: std::time::Duration::ZERO });
    let many = patient_with_names(3_000);
    let err = evaluate(&parse("Patient.name.given.count()").unwrap(), &many, &late).unwrap_err();
    assert!(err.to_string().contains("time budget"), "{err}");
}

#[test]
fn deep_expressions_are_syntax_errors_not_stack_overflows() {
    let p = patient();
    let eval = |expr: &str| parse(expr).and_then(|e| evaluate(&e, &p, &Env::new()).map(drop));
    let wheres = format!("Patient.name{}{}", ".where(true".repeat(5_000), ")".repeat(5_000));
    assert_eq!(eval(&wheres).unwrap_err().kind, ErrorKind::Syntax);
    // Parentheses around a chain, around a chain...: each level alone is allowed, together
    // they would make a tree thousands deep.
    let nested = (0..60).fold("name".to_owned(), |inner, _| format!("({inner}){}", ".given".repeat(90)));
    assert_eq!(eval(&nested).unwrap_err().kind, ErrorKind::Syntax);
    let args = format!("{}1{}", "iif(true, ".repeat(5_000), ")".repeat(5_000));
    assert_eq!(eval(&args).unwrap_err().kind, ErrorKind::Syntax);
    let index = format!("Patient.name{}", "[0]".repeat(5_000));
    assert_eq!(eval(&index).unwrap_err().kind, ErrorKind::Syntax);
    // Moderate nesting still works.
    assert!(eval(&format!("Patient.name{}{}", ".where(true".repeat(20), ")".repeat(20))).is_ok());
}

#[test]
fn union_and_distinct_keep_first_items_in_order() {
    let p = patient();
    let items = |expr: &str| {
        let e = parse(expr).unwrap();
        evaluate(&e, &p, &Env::new()).unwrap().iter().map(|i| i.to_json().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(items("Patient.name.given | Patient.name.given"), ["\"Peter\"", "\"James\"", "\"Jim\""]);
    assert_eq!(items("('a' | 1 | 'a' | 1.0 | 'b' | 2)"), ["\"a\"", "1", "\"b\"", "2"]);
    assert_eq!(items("('x' | 'y').combine('y' | 'x').distinct()"), ["\"x\"", "\"y\""]);
    assert_eq!(items("Patient.name.union(Patient.name).count()"), ["2"]);
    assert_eq!(items("(1 | 2 | 'a').combine(2 | 'a').isDistinct()"), ["false"]);
}
