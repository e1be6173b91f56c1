//! End-to-end: the six official R4 TestScript examples (`TestScript-*.json` of the R4 package),
//! run by the conformance runner against the real binary with authentication on, on the store
//! under test, with the documented `--var` values (`conformance/README.md`):
//! `PatientSearchFamilyName=Chalmers`, `PatientSearchGivenName=Peter`, and the package's
//! `Patient/example` stored first (the read and multi-system examples read it). Their required
//! `CapabilityStatement/example` resolves from the package and is checked against fhirgate's.
//!
//! None may error before sending a request or be skipped. The two that speak JSON must pass;
//! the four that ask for FHIR XML must pass once the server claims XML in its
//! CapabilityStatement (`format`); until then their failures are printed.
//!
//! One assertion of the examples contradicts R4 and is listed in [`EXAMPLE_DEFECTS`] with why.

use fhirgate_conformance::report;
use fhirgate_conformance::run::result::{Outcome, Status};
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_e2e::{Server, TestResult};
use serde_json::Value;

/// Assertions of the official examples that contradict the R4 specification: (script name,
/// assertion description, what fhirgate answers instead and why that is right). Such an
/// assertion may fail; nothing else may.
const EXAMPLE_DEFECTS: [(&str, &str, &str); 1] = [(
    "TestScript Example Read Test",
    "Confirm that the returned HTTP status is 400(Bad Request).",
    "R004 reads `Patient/ID-may-not-contain-CAPITALS` expecting 400, but R4 ids are \
     `[A-Za-z0-9\\-\\.]{1,64}`: capitals are valid, so the read is a 404 (no such patient)",
)];

#[test]
fn the_official_testscript_examples_run_and_pass() -> TestResult {
    let package = fhirgate_e2e::r4_package()?;
    let mut scripts: Vec<_> = std::fs::read_dir(&package)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("TestScript-")))
        .collect();
    scripts.sort();
    assert_eq!(scripts.len(), 6, "{scripts:?}");

    let server = Server::start("official-testscripts")?;
    let example: Value = serde_json::from_str(&std::fs::read_to_string(package.join("Patient-example.json"))?)?;
    let stored = server.put("Patient/example", &example)?;
    assert!(matches!(stored.status, 200 | 201), "{}", stored.body);
    let formats = server.get("metadata")?.json()?["format"].clone();
    let speaks_xml = formats.as_array().into_iter().flatten().any(|f| f.as_str().is_some_and(|f| f.contains("xml")));

    let mut options = Options::new(&server.base());
    options.bearer = server.token.clone();
    options.capability_dirs = vec![package.clone()];
    options.variables.insert("PatientSearchFamilyName".into(), "Chalmers".into());
    options.variables.insert("PatientSearchGivenName".into(), "Peter".into());
    let results = Runner::new(options).run_paths(&scripts)?;
    report::write_all(&server.data_dir.join("official-testscript-reports"), &results)?;

    let mut problems = Vec::new();
    for (result, path) in results.iter().zip(&scripts) {
        println!("{}", report::summary::line(result));
        let script = std::fs::read_to_string(path)?;
        let asks_for_xml = script.contains("\"accept\": \"xml\"") || script.contains("\"contentType\": \"xml\"");
        let actions: Vec<_> =
            result.setup.iter().chain(result.tests.iter().flat_map(|t| &t.actions)).chain(&result.teardown).collect();
        let sent = actions.iter().filter(|a| a.exchange.is_some()).count();
        // Runs: loaded, not skipped, every operation became a request.
        if result.error.is_some() || result.skipped.is_some() || sent == 0 {
            problems.push(format!("{}: did not run: {:?} {:?}", result.name, result.error, result.skipped));
            continue;
        }
        for action in actions.iter().filter(|a| a.outcome == Outcome::Error) {
            problems.push(format!("{}: {} errored: {}", result.name, action.label, action.message));
        }
        if result.status() == Status::Pass {
            continue;
        }
        let failures: Vec<String> = actions
            .iter()
            .filter(|a| a.outcome.is_failure())
            .filter(|a| !EXAMPLE_DEFECTS.iter().any(|(script, label, _)| *script == result.name && *label == a.label))
            .map(|a| format!("{}: {}", a.label, a.message))
            .collect();
        if failures.is_empty() {
            continue;
        }
        if asks_for_xml && !speaks_xml {
            println!("waiting for FHIR XML: {}: {}", result.name, failures.join("; "));
        } else {
            problems.push(format!("{}: failed: {}", result.name, failures.join("; ")));
        }
    }
    println!("{}", report::summary::scripts(&results));
    println!("{}", report::summary::total(&results));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
