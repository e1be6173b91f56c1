//! Runs the official patch test cases (FHIR/fhir-test-cases `r4/patch/`): the JSON Patch cases
//! of `tests/data/json-patch-tests.json` and the FHIRPath Patch cases of
//! `tests/data/fhir-patch-tests.json` (converted from the official XML, see
//! `tests/data/fhir-patch-tests.README.md`). Prints the pass counts and fails below the floors.
//! A case expecting an error passes when the patch fails, whatever its message.
//!
//! Failing cases and why: none.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use fhirgate_engine::Patch;
use serde_json::Value;

/// The pass counts reached; raise them when more cases pass, never lower them.
const JSON_PATCH_FLOOR: usize = 16;
const FHIRPATH_PATCH_FLOOR: usize = 33;

fn load(file: &str) -> Vec<Value> {
    let path = common::manifest_dir().join("tests/data").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Applies `patch` to `input` and compares with the expected output, or expects an error.
fn check(patch: &Patch, input: &Value, expected: Option<&Value>) -> Result<(), String> {
    match (patch.apply(input), expected) {
        (Ok(out), Some(expected)) if out == *expected => Ok(()),
        (Ok(out), Some(expected)) => Err(format!("expected {expected}, got {out}")),
        (Ok(out), None) => Err(format!("expected an error, got {out}")),
        (Err(e), Some(_)) => Err(format!("unexpected error: {e}")),
        (Err(_), None) => Ok(()),
    }
}

fn report(set: &str, results: &[(String, Result<(), String>)], floor: usize) -> usize {
    let passed = results.iter().filter(|(_, r)| r.is_ok()).count();
    for (name, result) in results {
        if let Err(why) = result {
            println!("FAIL {set} `{name}`: {why}");
        }
    }
    println!("{set}: {passed}/{}", results.len());
    assert!(passed >= floor, "{set}: {passed} pass, below the floor of {floor}");
    passed
}

#[test]
fn official_json_patch_cases() {
    let results: Vec<_> = load("json-patch-tests.json")
        .iter()
        .map(|case| {
            let name = case["comment"].as_str().unwrap_or_default().to_owned();
            let patch = Patch::Json(case["patch"].clone());
            (name, check(&patch, &case["doc"], case.get("expected")))
        })
        .collect();
    assert_eq!(results.len(), 16);
    report("JSON Patch", &results, JSON_PATCH_FLOOR);
}

#[test]
fn official_fhirpath_patch_cases() {
    let results: Vec<_> = load("fhir-patch-tests.json")
        .iter()
        .map(|case| {
            let name = case["name"].as_str().unwrap_or_default().to_owned();
            let patch = Patch::FhirPath(case["diff"].clone());
            let input = case["input"].clone();
            let result = check(&patch, &input, case.get("output"));
            // The input is never changed, whether the patch applied or not.
            assert_eq!(input, case["input"], "{name}: input changed");
            (name, result)
        })
        .collect();
    assert_eq!(results.len(), 33);
    report("FHIRPath Patch", &results, FHIRPATH_PATCH_FLOOR);
}

/// Every official FHIRPath Patch applied to every official input: whatever the outcome, no
/// panic, and an error is a 400 or a 422.
#[test]
fn fhirpath_patches_on_foreign_inputs_fail_cleanly() {
    let cases = load("fhir-patch-tests.json");
    for case in &cases {
        let patch = Patch::FhirPath(case["diff"].clone());
        for other in &cases {
            if let Err(e) = patch.apply(&other["input"]) {
                assert!(matches!(e.status(), 400 | 422), "{} on {}: {e}", case["name"], other["name"]);
            }
        }
    }
}
