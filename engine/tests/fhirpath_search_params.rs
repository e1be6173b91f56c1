//! Every R4 search parameter expression must parse, and evaluate without error on the R4
//! example resources of its type (from the official package, see `scripts/fetch-r4-package.sh`
//! or `FHIR_R4_PACKAGE`): search index extraction depends on it.

#![expect(clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::fhirpath::{Env, Expr, evaluate, parse};
use serde_json::Value;

/// `(resource type, code, expression)` of every search parameter and composite component.
fn expressions() -> Vec<(String, String, String)> {
    let defs = Definitions::r4();
    let mut out = Vec::new();
    for resource_type in defs.resource_types() {
        for param in defs.search_params(resource_type) {
            if let Some(expression) = param.expression_for(resource_type) {
                out.push((resource_type.to_owned(), param.code.clone(), expression));
            }
            for component in &param.component {
                out.push((resource_type.to_owned(), format!("{}#component", param.code), component.expression.clone()));
            }
        }
    }
    out
}

#[test]
fn every_search_parameter_expression_parses() {
    let all = expressions();
    let failures: Vec<String> =
        all.iter().filter_map(|(t, code, e)| parse(e).err().map(|err| format!("{t}.{code}: `{e}`: {err}"))).collect();
    println!("search parameter expressions: {} of {} parse", all.len() - failures.len(), all.len());
    assert!(failures.is_empty(), "unparsable expressions:\n{}", failures.join("\n"));
}

#[test]
fn search_parameter_expressions_evaluate_on_r4_examples() {
    let dir = common::package_dir();
    let mut by_type: BTreeMap<String, Vec<(String, Expr)>> = BTreeMap::new();
    for (resource_type, code, expression) in expressions() {
        if code.ends_with("#component") {
            continue;
        }
        let expr = parse(&expression).expect("parses (checked by the other test)");
        by_type.entry(resource_type).or_default().push((code, expr));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the package directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut resources, mut evaluations, mut nonempty) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let Ok(resource) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else { continue };
        let Some(params) = by_type.get(resource_type) else { continue };
        resources += 1;
        for (code, expr) in params {
            evaluations += 1;
            match evaluate(expr, &resource, &Env::new()) {
                Ok(items) => nonempty += usize::from(!items.is_empty()),
                Err(err) => failures.push(format!("{}: {code}: {err}", file.display())),
            }
        }
    }
    println!(
        "search parameter evaluations on {resources} R4 examples: {} of {evaluations} without error ({nonempty} non-empty)",
        evaluations - failures.len()
    );
    assert!(failures.is_empty(), "{} evaluations failed:\n{}", failures.len(), failures.join("\n"));
}

/// Spot checks that extraction finds what the examples hold (not only that it runs).
#[test]
fn search_parameters_extract_known_values() {
    let dir = common::package_dir();
    let cases: [(&str, &str, &str, &[&str]); 7] = [
        ("Patient-example.json", "Patient", "birthdate", &["\"1974-12-25\""]),
        ("Patient-example.json", "Patient", "family", &["\"Chalmers\"", "\"Windsor\""]),
        ("Patient-example.json", "Patient", "organization", &["{\"reference\":\"Organization/1\"}"]),
        ("Observation-example.json", "Observation", "patient", &["{\"reference\":\"Patient/example\"}"]),
        (
            "Observation-example.json",
            "Observation",
            "value-quantity",
            &["{\"value\":185,\"unit\":\"lbs\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"[lb_av]\"}"],
        ),
        ("Observation-example.json", "Observation", "date", &["\"2016-03-28\""]),
        (
            "Observation-example.json",
            "Observation",
            "code",
            &[
                "{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\",\"display\":\"Body Weight\"},{\"system\":\"http://loinc.org\",\"code\":\"3141-9\",\"display\":\"Body weight Measured\"},{\"system\":\"http://snomed.info/sct\",\"code\":\"27113001\",\"display\":\"Body weight\"},{\"system\":\"http://acme.org/devices/clinical-codes\",\"code\":\"body-weight\",\"display\":\"Body Weight\"}]}",
            ],
        ),
    ];
    for (file, resource_type, code, expected) in cases {
        let text = std::fs::read_to_string(dir.join(file)).expect("example exists");
        let resource: Value = serde_json::from_str(&text).expect("example is JSON");
        let param = Definitions::r4().search_param(resource_type, code).expect("parameter exists");
        let expression = param.expression_for(resource_type).expect("has an expression");
        let items = evaluate(&parse(&expression).expect("parses"), &resource, &Env::new()).expect("evaluates");
        let found: Vec<String> = items.iter().filter_map(|i| i.to_json().map(|j| j.to_string())).collect();
        assert_eq!(found, expected, "{resource_type}.{code}: `{expression}`");
    }
}
