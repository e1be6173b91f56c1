//! The official SQL on FHIR v2 test suite (`tests/data/sql-on-fhir-v2`, MIT, see its
//! `SOURCE.txt`): every case of every file, run through [`View::parse`] and [`View::rows`].
//! Prints `N passed, N failed` and every failure; fails unless all pass.
//!
//! A case passes when the view is refused or fails on some resource and `expectError` is set;
//! or when the rows equal `expect` as a multiset of rows (the suite's order across resources
//! and `unionAll` branches is not normative), numbers compared by value; or when the column
//! names equal `expectColumns`.

use std::path::PathBuf;

use fhirgate_engine::fhirpath::Budget;
use fhirgate_engine::views::View;
use serde_json::{Map, Value};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sql-on-fhir-v2/tests")
}

/// A view's column names and its rows as JSON objects.
type Table = (Vec<String>, Vec<Map<String, Value>>);

/// The rows of `view` over `resources`, or the first error.
fn run(view: &Value, resources: &[Value]) -> Result<Table, String> {
    let view = View::parse(view).map_err(|e| e.to_string())?;
    let names: Vec<String> = view.columns().iter().map(|c| c.name.clone()).collect();
    let mut rows = Vec::new();
    for resource in resources {
        for row in view.rows(resource, Budget::default()).map_err(|e| e.to_string())? {
            rows.push(names.iter().cloned().zip(row).collect());
        }
    }
    Ok((names, rows))
}

/// Equal as JSON, numbers by value (`5` and `5.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => x.to_string() == y.to_string(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `actual` and `expected` hold the same rows, each as often.
fn same_rows(actual: &[Map<String, Value>], expected: &[Value]) -> bool {
    if actual.len() != expected.len() {
        return false;
    }
    let mut left: Vec<Value> = actual.iter().cloned().map(Value::Object).collect();
    for row in expected {
        match left.iter().position(|a| same(a, row)) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

fn check(case: &Value, resources: &[Value]) -> Result<(), String> {
    let view = case.get("view").ok_or("no view")?;
    let outcome = run(view, resources);
    if case.get("expectError").and_then(Value::as_bool) == Some(true) {
        return match outcome {
            Err(_) => Ok(()),
            Ok((_, rows)) => Err(format!("expected an error, got {} rows", rows.len())),
        };
    }
    let (names, rows) = outcome?;
    if let Some(columns) = case.get("expectColumns").and_then(Value::as_array) {
        let expected: Vec<&str> = columns.iter().filter_map(Value::as_str).collect();
        if names != expected {
            return Err(format!("columns {names:?}, expected {expected:?}"));
        }
    }
    if let Some(expected) = case.get("expect").and_then(Value::as_array) {
        if !same_rows(&rows, expected) {
            return Err(format!("rows {}, expected {}", Value::from(rows.clone()), Value::from(expected.clone())));
        }
    }
    Ok(())
}

#[test]
fn the_official_sql_on_fhir_v2_suite_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    assert!(files.len() >= 20, "the suite is missing: {} files in {}", files.len(), suite_dir().display());
    let (mut passed, mut failed) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let suite: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let resources = suite.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        for case in suite.get("tests").and_then(Value::as_array).into_iter().flatten() {
            let title = case.get("title").and_then(Value::as_str).unwrap_or("?");
            match check(case, &resources) {
                Ok(()) => passed += 1,
                Err(why) => failed.push(format!("{name} / {title}: {why}")),
            }
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    println!("sql-on-fhir-v2: {passed} passed, {} failed", failed.len());
    assert!(passed >= 130, "only {passed} cases ran");
    assert!(failed.is_empty(), "{} of {} cases failed (listed above)", failed.len(), passed + failed.len());
}
