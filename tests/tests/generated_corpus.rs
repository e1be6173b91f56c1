//! End-to-end: the generated corpus (`conformance/testscripts/generated`, a TestScript per R4
//! resource type: CRUD, history, conditional create/update and a search per parameter), in
//! JSON (`json/`) and in FHIR XML (`xml/`: XML fixtures sent, XML asked for, the assertions on
//! the XML answers), run by the conformance runner against the real binary with authentication
//! on, on the store under test (`FHIRGATE_E2E_STORE`). The two formats are two tests, so they
//! run side by side. Each prints `N passed, N failed` and how long it took.
//!
//! Every test of every script must pass, except those listed with their reason in
//! `tests/data/generated-known-gaps.txt`; a listed test that passes fails the run too, so the
//! list only shrinks. A skipped script (the server not claiming what it needs) is a failure.
//!
//! The scripts run in groups of [`SCRIPTS_PER_SERVER`], each group on a fresh server: a store's
//! search cost grows with what earlier scripts left (history versions, deleted resources), and
//! on the Cosmos DB emulator, whose queries scan every document, one server for all 146 scripts
//! took several times as long. Every script stores, and cleans up, what it needs itself.

use std::collections::BTreeSet;
use std::time::Instant;

use fhirgate_conformance::report;
use fhirgate_conformance::run::result::Status;
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_e2e::{Server, TestResult};

/// How many scripts one server runs.
const SCRIPTS_PER_SERVER: usize = 15;

/// (script name, test name) of the known gaps.
fn known_gaps() -> TestResult<BTreeSet<(String, String)>> {
    let path = fhirgate_e2e::manifest_dir().join("data/generated-known-gaps.txt");
    let mut gaps = BTreeSet::new();
    for line in std::fs::read_to_string(path)?.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(script), Some(test), Some(reason)) if !reason.trim().is_empty() => {
                gaps.insert((script.to_owned(), test.to_owned()));
            }
            _ => return Err(format!("a known gap needs script, test and reason: `{line}`").into()),
        }
    }
    Ok(gaps)
}

#[test]
fn the_generated_corpus_passes_on_every_resource_type() -> TestResult {
    run_corpus("json")
}

#[test]
fn the_generated_corpus_passes_on_every_resource_type_in_xml() -> TestResult {
    run_corpus("xml")
}

/// Runs `generated/<format>` and checks every test passed (but the known gaps).
fn run_corpus(format: &str) -> TestResult {
    let gaps = known_gaps()?;
    let corpus = fhirgate_e2e::manifest_dir().join("../conformance/testscripts/generated").join(format);
    let scripts = fhirgate_conformance::script::discover(std::slice::from_ref(&corpus))?;
    let started = Instant::now();
    let mut results = Vec::with_capacity(scripts.len());
    for (group, paths) in scripts.chunks(SCRIPTS_PER_SERVER).enumerate() {
        let server = Server::start(&format!("generated-corpus-{format}-{group}"))?;
        let mut options = Options::new(&server.base());
        options.bearer = server.token.clone();
        let group_results = Runner::new(options).run_paths(paths)?;
        report::write_all(&server.data_dir.join("generated-corpus-reports"), &group_results)?;
        results.extend(group_results);
    }
    let elapsed = started.elapsed();

    let mut unexpected = Vec::new();
    let mut still_listed = Vec::new();
    for result in &results {
        if result.status() == Status::Skip || result.error.is_some() {
            unexpected.push(report::summary::line(result));
            continue;
        }
        for test in &result.tests {
            let key = (result.name.clone(), test.name.clone());
            match (test.passed(), gaps.contains(&key)) {
                (true, true) => still_listed.push(format!("{}\t{}", key.0, key.1)),
                (false, false) => {
                    let why = test.actions.iter().find(|a| a.outcome.is_failure()).map(|a| a.message.as_str());
                    unexpected.push(format!("{}\t{}\t{}", key.0, key.1, why.unwrap_or_default()));
                }
                _ => {}
            }
        }
        if result.setup.iter().any(|a| a.outcome.is_failure()) {
            unexpected.push(format!("{}\tsetup\t{}", result.name, report::summary::line(result)));
        }
    }
    println!(
        "generated corpus ({format}) on {}: {} in {:.1} s",
        fhirgate_e2e::backend(),
        report::summary::scripts(&results),
        elapsed.as_secs_f64()
    );
    println!("{}", report::summary::total(&results));
    assert_eq!(results.len(), 146, "a script per R4 resource type");
    assert!(unexpected.is_empty(), "{} failed, not listed as known gaps:\n{}", unexpected.len(), unexpected.join("\n"));
    assert!(still_listed.is_empty(), "listed as known gaps but passing (remove them):\n{}", still_listed.join("\n"));
    Ok(())
}
