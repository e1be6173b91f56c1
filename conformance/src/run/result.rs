//! What a run produced: one result per action, grouped as the TestScript groups them (setup,
//! tests, teardown). Reports are written from these values only.

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::http::{Request, Response};

/// The result of one action, with the codes of `TestReport.setup.action.assert.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip,
    Fail,
    Warning,
    Error,
}

impl Outcome {
    /// The R4 `report-action-result-codes` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Skip => "skip",
            Self::Fail => "fail",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    /// Whether the action makes its script fail.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Fail | Self::Error)
    }
}

/// Whether an action was an operation or an assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Operation,
    Assert,
}

/// An HTTP request and what came back (nothing when the exchange failed).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub response: Option<Response>,
    pub millis: u128,
}

/// The result of one action.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub kind: ActionKind,
    /// The action's description, or a generated summary of it.
    pub label: String,
    pub outcome: Outcome,
    /// Why it passed or failed, in a sentence.
    pub message: String,
    /// For operations: the HTTP exchange.
    pub exchange: Option<Exchange>,
}

impl ActionResult {
    /// A result without an exchange.
    pub fn new(kind: ActionKind, label: impl Into<String>, outcome: Outcome, message: impl Into<String>) -> Self {
        Self { kind, label: label.into(), outcome, message: message.into(), exchange: None }
    }
}

/// The results of one `TestScript.test`.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub description: String,
    pub actions: Vec<ActionResult>,
}

impl TestResult {
    /// Whether no action failed.
    pub fn passed(&self) -> bool {
        !self.actions.iter().any(|a| a.outcome.is_failure())
    }
}

/// How many actions ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pass: usize,
    pub skip: usize,
    pub fail: usize,
    pub warning: usize,
    pub error: usize,
}

/// How a script ended as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// Not run: see [`ScriptResult::skipped`].
    Skip,
}

impl Status {
    /// `PASS`, `FAIL` or `SKIP`, as the summary lines start.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// The results of one script.
#[derive(Debug, Clone)]
pub struct ScriptResult {
    pub path: PathBuf,
    pub id: Option<String>,
    pub name: String,
    pub url: Option<String>,
    pub base_url: String,
    pub started: OffsetDateTime,
    pub millis: u128,
    /// Why the script could not run at all (unreadable, a fixture missing).
    pub error: Option<String>,
    /// Why the script was not run although it could have been: the server does not claim a
    /// capability it requires, or a variable only the tester can give has no value.
    pub skipped: Option<String>,
    pub setup: Vec<ActionResult>,
    pub tests: Vec<TestResult>,
    pub teardown: Vec<ActionResult>,
}

impl ScriptResult {
    /// The result of a script that could not be loaded.
    pub fn not_run(path: &std::path::Path, base_url: &str, error: String) -> Self {
        Self {
            path: path.to_owned(),
            id: None,
            name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            url: None,
            base_url: base_url.to_owned(),
            started: OffsetDateTime::now_utc(),
            millis: 0,
            error: Some(error),
            skipped: None,
            setup: Vec::new(),
            tests: Vec::new(),
            teardown: Vec::new(),
        }
    }

    /// The result of a script that was skipped for `reason`.
    pub fn skipped(path: &std::path::Path, base_url: &str, reason: String) -> Self {
        Self { error: None, skipped: Some(reason), ..Self::not_run(path, base_url, String::new()) }
    }

    /// How the script ended as a whole.
    pub fn status(&self) -> Status {
        if self.skipped.is_some() {
            Status::Skip
        } else if self.passed() {
            Status::Pass
        } else {
            Status::Fail
        }
    }

    /// Whether the script did not fail: it ran, or was skipped, and no setup or test action
    /// failed. Teardown does not count: it cleans up after results that are already known.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && !self.setup.iter().chain(self.tests.iter().flat_map(|t| &t.actions)).any(|a| a.outcome.is_failure())
    }

    /// The outcomes of setup and test actions, assertions only for tests.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        let asserts = self.tests.iter().flat_map(|t| &t.actions).filter(|a| a.kind == ActionKind::Assert);
        for action in self.setup.iter().filter(|a| a.outcome != Outcome::Pass).chain(asserts) {
            match action.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Skip => counts.skip += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Warning => counts.warning += 1,
                Outcome::Error => counts.error += 1,
            }
        }
        if self.error.is_some() {
            counts.error += 1;
        }
        counts
    }

    /// The share of passed assertions, 0 to 1 (the TestReport's `score`).
    pub fn score(&self) -> f64 {
        let c = self.counts();
        let total = c.pass + c.fail + c.warning + c.error + c.skip;
        if total == 0 {
            return if self.passed() { 1.0 } else { 0.0 };
        }
        #[expect(clippy::cast_precision_loss, reason = "counts of assertions are small")]
        let score = c.pass as f64 / total as f64;
        score
    }
}
