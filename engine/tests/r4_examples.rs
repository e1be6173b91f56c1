//! Validates every example resource of the official R4 package (`hl7.fhir.r4.examples@4.0.1`).
//!
//! The package directory comes from `FHIR_R4_PACKAGE` (the extracted `package/` directory), or
//! else from `scripts/fetch-r4-package.sh`, which downloads and extracts it once into the user's
//! cache. Each rejected example must be listed, with the real defect of the example, in
//! `tests/data/r4-examples-known-invalid.txt`; a listed example that is accepted fails the test
//! too, so the list can only shrink.

#![expect(clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::validate;
use serde_json::Value;

const KNOWN_INVALID: &str = include_str!("data/r4-examples-known-invalid.txt");

/// `filename → reason` from the known-invalid list (`#` comments and blank lines ignored).
fn known_invalid() -> BTreeMap<&'static str, &'static str> {
    KNOWN_INVALID
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, reason) = l.split_once('\t').expect("known-invalid lines are `file<TAB>reason`");
            assert!(!reason.trim().is_empty(), "{file}: the reason must name the defect");
            (file, reason)
        })
        .collect()
}

#[test]
fn every_r4_example_is_valid_or_known_invalid() {
    let dir = common::package_dir();
    let defs = Definitions::r4();
    let known = known_invalid();

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();

    let mut total = 0;
    let mut validating = std::time::Duration::ZERO;
    let mut bytes = 0;
    let mut mutants_checked = 0;
    let mut failures = Vec::new();
    let mut rejected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "package.json" || name == ".index.json" {
            continue;
        }
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {name}: {e}"));
        let resource: Value = match serde_json::from_slice(&text) {
            Ok(v) => v,
            Err(e) => {
                total += 1;
                rejected.insert(name, vec![format!("not JSON: {e}")]);
                continue;
            }
        };
        if resource.get("resourceType").is_none() {
            continue;
        }
        total += 1;
        let started = std::time::Instant::now();
        let issues = validate(defs, &resource);
        validating += started.elapsed();
        bytes += text.len();
        if issues.is_empty() && text.len() < 256 * 1024 {
            mutants_checked += check_mutants(defs, &name, &resource, &mut failures);
        }
        // A SearchParameter a write would refuse to put in force is refused like an invalid one.
        let refusal = fhirgate_engine::search::custom::refusal(&resource);
        if !issues.is_empty() || refusal.is_some() {
            let shown = issues
                .iter()
                .map(|i| format!("{}: {}", i.expression.as_deref().unwrap_or(""), i.diagnostics))
                .chain(refusal)
                .collect();
            rejected.insert(name, shown);
        }
    }
    println!(
        "accepted {} of {total} R4 examples ({} known invalid); {mutants_checked} mutants rejected as expected",
        total - rejected.len(),
        known.len()
    );
    println!(
        "validation alone: {:.0} ms for {:.0} MB of JSON ({:.0} MB/s)",
        validating.as_secs_f64() * 1000.0,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / validating.as_secs_f64()
    );

    for (name, issues) in &rejected {
        if !known.contains_key(name.as_str()) {
            let more = if issues.len() > 5 { format!("\n    ... {} more", issues.len() - 5) } else { String::new() };
            failures.push(format!("rejected {name}:\n    {}{more}", issues[..issues.len().min(5)].join("\n    ")));
        }
    }
    for name in known.keys() {
        if !rejected.contains_key(*name) {
            failures.push(format!("listed as known invalid but accepted (remove it from the list): {name}"));
        }
    }
    assert!(total > 5000, "only {total} examples found in {}", dir.display());
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

/// Guards against a validator that accepts everything: in a valid example, an unknown property
/// added to the last object, and the last string emptied, must each be reported. Returns how
/// many mutants were checked.
fn check_mutants(defs: &Definitions, name: &str, resource: &Value, failures: &mut Vec<String>) -> usize {
    let mut checked = 0;

    let mut with_unknown = resource.clone();
    if let Some(Value::Object(object)) = last(&mut with_unknown, &|v| v.is_object()) {
        object.insert("zzUnknown".to_owned(), Value::Bool(true));
        let issues = validate(defs, &with_unknown);
        if !issues.iter().any(|i| i.diagnostics == "unknown element `zzUnknown`") {
            failures.push(format!("{name}: an unknown element in the last object was not reported"));
        }
        checked += 1;
    }

    let mut with_empty = resource.clone();
    if let Some(string) = last(&mut with_empty, &|v| v.is_string()) {
        let was = std::mem::take(string);
        *string = Value::String(String::new());
        if validate(defs, &with_empty).is_empty() {
            failures.push(format!("{name}: emptying the last string ({was}) was not reported"));
        }
        checked += 1;
    }
    checked
}

/// The last value in document order (depth first, children before parents) matching `pred`.
fn last<'a>(value: &'a mut Value, pred: &dyn Fn(&Value) -> bool) -> Option<&'a mut Value> {
    let has_match_below = match &*value {
        Value::Object(o) => o.values().any(|v| contains(v, pred)),
        Value::Array(a) => a.iter().any(|v| contains(v, pred)),
        _ => false,
    };
    if has_match_below {
        let child = match value {
            Value::Object(o) => o.values_mut().rev().find(|v| contains(v, pred)),
            Value::Array(a) => a.iter_mut().rev().find(|v| contains(v, pred)),
            _ => None,
        };
        return child.and_then(|c| last(c, pred));
    }
    pred(value).then_some(value)
}

fn contains(value: &Value, pred: &dyn Fn(&Value) -> bool) -> bool {
    pred(value)
        || match value {
            Value::Object(o) => o.values().any(|v| contains(v, pred)),
            Value::Array(a) => a.iter().any(|v| contains(v, pred)),
            _ => false,
        }
}
