//! Running one TestScript, as R4 defines it (<https://hl7.org/fhir/R4/testscript.html>):
//! fixtures are loaded and the `autocreate` ones created; setup runs once, and when it fails
//! every test is skipped; each test runs its actions in order and ends at its first failed
//! assertion or failed operation; teardown and `autodelete` always run.
//!
//! Operations are built in `operation.rs`, assertions checked in `assert.rs` with the operators
//! of `operator.rs`, variables resolved in `variables.rs`.

mod assert;
mod canonical;
mod capability;
mod content;
mod elements;
mod fixture;
mod honour;
mod operation;
mod operator;
pub mod result;
mod variables;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::http::Client;
use crate::script::Script;
use fixture::Fixture;
pub use honour::ClaimOutcome;
use result::{ActionKind, ActionResult, Exchange, Outcome, ScriptResult, TestResult};

/// What every script of a run shares.
#[derive(Debug, Clone)]
pub struct Options {
    /// The FHIR base URL, without a trailing slash.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` with every request.
    pub bearer: Option<String>,
    /// Values that override the scripts' variables of the same name (`--var NAME=VALUE`).
    pub variables: BTreeMap<String, String>,
    /// How long one HTTP exchange may take.
    pub timeout: Duration,
    /// Whether scripts requiring capabilities the server does not claim are skipped (the
    /// default) rather than run (`--no-capability-check`); see [`capability`].
    pub capability_check: bool,
    /// Directories whose CapabilityStatements scripts may name by canonical URL (the loaded
    /// FHIR packages, `--capabilities DIR`); see [`canonical`].
    pub capability_dirs: Vec<std::path::PathBuf>,
    /// Capability-driven (`--from-capabilities`): scripts needing what the server does not claim
    /// are left out of the results instead of reported as skipped; [`Runner::honour`] then says
    /// which claims the run exercised and whether they held.
    pub from_capabilities: bool,
}

impl Options {
    /// Options for a server at `base_url`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer: None,
            variables: BTreeMap::new(),
            timeout: Duration::from_secs(60),
            capability_check: true,
            capability_dirs: Vec::new(),
            from_capabilities: false,
        }
    }
}

/// Where a run is, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Script `index` (from 0) of `total` is about to run.
    Started { index: usize, total: usize, path: &'a std::path::Path },
    /// Script `index` of `total` has its result.
    Finished { index: usize, total: usize, result: &'a ScriptResult },
}

/// Runs scripts against one server.
#[derive(Debug, Clone)]
pub struct Runner {
    options: Options,
    client: Client,
    /// The server's claims, read when the first script requires capabilities.
    claims: OnceLock<Result<capability::Claims, String>>,
    /// The CapabilityStatements of `Options::capability_dirs`, read when first needed.
    library: OnceLock<canonical::Library>,
}

impl Runner {
    pub fn new(options: Options) -> Self {
        let client = Client::new(options.timeout);
        Self { options, client, claims: OnceLock::new(), library: OnceLock::new() }
    }

    /// Runs every TestScript found under `paths` (see [`crate::script::discover`]), in order. A
    /// script that cannot be loaded is a failed result, not an error; only unreadable paths are.
    pub fn run_paths(&self, paths: &[std::path::PathBuf]) -> crate::Result<Vec<ScriptResult>> {
        self.run_paths_with(paths, &mut |_| {})
    }

    /// [`Runner::run_paths`], telling `progress` when each script starts and ends.
    pub fn run_paths_with(
        &self,
        paths: &[std::path::PathBuf],
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> crate::Result<Vec<ScriptResult>> {
        let files = crate::script::discover(paths)?;
        let total = files.len();
        let mut results = Vec::with_capacity(total);
        for (index, path) in files.iter().enumerate() {
            progress(Progress::Started { index, total, path });
            let (result, not_claimed) = match Script::load(path) {
                Ok(script) => self.run_checked(&script),
                Err(e) => (ScriptResult::not_run(path, &self.options.base_url, e.to_string()), false),
            };
            progress(Progress::Finished { index, total, result: &result });
            if !(not_claimed && self.options.from_capabilities) {
                results.push(result);
            }
        }
        Ok(results)
    }

    /// Runs one script; never fails as a whole: problems are in the result.
    pub fn run(&self, script: &Script) -> ScriptResult {
        self.run_checked(script).0
    }

    /// The claims of the server's CapabilityStatement that the tests of `results` exercised,
    /// and whether each held (see [`honour`]); an error when `/metadata` cannot be read.
    pub fn honour(&self, results: &[ScriptResult]) -> Result<Vec<ClaimOutcome>, String> {
        let claims = self.claims.get_or_init(|| capability::server_claims(&self.client, &self.options)).as_ref()?;
        Ok(honour::outcomes(claims, &self.options.base_url, results))
    }

    /// [`Runner::run`], and whether it was skipped because the server does not claim what it
    /// needs.
    fn run_checked(&self, script: &Script) -> (ScriptResult, bool) {
        let started_at = Instant::now();
        let resource = &script.resource;
        let mut result = ScriptResult {
            path: script.path.clone(),
            id: text(resource, "id").map(str::to_owned),
            name: script.name(),
            url: text(resource, "url").map(str::to_owned),
            base_url: self.options.base_url.clone(),
            started: OffsetDateTime::now_utc(),
            millis: 0,
            error: None,
            skipped: None,
            setup: Vec::new(),
            tests: Vec::new(),
            teardown: Vec::new(),
        };
        // What the runner passes over is said, and the script runs without it.
        let mut warnings = elements::unknown(resource);
        if let Some(skip) = self.skip_reason(script, &mut warnings) {
            let not_claimed = matches!(skip, Skip::NotClaimed(_));
            result.skipped = Some(match skip {
                Skip::Unset(reason) | Skip::NotClaimed(reason) => reason,
            });
            return (result, not_claimed);
        }
        result.setup.extend(
            warnings.into_iter().map(|w| ActionResult::new(ActionKind::Operation, "script", Outcome::Warning, w)),
        );
        let mut state = State { runner: self, script, fixtures: HashMap::new(), last: None, depth: Cell::new(0) };
        if let Err(e) = state.load_fixtures() {
            result.error = Some(e.to_string());
            result.millis = started_at.elapsed().as_millis();
            return (result, false);
        }
        let mut setup_ok = true;
        for id in state.fixture_ids("autocreate") {
            let action = state.autocreate(&id);
            setup_ok &= !action.outcome.is_failure();
            result.setup.push(action);
        }
        if setup_ok {
            for action in actions(resource.get("setup")) {
                let done = state.action(action);
                let failed = done.outcome.is_failure();
                result.setup.push(done);
                if failed {
                    setup_ok = false;
                    break;
                }
            }
        }
        for test in resource.get("test").and_then(Value::as_array).into_iter().flatten() {
            result.tests.push(state.test(test, setup_ok));
        }
        for action in actions(resource.get("teardown")) {
            result.teardown.push(state.action(action));
        }
        for id in state.fixture_ids("autodelete") {
            if let Some(action) = state.autodelete(&id) {
                result.teardown.push(action);
            }
        }
        result.millis = started_at.elapsed().as_millis();
        (result, false)
    }
}

impl Runner {
    /// Why `script` should not run here (see [`capability`]). What cannot be checked (a required
    /// statement not found, a server without a readable `/metadata`) adds a warning instead.
    fn skip_reason(&self, script: &Script, warnings: &mut Vec<String>) -> Option<Skip> {
        let unset = capability::unset_variables(script, &self.options);
        if !unset.is_empty() {
            return Some(Skip::Unset(unset.join("; ")));
        }
        if !self.options.capability_check {
            return None;
        }
        let library = self.library.get_or_init(|| canonical::Library::load(&self.options.capability_dirs));
        let (required, unresolved) = capability::required(script, library);
        warnings.extend(unresolved);
        let required = required?;
        let claims = match self.claims.get_or_init(|| capability::server_claims(&self.client, &self.options)) {
            Ok(claims) => claims,
            Err(e) => {
                warnings.push(format!("the required capabilities were not checked: {e}"));
                return None;
            }
        };
        let missing = claims.missing(&required);
        (!missing.is_empty()).then(|| {
            Skip::NotClaimed(format!("the server's CapabilityStatement does not claim {}", missing.join(", ")))
        })
    }
}

/// Why a script is not run.
enum Skip {
    /// A variable only the tester can give has no value.
    Unset(String),
    /// The server does not claim what the script requires.
    NotClaimed(String),
}

/// The actions of a setup, test or teardown.
fn actions(parent: Option<&Value>) -> impl Iterator<Item = &Value> {
    parent.and_then(|p| p.get("action")).and_then(Value::as_array).into_iter().flatten()
}

/// A string property.
fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The state of one script's run.
struct State<'r> {
    runner: &'r Runner,
    script: &'r Script,
    /// Static fixtures, and the requests and responses saved by `requestId`/`responseId`.
    fixtures: HashMap<String, Fixture>,
    /// The last exchange: what assertions without `sourceId` look at.
    last: Option<Exchange>,
    /// How deep variable resolution is nested (variables using variables).
    depth: Cell<u8>,
}

impl State<'_> {
    fn options(&self) -> &Options {
        &self.runner.options
    }

    /// Runs one test; when setup failed, reports every action as skipped.
    fn test(&mut self, test: &Value, setup_ok: bool) -> TestResult {
        let mut result = TestResult {
            name: text(test, "name").unwrap_or("test").to_owned(),
            description: text(test, "description").unwrap_or_default().to_owned(),
            actions: Vec::new(),
        };
        let mut skip_reason = (!setup_ok).then_some("setup failed");
        for action in actions(Some(test)) {
            if let Some(reason) = skip_reason {
                let kind = if action.get("assert").is_some() { ActionKind::Assert } else { ActionKind::Operation };
                result.actions.push(ActionResult::new(kind, label_of(action), Outcome::Skip, reason));
                continue;
            }
            let done = self.action(action);
            if done.outcome.is_failure() {
                skip_reason = Some("an earlier action of this test failed");
            }
            result.actions.push(done);
        }
        result
    }

    /// Runs an operation or checks an assertion.
    fn action(&mut self, action: &Value) -> ActionResult {
        if let Some(operation) = action.get("operation") {
            self.operation(operation)
        } else if let Some(assert) = action.get("assert") {
            self.assert(assert)
        } else {
            ActionResult::new(
                ActionKind::Operation,
                "action",
                Outcome::Error,
                "an action with neither operation nor assert",
            )
        }
    }
}

/// The description of an action, or what it is.
fn label_of(action: &Value) -> String {
    let inner = action.get("operation").or_else(|| action.get("assert")).unwrap_or(action);
    text(inner, "description").or_else(|| text(inner, "label")).map_or_else(
        || {
            inner
                .get("type")
                .and_then(|t| text(t, "code"))
                .map_or_else(|| "action".to_owned(), |c| format!("operation {c}"))
        },
        str::to_owned,
    )
}
