//! One line per script for the terminal, the count of scripts, and the closing total per
//! assertion: `N passed, N failed`.

use crate::run::result::{ScriptResult, Status};

/// `PASS  path  name  — 12 passed, 0 failed, 0 warnings, 0 skipped, 0 errors (35 ms)`, or
/// `SKIP  path  name  — why`.
pub fn line(result: &ScriptResult) -> String {
    let status = result.status().label();
    if let Some(reason) = &result.skipped {
        return format!("{status}  {}  {}  — {reason}", result.path.display(), result.name);
    }
    let c = result.counts();
    let mut line = format!(
        "{status}  {}  {}  {} passed, {} failed, {} warnings, {} skipped, {} errors ({} ms)",
        result.path.display(),
        result.name,
        c.pass,
        c.fail,
        c.warning,
        c.skip,
        c.error,
        result.millis
    );
    if let Some(error) = &result.error {
        line.push_str(&format!(" — {error}"));
    }
    line
}

/// `3 scripts: 1 passed, 1 failed, 1 skipped`.
pub fn scripts(results: &[ScriptResult]) -> String {
    let count = |status: Status| results.iter().filter(|r| r.status() == status).count();
    format!(
        "{} scripts: {} passed, {} failed, {} skipped",
        results.len(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    )
}

/// The closing line, per assertion: `N passed, N failed`. Failed counts failed assertions and
/// errors (an operation that could not be done, a script that could not be loaded); warnings
/// and skipped assertions are in neither.
pub fn total(results: &[ScriptResult]) -> String {
    let (passed, failed) =
        results.iter().map(ScriptResult::counts).fold((0, 0), |(p, f), c| (p + c.pass, f + c.fail + c.error));
    format!("{passed} passed, {failed} failed")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::run::result::{ActionKind, ActionResult, Outcome, ScriptResult, TestResult};

    fn with_asserts(outcomes: &[Outcome]) -> ScriptResult {
        let mut result = ScriptResult::skipped(Path::new("a.json"), "http://server", String::new());
        result.skipped = None;
        let actions = outcomes.iter().map(|o| ActionResult::new(ActionKind::Assert, "check", *o, "")).collect();
        result.tests = vec![TestResult { name: "t".into(), description: String::new(), actions }];
        result
    }

    #[test]
    fn the_total_counts_assertions() {
        let results = [
            with_asserts(&[Outcome::Pass, Outcome::Pass, Outcome::Fail, Outcome::Skip]),
            with_asserts(&[Outcome::Pass, Outcome::Error, Outcome::Warning]),
            ScriptResult::skipped(Path::new("b.json"), "http://server", "no `transaction`".into()),
            ScriptResult::not_run(Path::new("c.json"), "http://server", "invalid JSON".into()),
        ];
        assert_eq!(super::total(&results), "3 passed, 3 failed");
        assert_eq!(super::scripts(&results), "4 scripts: 0 passed, 3 failed, 1 skipped");
        assert_eq!(super::line(&results[2]), "SKIP  b.json  b  — no `transaction`");
        assert!(super::line(&results[0]).starts_with("FAIL  a.json  a  2 passed, 1 failed"));
    }
}
