//! `fhirgate policy validate|test|explain|schema` (and the dispatch of `prove`, [`super::proofs`],
//! and `impact`, [`super::impact`]): the policy author's tools, printing to stdout and
//! failing (exit status 1) on invalid sets, failed cases or bad input.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fhirgate_policies::consent::{self, Consent};
use fhirgate_policies::coverage::Coverage;
use fhirgate_policies::testcase::{self, HttpRequest};
use fhirgate_policies::{PolicyEngine, PolicySource, Principal, named_or_directory, shipped_names};
use serde_json::Value;

use crate::config::Config;
use crate::error::GatewayError;

/// A tool invocation.
pub enum Tool {
    Validate {
        config: Result<Config, GatewayError>,
        sets: Vec<String>,
    },
    Test {
        sets: Vec<String>,
        coverage: bool,
    },
    Schema,
    Explain {
        config: Result<Config, GatewayError>,
        method: String,
        url: String,
        token: Option<String>,
        claims: Option<String>,
        resource: Option<PathBuf>,
        /// Stored Consents the data-level decision sees (`resource.consent`).
        consents: Vec<PathBuf>,
        headers: Vec<String>,
        sets: Vec<String>,
    },
    Prove(super::proofs::Prove),
    Impact(super::impact::Impact),
}

/// Runs a tool.
pub fn run(tool: Tool) -> Result<(), GatewayError> {
    match tool {
        Tool::Validate { config, sets } => {
            let sources = chosen(config, &sets)?;
            let engine = PolicyEngine::load(&sources)?;
            println!("valid: {} policies from {} files", engine.policy_ids().len(), sources.len());
            Ok(())
        }
        Tool::Test { sets, coverage } => test(&sets, coverage),
        Tool::Schema => {
            print!("{}", fhirgate_policies::schema_text());
            Ok(())
        }
        Tool::Explain { config, method, url, token, claims, resource, consents, headers, sets } => {
            let data = Data { resource, consents };
            explain(chosen(config, &sets)?, &method, &url, token, claims, data, &headers)
        }
        Tool::Prove(args) => super::proofs::run(args),
        Tool::Impact(args) => super::impact::run(&args),
    }
}

/// The named sets, or the configured ones.
fn chosen(config: Result<Config, GatewayError>, sets: &[String]) -> Result<Vec<PolicySource>, GatewayError> {
    if sets.is_empty() {
        return crate::policy::sources(&config?.policy);
    }
    let mut sources = Vec::new();
    for set in sets {
        sources.extend(named_or_directory(set)?);
    }
    Ok(sources)
}

fn test(sets: &[String], with_coverage: bool) -> Result<(), GatewayError> {
    let (mut passed, mut failed) = (0, 0);
    let mut coverage = with_coverage.then(Coverage::new);
    for set in sets {
        // A shipped name runs the checkout's `policies/sets/<name>/tests`.
        let dir = if Path::new(set).is_dir() || !shipped_names().contains(&set.as_str()) {
            PathBuf::from(set)
        } else {
            PathBuf::from("policies/sets").join(set)
        };
        let default_set = if shipped_names().contains(&set.as_str()) { set.clone() } else { dir.display().to_string() };
        for result in testcase::run_dir_covered(&dir.join("tests"), &default_set, coverage.as_mut())? {
            if result.passed {
                passed += 1;
                println!("ok   {} / {}", result.file, result.name);
            } else {
                failed += 1;
                println!("FAIL {} / {}: {}", result.file, result.name, result.detail);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if let Some(coverage) = &coverage {
        print_coverage(coverage);
    }
    if failed > 0 || passed == 0 {
        return Err(GatewayError::Config(format!("{failed} policy test case(s) failed, {passed} passed")));
    }
    Ok(())
}

/// The files of a data-level question: the resource, and the stored Consents it is decided with.
struct Data {
    resource: Option<PathBuf>,
    consents: Vec<PathBuf>,
}

/// Per policy: covered or not, how often its scope matched and it determined a decision, and
/// each condition's true / false (/ error) counts.
fn print_coverage(coverage: &Coverage) {
    let policies = coverage.policies.len();
    let determined = coverage.policies.values().filter(|p| p.determined > 0).count();
    let conditions: Vec<_> = coverage.policies.values().flat_map(|p| &p.conditions).collect();
    let seen = conditions.iter().filter(|c| c.covered()).count();
    println!(
        "\ncoverage: {determined} of {policies} policies determined a decision; {seen} of {} conditions were \
         seen both true and false",
        conditions.len()
    );
    for (id, policy) in &coverage.policies {
        let mark = if policy.covered() { "covered  " } else { "UNCOVERED" };
        println!("  {mark} {id}: scope matched {}, determined {}", policy.scope_matched, policy.determined);
        for condition in &policy.conditions {
            let errors =
                if condition.error_count > 0 { format!(", error {}", condition.error_count) } else { String::new() };
            println!(
                "            {:<6} true {}, false {}{errors}: {}",
                condition.kind, condition.true_count, condition.false_count, condition.text
            );
        }
    }
}

fn explain(
    sources: Vec<PolicySource>,
    method: &str,
    url: &str,
    token: Option<String>,
    claims: Option<String>,
    data: Data,
    headers: &[String],
) -> Result<(), GatewayError> {
    let bad = |m: String| GatewayError::Config(m);
    let claims: Value = match (token, claims) {
        (Some(token), _) => {
            let payload = token.split('.').nth(1).ok_or_else(|| bad("the token has no payload".into()))?;
            let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|e| bad(format!("token payload: {e}")))?;
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("token payload: {e}")))?
        }
        (None, Some(text)) => serde_json::from_str(&text).map_err(|e| bad(format!("--claims: {e}")))?,
        (None, None) => return Err(bad("give --token or --claims".into())),
    };
    let http = HttpRequest {
        method: method.to_string(),
        url: url.to_string(),
        headers: headers
            .iter()
            .filter_map(|h| h.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect(),
        ..HttpRequest::default()
    };
    let read = |path: &PathBuf| -> Result<Value, GatewayError> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("`{}`: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| bad(format!("`{}`: {e}", path.display())))
    };
    let mut request = http.to_authz()?;
    let engine = PolicyEngine::load(&sources)?;
    let principal = Principal::from_claims(&claims, "patient");
    let mut consent_by = Vec::new();
    if let Some(path) = &data.resource {
        let value = read(path)?;
        request = engine.with_data(&request, &value);
        if engine.reads_consents() {
            let stored: Vec<Consent> = data
                .consents
                .iter()
                .map(read)
                .collect::<Result<Vec<_>, _>>()?
                .iter()
                .filter_map(consent::parse)
                .collect();
            (request.consent, consent_by) = consent::decide_with_stored(&request, &principal, &value, &stored);
        }
    }
    let decision = engine.decide(&principal, &request)?;
    println!("decision:  {}", decision.as_str());
    println!(
        "policies:  {}",
        if decision.policies.is_empty() { "(none: default deny)".to_string() } else { decision.policies.join(", ") }
    );
    for error in &decision.errors {
        println!("error:     {error}");
    }
    println!(
        "principal: {}::\"{}\" roles={:?} scopes={:?} patient={:?}",
        principal.entity_type(),
        principal.subject,
        principal.roles,
        principal.scopes,
        principal.patient
    );
    println!("action:    Fhir::Action::\"{}\"", request.action);
    println!(
        "resource:  {} {} ({} level)",
        request.target.resource_type,
        request.target.id,
        if request.data.is_some() { "data" } else { "type" }
    );
    if engine.reads_consents() {
        println!("consent:   {} {consent_by:?}", request.consent.as_str());
    }
    Ok(())
}
