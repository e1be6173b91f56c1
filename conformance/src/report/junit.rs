//! One JUnit XML file for a run, as CI systems read it: a `<testsuite>` per script, a
//! `<testcase>` per test (plus one for setup when it did not pass, and one when the script could
//! not be loaded), failures and skips with their messages.

use std::fmt::Write as _;

use super::escape;
use crate::run::result::{ActionResult, Outcome, ScriptResult};

/// The JUnit XML of a run.
pub fn junit(results: &[ScriptResult]) -> String {
    let mut suites = String::new();
    let (mut all_tests, mut all_failures, mut all_errors, mut all_skipped) = (0, 0, 0, 0);
    for result in results {
        let mut cases = Vec::new();
        if let Some(reason) = &result.skipped {
            cases.push(Case { name: "script".into(), millis: 0, failure: Some((Outcome::Skip, reason.clone())) });
        }
        if let Some(error) = &result.error {
            cases.push(Case { name: "load".into(), millis: 0, failure: Some((Outcome::Error, error.clone())) });
        }
        if let Some(failed) = result.setup.iter().find(|a| a.outcome.is_failure()) {
            cases.push(Case { name: "setup".into(), millis: 0, failure: Some((failed.outcome, describe(failed))) });
        }
        for test in &result.tests {
            let millis = test.actions.iter().filter_map(|a| a.exchange.as_ref()).map(|e| e.millis).sum();
            let failed = test.actions.iter().find(|a| a.outcome.is_failure()).map(|a| (a.outcome, describe(a)));
            let all_skipped = test.actions.iter().all(|a| a.outcome == Outcome::Skip);
            let skipped = test.actions.first().filter(|_| all_skipped).map(|a| (Outcome::Skip, a.message.clone()));
            let failure = failed.or(skipped);
            cases.push(Case { name: test.name.clone(), millis, failure });
        }
        let count = |o: Outcome| cases.iter().filter(|c| c.failure.as_ref().is_some_and(|(f, _)| *f == o)).count();
        let (failures, errors, skipped) = (count(Outcome::Fail), count(Outcome::Error), count(Outcome::Skip));
        all_tests += cases.len();
        all_failures += failures;
        all_errors += errors;
        all_skipped += skipped;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\" file=\"{}\">",
            escape(&result.name),
            cases.len(),
            seconds(result.millis),
            escape(&result.path.display().to_string()),
        );
        for case in cases {
            let _ = write!(
                suites,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                escape(&result.name),
                escape(&case.name),
                seconds(case.millis)
            );
            match case.failure {
                None => suites.push_str("/>\n"),
                Some((outcome, message)) => {
                    let tag = match outcome {
                        Outcome::Error => "error",
                        Outcome::Skip => "skipped",
                        _ => "failure",
                    };
                    let _ = writeln!(suites, ">\n      <{tag} message=\"{}\"/>\n    </testcase>", escape(&message));
                }
            }
        }
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fhirgate-conformance\" tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"{all_errors}\" skipped=\"{all_skipped}\">\n{suites}</testsuites>\n"
    )
}

struct Case {
    name: String,
    millis: u128,
    failure: Option<(Outcome, String)>,
}

fn describe(action: &ActionResult) -> String {
    format!("{}: {}", action.label, action.message)
}

fn seconds(millis: u128) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}
