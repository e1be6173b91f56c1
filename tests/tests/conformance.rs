//! End-to-end: our TestScript corpus (`conformance/testscripts/`), run by the conformance runner
//! against the real binary on the store under test (`FHIRGATE_E2E_STORE`). Every script must
//! pass; the TestReports, JUnit XML and HTML report are left in the server's data directory.

use fhirgate_conformance::report;
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_e2e::{Server, TestResult};

#[test]
fn testscript_corpus_passes() -> TestResult {
    let server = Server::start("conformance")?;
    let corpus = fhirgate_e2e::manifest_dir().join("../conformance/testscripts");
    let mut options = Options::new(&server.base());
    options.bearer = server.token.clone();
    let results = Runner::new(options).run_paths(&[corpus])?;
    let reports = server.data_dir.join("conformance-reports");
    report::write_all(&reports, &results)?;
    for result in &results {
        println!("{}", report::summary::line(result));
    }
    assert!(results.len() >= 6, "the whole corpus ran: {} scripts", results.len());
    let failed: Vec<String> = results.iter().filter(|r| !r.passed()).map(report::summary::line).collect();
    assert!(failed.is_empty(), "failing scripts (reports in {}):\n{}", reports.display(), failed.join("\n"));
    Ok(())
}
