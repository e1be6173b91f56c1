//! The stage of the attack suite: one running server, the token that sees everything the attacks
//! aim at (to check afterwards that nothing hidden changed), the hidden resources, and a record of
//! every attack case: each runs on its own (a failed case does not stop the others), and after
//! each the server must still answer `GET /health` with 200.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use fhirgate_e2e::{Reply, Server, TestResult};
use serde_json::Value;

/// Fails the current attack case with a message (a `?`-able check, so a case reports every
/// attack that worked rather than stopping the suite at the first one).
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+).into());
        }
    };
}
pub(crate) use ensure;

/// A case's name, outcome and duration.
type CaseResult = (String, Result<(), String>, std::time::Duration);

pub struct Scene<'a> {
    pub name: &'static str,
    pub s: &'a Server,
    /// Sees (and may write) every resource the attacks aim at.
    pub seer: String,
    /// `Type/id` of every resource the attackers must not see.
    hidden: RefCell<BTreeSet<String>>,
    /// Attackers (by token) who see every resource of some types, hidden or not.
    sees_types: RefCell<Vec<(String, Vec<&'static str>)>>,
    results: RefCell<Vec<CaseResult>>,
    down: RefCell<bool>,
}

impl<'a> Scene<'a> {
    pub fn new(name: &'static str, s: &'a Server, seer: String) -> Self {
        Self {
            name,
            s,
            seer,
            hidden: RefCell::default(),
            sees_types: RefCell::default(),
            results: RefCell::default(),
            down: RefCell::new(false),
        }
    }

    /// Runs one attack case: its checks, then `GET /health`. Panics count as failures.
    pub fn case(&self, name: impl Into<String>, attack: impl FnOnce() -> TestResult) {
        let name = name.into();
        let started = std::time::Instant::now();
        if *self.down.borrow() {
            self.results.borrow_mut().push((
                name,
                Err("not run: the server stopped answering".into()),
                started.elapsed(),
            ));
            return;
        }
        let outcome = match catch_unwind(AssertUnwindSafe(attack)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panicked".into())),
        };
        let health = self.s.get("health").map(|r| r.status);
        let outcome = match (outcome, health) {
            (outcome, Ok(200)) => outcome,
            (outcome, other) => {
                *self.down.borrow_mut() = true;
                let before = outcome.err().map(|e| format!("{e}; ")).unwrap_or_default();
                Err(format!("{before}GET /health afterwards: {other:?}"))
            }
        };
        self.results.borrow_mut().push((name, outcome, started.elapsed()));
    }

    /// Prints every case and fails with the list of attacks that worked.
    pub fn finish(self) -> TestResult {
        let results = self.results.into_inner();
        let failed: Vec<String> =
            results.iter().filter_map(|(n, r, _)| r.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
        for (n, r, took) in &results {
            println!("[{}] {} {n} ({} ms)", self.name, if r.is_ok() { "held " } else { "BROKEN" }, took.as_millis());
        }
        println!("[{}] {} of {} attack cases held", self.name, results.len() - failed.len(), results.len());
        if failed.is_empty() {
            return Ok(());
        }
        for f in &failed {
            println!("[{}] worked: {}", self.name, f.chars().take(800).collect::<String>());
        }
        Err(format!("[{}] {} of {} attacks worked (listed above)", self.name, failed.len(), results.len()).into())
    }

    /// Marks `Type/id` as hidden from the attackers.
    pub fn hide(&self, reference: &str) {
        self.hidden.borrow_mut().insert(reference.to_string());
    }

    /// Declares that `token` sees every resource of `types` (e.g. a SMART user scope).
    pub fn sees_all_of(&self, token: &str, types: &[&'static str]) {
        self.sees_types.borrow_mut().push((token.to_string(), types.to_vec()));
    }

    /// Writes a resource as the seer (PUT to its id) and returns what was stored.
    pub fn seed(&self, resource: &Value) -> TestResult<Value> {
        let path = reference_of(resource).ok_or("seeded resources need resourceType and id")?;
        let r = self.s.send_as(Some(&self.seer), "PUT", &path, Some(resource.to_string().as_bytes()), &[])?;
        ensure!(r.status == 200 || r.status == 201, "seeding {path}: {} {}", r.status, r.body);
        r.json()
    }

    /// Seeds a resource and marks it hidden.
    pub fn seed_hidden(&self, resource: &Value) -> TestResult<Value> {
        let stored = self.seed(resource)?;
        self.hide(&reference_of(resource).ok_or("no id")?);
        Ok(stored)
    }

    /// The resource as the seer reads it now (must exist).
    pub fn snapshot(&self, path: &str) -> TestResult<Value> {
        let r = self.s.send_as(Some(&self.seer), "GET", path, None, &[])?;
        ensure!(r.status == 200, "{path} as the seer: {} {}", r.status, r.body);
        r.json()
    }

    /// The hidden resource is still there, untouched: same content, version and lastUpdated.
    pub fn assert_unchanged(&self, path: &str, before: &Value) -> TestResult {
        let r = self.s.send_as(Some(&self.seer), "GET", path, None, &[])?;
        ensure!(r.status == 200, "the hidden {path} is gone: {} {}", r.status, r.body);
        let now = r.json()?;
        ensure!(
            now == *before,
            "the hidden {path} changed: version {} -> {}, now {now}",
            before["meta"]["versionId"],
            now["meta"]["versionId"]
        );
        Ok(())
    }

    /// Every hidden resource a reply shows: a resource with a hidden `Type/id` anywhere in the
    /// body (outside OperationOutcomes and links, which may echo the request), or a `fullUrl`,
    /// `location`, request `url` or `Location` header naming one.
    pub fn leaks(&self, reply: &Reply, token: &str) -> Vec<String> {
        let seen = self.sees_types.borrow();
        let types: &[&str] = seen.iter().find(|(t, _)| t == token).map_or(&[], |(_, types)| types.as_slice());
        let hidden: BTreeSet<String> = self
            .hidden
            .borrow()
            .iter()
            .filter(|h| !types.iter().any(|t| h.split('/').next() == Some(*t)))
            .cloned()
            .collect();
        let mut found = Vec::new();
        for header in ["Location", "Content-Location"] {
            if let Some(v) = reply.header(header) {
                found.extend(hidden.iter().filter(|h| names(v, h)).map(|h| format!("{header}: {h}")));
            }
        }
        if let Ok(body) = serde_json::from_str::<Value>(&reply.body) {
            walk(&body, &hidden, &mut found);
        }
        found
    }

    /// Fails when the reply shows anything hidden from `token`.
    pub fn no_leak(&self, what: &str, reply: &Reply, token: &str) -> TestResult {
        let leaks = self.leaks(reply, token);
        ensure!(leaks.is_empty(), "{what} revealed hidden {leaks:?}: {} {}", reply.status, clip(&reply.body));
        Ok(())
    }
}

/// `Type/id` of a resource.
pub fn reference_of(resource: &Value) -> Option<String> {
    Some(format!("{}/{}", resource["resourceType"].as_str()?, resource["id"].as_str()?))
}

/// Whether a URL-like string names `Type/id` (as a whole path segment pair).
fn names(text: &str, reference: &str) -> bool {
    text.match_indices(reference).any(|(at, _)| {
        let before_ok = at == 0 || text[..at].ends_with('/');
        let after = &text[at + reference.len()..];
        before_ok && (after.is_empty() || after.starts_with('/') || after.starts_with('?'))
    })
}

fn walk(v: &Value, hidden: &BTreeSet<String>, found: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if map.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
                return;
            }
            if let Some(r) = reference_of(v).filter(|r| hidden.contains(r)) {
                found.push(format!("resource {r}"));
            }
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("link", _) => {}
                    ("fullUrl" | "location" | "url", Value::String(s)) => {
                        found.extend(hidden.iter().filter(|h| names(s, h)).map(|h| format!("{k}: {h}")));
                    }
                    _ => walk(child, hidden, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, hidden, found)),
        _ => {}
    }
}

/// A body cut short for messages.
pub fn clip(body: &str) -> String {
    body.chars().take(300).collect()
}
