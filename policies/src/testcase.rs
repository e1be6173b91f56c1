//! Policy test cases: JSON files of claims + request (+ resource) → expected decision, run by
//! one harness (`fhirgate policy test`, and a Rust test over every shipped set).
//!
//! ```json
//! { "sets": ["microsoft-roles"],
//!   "cases": [ { "name": "a reader reads",
//!                "claims": {"sub": "u1", "roles": ["globalReader"]},
//!                "request": {"method": "GET", "url": "Observation/1",
//!                            "headers": {"X-Break-Glass": "er"}, "time": "2026-01-05T10:00:00Z"},
//!                "resource": {"resourceType": "Observation", "...": "..."},
//!                "expect": "allow",
//!                "policies": ["microsoft-roles:globalReader"] } ] }
//! ```
//! `sets` defaults to the set holding the file (`policies/sets/<name>/tests/*.json`); without
//! `resource` the type-level decision is tested, with it the data-level one. `consents` lists
//! the stored Consent resources that decision sees (`resource.consent`, [`crate::consent`]).

use std::path::Path;

use fhirgate_engine::interaction::{Method, Request, parse_query};
use serde::Deserialize;
use serde_json::Value;

use crate::action::Action;
use crate::consent::{self, Consent};
use crate::coverage::Coverage;
use crate::decision::Decision;
use crate::engine::PolicyEngine;
use crate::error::Error;
use crate::principal::Principal;
use crate::request::{AuthzRequest, RequestContext};
use crate::sources::{PolicySource, named_or_directory};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    sets: Vec<String>,
    cases: Vec<TestCase>,
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub claims: Value,
    pub request: HttpRequest,
    #[serde(default)]
    pub resource: Option<Value>,
    /// The stored Consents the data-level decision sees (`resource.consent`), as FHIR JSON.
    #[serde(default)]
    pub consents: Vec<Value>,
    pub expect: String,
    #[serde(default)]
    pub policies: Option<Vec<String>>,
}

/// The HTTP side of a case (also what `fhirgate policy explain` takes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// RFC 3339; default: now.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub client_ip: String,
    /// The gateway target and route (`context.target`, `context.route`); default `default`.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
}

impl HttpRequest {
    /// The type-level authorization request, or `None` when the URL is no FHIR interaction.
    pub fn to_authz(&self) -> Result<AuthzRequest, Error> {
        let url = self.url.trim_start_matches('/');
        let (path, query) = url.split_once('?').map_or((url, ""), |(p, q)| (p, q));
        let mut request = Request::new(Method::parse(&self.method.to_ascii_uppercase()), path, "");
        request.query = parse_query(query);
        let asked = fhirgate_engine::access::Target::of(&request)
            .map_err(|e| Error::Request(format!("`{} {}` is no FHIR interaction: {e}", self.method, self.url)))?;
        let (action, target) = Action::of(&asked);
        let header =
            |name: &str| self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let epoch_seconds = match &self.time {
            Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Error::Request(format!("time `{t}`: {e}")))?
                .unix_timestamp(),
            None => time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        Ok(AuthzRequest::type_level(
            action,
            target,
            RequestContext {
                epoch_seconds,
                client_ip: self.client_ip.clone(),
                purpose_of_use: header("x-purpose-of-use").unwrap_or_default(),
                break_glass: header("x-break-glass").is_some(),
                method: self.method.to_ascii_uppercase(),
                store: self.target.clone().unwrap_or_else(|| "default".into()),
                target: self.target.clone().unwrap_or_else(|| "default".into()),
                route: self.route.clone().unwrap_or_else(|| "default".into()),
            },
        ))
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Runs every `*.json` test file in `dir` (sorted). `default_set` names the policy set (shipped
/// name or directory) used by files that do not list `sets`.
pub fn run_dir(dir: &Path, default_set: &str) -> Result<Vec<CaseResult>, Error> {
    run_dir_covered(dir, default_set, None)
}

/// [`run_dir`], recording in `coverage` what the cases exercise of the policies they load.
pub fn run_dir_covered(
    dir: &Path,
    default_set: &str,
    mut coverage: Option<&mut Coverage>,
) -> Result<Vec<CaseResult>, Error> {
    let io = |e: std::io::Error| Error::Io { path: dir.display().to_string(), message: e.to_string() };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut results = Vec::new();
    for file in files {
        results.extend(run_file_covered(&file, default_set, coverage.as_deref_mut())?);
    }
    Ok(results)
}

/// Runs one test file.
pub fn run_file(path: &Path, default_set: &str) -> Result<Vec<CaseResult>, Error> {
    run_file_covered(path, default_set, None)
}

fn run_file_covered(path: &Path, default_set: &str, coverage: Option<&mut Coverage>) -> Result<Vec<CaseResult>, Error> {
    let file = path.display().to_string();
    let bad = |message: String| Error::TestCase { file: file.clone(), message };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let tests: TestFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let _ = &tests.description;
    let sets = if tests.sets.is_empty() { vec![default_set.to_string()] } else { tests.sets.clone() };
    let mut sources: Vec<PolicySource> = Vec::new();
    for set in &sets {
        sources.extend(named_or_directory(set)?);
    }
    let engine = PolicyEngine::load(&sources)?;
    let Some(coverage) = coverage else {
        return tests.cases.iter().map(|case| run_case(&engine, case, &file)).collect();
    };
    coverage.add_policies(&engine)?;
    let mut results = Vec::new();
    for case in &tests.cases {
        let (principal, request) = case.request_of(&engine)?;
        let decision = engine.decide(&principal, &request)?;
        coverage.record(&engine, &principal, &request, &decision)?;
        results.push(judge(case, &decision, &file));
    }
    Ok(results)
}

impl TestCase {
    /// The principal and the authorization request the case describes.
    /// With a resource, and a set that reads consent, the case's stored Consents decide
    /// `resource.consent`.
    pub fn request_of(&self, engine: &PolicyEngine) -> Result<(Principal, AuthzRequest), Error> {
        let principal = Principal::from_claims(&self.claims, "patient");
        let mut request = self.request.to_authz()?;
        if let Some(resource) = &self.resource {
            request = engine.with_data(&request, resource);
            if engine.reads_consents() {
                let stored: Vec<Consent> = self.consents.iter().filter_map(consent::parse).collect();
                request.consent = consent::decide_with_stored(&request, &principal, resource, &stored).0;
            }
        }
        Ok((principal, request))
    }
}

/// Decides one case and compares with its expectation.
pub fn run_case(engine: &PolicyEngine, case: &TestCase, file: &str) -> Result<CaseResult, Error> {
    let (principal, request) = case.request_of(engine)?;
    Ok(judge(case, &engine.decide(&principal, &request)?, file))
}

/// Compares a case's decision with its expectation.
fn judge(case: &TestCase, decision: &Decision, file: &str) -> CaseResult {
    let mut problems = Vec::new();
    if decision.as_str() != case.expect {
        problems.push(format!("expected {}, got {}", case.expect, decision.as_str()));
    }
    if let Some(expected) = &case.policies {
        let mut expected = expected.clone();
        expected.sort();
        if expected != decision.policies {
            problems.push(format!("expected policies {expected:?}, got {:?}", decision.policies));
        }
    }
    if !decision.errors.is_empty() {
        problems.push(format!("evaluation errors: {:?}", decision.errors));
    }
    CaseResult {
        file: file.to_string(),
        name: case.name.clone(),
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            format!("{} by {:?}", decision.as_str(), decision.policies)
        } else {
            problems.join("; ")
        },
    }
}
