//! Capability-driven runs (`--from-capabilities`): which claims of the server's
//! CapabilityStatement the run exercised, and whether the server honoured them. Each request a
//! test sent is mapped to the claims it exercises (`GET Patient/1` → `Patient` `read`,
//! `GET Patient?family=x` → `Patient` `search-type` and `Patient` `?family`, a `PUT` with
//! criteria → `conditionalUpdate`…); a claim is honoured when every test that exercised it
//! passed, and not honoured when one failed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::capability::Claims;
use super::result::ScriptResult;
use crate::http::Request;

/// What the run found of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// `` `Patient` `read` ``, `` `Patient` `?family` ``, `` system `batch` ``.
    pub claim: String,
    /// How many tests exercising it passed.
    pub passed: usize,
    /// The tests exercising it that failed: `script › test: first failure`.
    pub failed: Vec<String>,
}

impl ClaimOutcome {
    pub fn honoured(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The claims of `server` the tests of `results` exercised, sorted by claim.
pub(super) fn outcomes(server: &Claims, base_url: &str, results: &[ScriptResult]) -> Vec<ClaimOutcome> {
    let mut by_claim: BTreeMap<String, ClaimOutcome> = BTreeMap::new();
    for result in results.iter().filter(|r| r.skipped.is_none()) {
        for test in &result.tests {
            let failure = test.actions.iter().find(|a| a.outcome.is_failure()).map(|a| a.message.as_str());
            let exercised =
                test.actions.iter().filter_map(|a| a.exchange.as_ref()).flat_map(|e| exercised(&e.request, base_url));
            for (resource_type, name) in exercised {
                if !server.claims(resource_type.as_deref(), &name) {
                    continue;
                }
                let claim = match &resource_type {
                    Some(t) => format!("`{t}` `{name}`"),
                    None => format!("system `{name}`"),
                };
                let entry =
                    by_claim.entry(claim.clone()).or_insert(ClaimOutcome { claim, passed: 0, failed: Vec::new() });
                match failure {
                    None => entry.passed += 1,
                    Some(message) => {
                        let line = format!("{} › {}: {message}", result.name, test.name);
                        if !entry.failed.contains(&line) {
                            entry.failed.push(line);
                        }
                    }
                }
            }
        }
    }
    by_claim.into_values().collect()
}

/// Search parameters that are result controls, not claims.
const CONTROLS: [&str; 12] = [
    "_count",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
    "_contained",
    "_containedType",
    "_offset",
];

/// The claims a request exercises: (resource type or `None` for system, name).
fn exercised(request: &Request, base_url: &str) -> Vec<(Option<String>, String)> {
    let relative = request.url.strip_prefix(base_url).unwrap_or(&request.url);
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method.to_ascii_uppercase();
    let typed = |t: &str, name: &str| (Some(t.to_owned()), name.to_owned());
    let params = |t: &str, query: &str| -> Vec<(Option<String>, String)> {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .map(|name| name.split([':', '.']).next().unwrap_or(name))
            .filter(|name| !name.is_empty() && !CONTROLS.contains(name))
            .map(|name| typed(t, &format!("?{name}")))
            .collect()
    };
    if let Some(op) = segments.last().and_then(|s| s.strip_prefix('$')) {
        return match segments.first() {
            Some(t) if segments.len() > 1 => vec![typed(t, &format!("${op}"))],
            _ => vec![(None, format!("${op}"))],
        };
    }
    match (method.as_str(), segments.as_slice()) {
        (_, ["metadata"]) => Vec::new(),
        ("GET", ["_history"]) => vec![(None, "history-system".into())],
        ("POST", []) => {
            let kind = request.resource().and_then(|b| b.get("type").and_then(Value::as_str).map(str::to_owned));
            vec![(None, if kind.as_deref() == Some("batch") { "batch".into() } else { "transaction".into() })]
        }
        ("GET", []) => vec![(None, "search-system".into())],
        ("GET", [t]) => [vec![typed(t, "search-type")], params(t, query)].concat(),
        ("POST", [t, "_search"]) => {
            let form = request.body.clone().unwrap_or_default();
            [vec![typed(t, "search-type")], params(t, query), params(t, &form)].concat()
        }
        ("POST", [t]) => {
            let mut claims = vec![typed(t, "create")];
            if request.header("If-None-Exist").is_some() {
                claims.push(typed(t, "conditionalCreate"));
            }
            claims
        }
        ("PUT", [t]) => vec![typed(t, "conditionalUpdate")],
        ("DELETE", [t]) => vec![typed(t, "conditionalDelete")],
        ("GET", [t, "_history"]) => vec![typed(t, "history-type")],
        ("GET", [t, _]) => vec![typed(t, "read")],
        ("PUT", [t, _]) => vec![typed(t, "update")],
        ("PATCH", [t, ..]) => vec![typed(t, "patch")],
        ("DELETE", [t, _]) => vec![typed(t, "delete")],
        ("GET", [t, _, "_history"]) => vec![typed(t, "history-instance")],
        ("GET", [t, _, "_history", _]) => vec![typed(t, "vread")],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::exercised;
    use crate::http::Request;

    fn claims(method: &str, url: &str, headers: &[(&str, &str)]) -> Vec<String> {
        let headers = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let request = Request { method: method.into(), url: format!("http://s/fhir/{url}"), headers, body: None };
        exercised(&request, "http://s/fhir")
            .into_iter()
            .map(|(t, n)| format!("{}{n}", t.map(|t| format!("{t} ")).unwrap_or_default()))
            .collect()
    }

    #[test]
    fn requests_to_claims() {
        assert_eq!(claims("GET", "Patient/1", &[]), ["Patient read"]);
        assert_eq!(claims("GET", "Patient/1/_history/2", &[]), ["Patient vread"]);
        assert_eq!(claims("GET", "Patient/1/_history", &[]), ["Patient history-instance"]);
        assert_eq!(
            claims("GET", "Patient?family:exact=x&_count=2&general-practitioner.name=y", &[]),
            ["Patient search-type", "Patient ?family", "Patient ?general-practitioner"]
        );
        assert_eq!(
            claims("POST", "Patient", &[("If-None-Exist", "_id=1")]),
            ["Patient create", "Patient conditionalCreate"]
        );
        assert_eq!(claims("PUT", "Patient?_id=1", &[]), ["Patient conditionalUpdate"]);
        assert_eq!(claims("DELETE", "Patient/1", &[]), ["Patient delete"]);
        assert_eq!(claims("POST", "Patient/1/$everything", &[]), ["Patient $everything"]);
        assert_eq!(claims("GET", "_history", &[]), ["history-system"]);
        assert_eq!(claims("GET", "Patient/_history", &[]), ["Patient history-type"]);
        assert!(claims("GET", "metadata", &[]).is_empty());
    }
}
