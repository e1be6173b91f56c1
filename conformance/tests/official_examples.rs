//! The six official R4 TestScript examples (from the R4 package, fetched once by
//! `scripts/fetch-r4-package.sh`, or `FHIR_R4_PACKAGE`) are understood by the runner: run against
//! the in-memory server of `support/`, their fixtures resolve (`Patient/example` is the package's
//! `Patient-example.json`), every operation becomes a request and every assertion is checked:
//! no action ends in `error`. (They do not pass: they ask for XML, which that server does not
//! speak.)

mod support;

use std::path::PathBuf;
use std::process::Command;

use fhirgate_conformance::run::result::Outcome;
use fhirgate_conformance::run::{Options, Runner};
use support::MiniFhir;

fn package_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(dir) = std::env::var_os("FHIR_R4_PACKAGE") {
        return Ok(PathBuf::from(dir));
    }
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let output = Command::new("sh").arg(manifest.join("../scripts/fetch-r4-package.sh")).output()?;
    if !output.status.success() {
        return Err(format!("scripts/fetch-r4-package.sh failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

#[test]
fn official_testscript_examples_run_without_errors() -> Result<(), Box<dyn std::error::Error>> {
    let dir = package_dir()?;
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("TestScript-")))
        .collect();
    scripts.sort();
    assert_eq!(scripts.len(), 6, "{scripts:?}");
    let server = MiniFhir::start()?;
    let mut options = Options::new(&server.base);
    // They require the package's `CapabilityStatement/example` (found as
    // `CapabilityStatement-example.json`), which claims far more than the small server does:
    // checked, they are all skipped.
    // The search example asks the tester for these (`variable.hint`).
    options.variables.insert("PatientSearchFamilyName".into(), "Chalmers".into());
    options.variables.insert("PatientSearchGivenName".into(), "Peter".into());
    let checked = Runner::new(options.clone()).run_paths(&scripts)?;
    assert!(
        checked.iter().all(|r| r.skipped.as_deref().is_some_and(|s| s.contains("does not claim"))),
        "their required statement is found and compared: {:?}",
        checked.iter().map(|r| (&r.skipped, &r.error)).collect::<Vec<_>>()
    );
    options.capability_check = false;
    let results = Runner::new(options).run_paths(&scripts)?;
    let mut operations = 0;
    for result in &results {
        assert_eq!(result.error, None, "{}", result.path.display());
        let actions = result.setup.iter().chain(result.tests.iter().flat_map(|t| &t.actions)).chain(&result.teardown);
        for action in actions {
            assert_ne!(action.outcome, Outcome::Error, "{}: {}: {}", result.name, action.label, action.message);
            operations += usize::from(action.exchange.is_some());
        }
    }
    assert!(operations >= 12, "only {operations} requests were sent");
    // Plus the one `GET /metadata` of the checked run.
    assert_eq!(server.requests().len(), operations + 1, "every request the report shows reached the server");
    Ok(())
}
