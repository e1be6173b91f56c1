//! One line per script for the terminal, and the closing total.

use crate::run::result::ScriptResult;

/// `PASS  path  name  — 12 passed, 0 failed, 0 warnings, 0 skipped, 0 errors (35 ms)`.
pub fn line(result: &ScriptResult) -> String {
    let c = result.counts();
    let status = if result.passed() { "PASS" } else { "FAIL" };
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

/// `3 scripts: 2 passed, 1 failed`.
pub fn total(results: &[ScriptResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{} scripts: {passed} passed, {} failed", results.len(), results.len() - passed)
}
