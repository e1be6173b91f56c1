//! FHIR XML against the official examples: every example resource of the R4 package
//! (`FHIR_R4_PACKAGE`, or `scripts/fetch-r4-package.sh`) goes JSON → XML → JSON unchanged,
//! properties in the definitions' order. The npm package is JSON only; the XML examples with
//! JSON twins from HL7's fhir-test-cases (checked in as `conformance/tests/data`) are read and
//! compared with their twins, and the fhir-test-cases validator examples (valid and invalid
//! ones; `FHIR_TEST_CASES`, or `shared/` beside the checkout on these machines) are read or
//! refused with a 400, never a panic.

#![expect(clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::path::{Path, PathBuf};

use fhirgate_engine::{json_to_xml, xml_to_json};
use serde_json::Value;

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.file_name().is_some_and(|n| n == "package.json" || n == ".index.json"))
        .collect();
    files.sort();
    files
}

/// JSON text of a value, keys in their order (so a changed order shows).
fn ordered(value: &Value) -> String {
    serde_json::to_string(value).expect("a value serialises")
}

#[test]
fn every_r4_example_round_trips_json_xml_json() {
    let dir = common::package_dir();
    let mut failures = Vec::new();
    let (mut total, mut reordered) = (0, 0);
    for path in json_files(&dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {name}: {e}"));
        let Ok(json) = serde_json::from_slice::<Value>(&text) else { continue };
        if json.get("resourceType").is_none() {
            continue;
        }
        total += 1;
        let back = json_to_xml(&json, total % 2 == 0).and_then(|xml| xml_to_json(&xml));
        match back {
            Ok(back) if back == json => {
                // Read back, properties come in the definitions' order (`url` first in an
                // extension...), which some examples do not follow; a second trip keeps it.
                reordered += usize::from(ordered(&back) != ordered(&json));
                let again = json_to_xml(&back, false).and_then(|xml| xml_to_json(&xml));
                if again.as_ref().map(ordered).ok() != Some(ordered(&back)) {
                    failures.push(format!("{name}: a second round trip changes the order"));
                }
            }
            Ok(_) => failures.push(format!("{name}: changed")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{total} examples round-trip; {reordered} of them were not in the definitions' order");
    assert!(total > 5000, "only {total} examples found in {}", dir.display());
    assert!(failures.is_empty(), "{} of {total} examples do not round-trip:\n{}", failures.len(), failures.join("\n"));
}

/// HL7's fhir-test-cases `r4/` directory, if it is on this machine: `FHIR_TEST_CASES`, or
/// `shared/fhir-test-cases/r4` beside the checkout (or beside the worktrees' folder).
fn test_cases() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FHIR_TEST_CASES") {
        return Some(PathBuf::from(dir));
    }
    let root = common::manifest_dir().join("..");
    [root.join("../shared/fhir-test-cases/r4"), root.join("../../shared/fhir-test-cases/r4")]
        .into_iter()
        .find(|d| d.is_dir())
}

/// Where a twin in fhir-test-cases says more than the other: (XML file, top-level property).
const TWIN_DIFFERENCES: &[(&str, &str)] = &[("observation-example.xml", "extension")]; // a patient-age extension the JSON lacks

/// Drops the narrative's `div` (its XML and JSON forms differ in whitespace as HL7 wrote them)
/// and what the twins are known to disagree on.
fn comparable(mut value: Value, file: &str) -> Value {
    if let Some(object) = value.as_object_mut() {
        if let Some(text) = object.get_mut("text").and_then(Value::as_object_mut) {
            text.remove("div");
        }
        for (_, key) in TWIN_DIFFERENCES.iter().filter(|(f, _)| *f == file) {
            object.remove(*key);
        }
    }
    value
}

#[test]
fn official_xml_examples_read_as_their_json_twins() {
    // The twins are checked in with the runner's own converter tests.
    let twins = common::manifest_dir().join("../conformance/tests/data");
    let mut compared = 0;
    for json_path in json_files(&twins) {
        let xml_path = json_path.with_extension("xml");
        if !xml_path.is_file() {
            continue;
        }
        let xml = std::fs::read(&xml_path).expect("read the XML example");
        let json: Value = serde_json::from_slice(&std::fs::read(&json_path).expect("read")).expect("JSON");
        let read = xml_to_json(&xml).unwrap_or_else(|e| panic!("{}: {e}", xml_path.display()));
        let file = xml_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert_eq!(comparable(read.clone(), &file), comparable(json, &file), "{}", xml_path.display());
        assert!(read["text"]["div"].as_str().is_some_and(|d| d.starts_with("<div")), "the narrative is kept as XHTML");
        compared += 1;
    }
    assert!(compared >= 2, "no XML example with a JSON twin in {}", twins.display());
}

#[test]
fn fhir_test_cases_validator_examples_read_or_400() {
    let Some(dir) = test_cases() else {
        eprintln!("fhir-test-cases not found (set FHIR_TEST_CASES to its r4/ directory): skipped");
        return;
    };

    let (mut read, mut refused) = (0, 0);
    for entry in std::fs::read_dir(dir.join("validator")).expect("validator examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "xml") {
            let xml = std::fs::read(&path).expect("read");
            match xml_to_json(&xml) {
                Ok(json) => {
                    read += 1;
                    let again = json_to_xml(&json, false).and_then(|x| xml_to_json(&x));
                    assert_eq!(again.ok().as_ref(), Some(&json), "{} round-trips once read", path.display());
                }
                Err(e) => {
                    assert_eq!(e.status(), 400, "{}: {e}", path.display());
                    eprintln!("refused {}: {e}", path.display());
                    refused += 1;
                }
            }
        }
    }
    eprintln!("validator examples: {read} read, {refused} refused with a 400");
    assert!(read > 100, "only {read} validator examples read ({refused} refused)");
}
