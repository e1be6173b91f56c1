//! `fhirgate policy impact --audit FILE OLD NEW`: the decisions recorded in an audit log
//! (events written with `policy.audit_inputs = true`, which carry the Cedar request each was
//! decided on) decided again by two policy sets; every decision that differs is listed,
//! grouped by the policy that makes the difference.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::PathBuf;

use fhirgate_policies::{Decision, PolicyEngine, named_or_directory};
use serde_json::Value;

use crate::error::GatewayError;

/// The files and sets to compare.
pub struct Impact {
    pub audit: PathBuf,
    /// Sets (names or directories; several joined by commas).
    pub old: String,
    pub new: String,
}

/// One decision that changes.
struct Change {
    line: usize,
    summary: String,
    old: Decision,
    new: Decision,
}

/// Replays the log and prints the changes.
pub fn run(args: &Impact) -> Result<(), GatewayError> {
    let old = engine(&args.old)?;
    let new = engine(&args.new)?;
    let path = args.audit.display().to_string();
    let file = std::fs::File::open(&args.audit).map_err(|e| GatewayError::Config(format!("`{path}`: {e}")))?;
    let (mut replayed, mut without_inputs, mut unlike_log) = (0usize, 0usize, 0usize);
    let mut changes = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| GatewayError::Config(format!("`{path}`: {e}")))?;
        let Ok(value) = serde_json::from_str::<Value>(&line) else { continue };
        let record = value.get("record").unwrap_or(&value);
        if record.get("event").and_then(Value::as_str) != Some("authorization") {
            continue;
        }
        let Some(inputs) = record.get("cedar") else {
            without_inputs += 1;
            continue;
        };
        let replay = |engine: &PolicyEngine| {
            engine.replay(inputs).map_err(|e| GatewayError::Config(format!("`{path}` line {}: {e}", n + 1)))
        };
        let (before, after) = (replay(&old)?, replay(&new)?);
        replayed += 1;
        if record.get("decision").and_then(Value::as_str) != Some(before.as_str()) {
            unlike_log += 1;
        }
        if before.allowed != after.allowed {
            changes.push(Change { line: n + 1, summary: summary(record), old: before, new: after });
        }
    }
    println!(
        "{replayed} decisions replayed from `{path}`; {without_inputs} audit events without decision inputs \
         skipped (policy.audit_inputs); {unlike_log} decided differently in the log than by `{}`",
        args.old
    );
    println!("{} decisions change", changes.len());
    for (group, members) in grouped(changes) {
        println!("\n{group} ({})", members.len());
        for change in members {
            println!(
                "  {} -> {}  {}  (line {}; was {:?}, now {:?})",
                change.old.as_str(),
                change.new.as_str(),
                change.summary,
                change.line,
                change.old.policies,
                change.new.policies
            );
        }
    }
    Ok(())
}

fn engine(sets: &str) -> Result<PolicyEngine, GatewayError> {
    let mut sources = Vec::new();
    for set in sets.split(',').filter(|s| !s.is_empty()) {
        sources.extend(named_or_directory(set)?);
    }
    Ok(PolicyEngine::load(&sources)?)
}

/// The changes by the policy that makes the difference: the permits that now allow, the
/// forbids that now deny, or the permits that no longer allow.
fn grouped(changes: Vec<Change>) -> BTreeMap<String, Vec<Change>> {
    let mut groups: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for change in changes {
        let key = if change.new.allowed {
            format!("now allowed by {}", change.new.policies.join(", "))
        } else if !change.new.policies.is_empty() {
            format!("now denied by {}", change.new.policies.join(", "))
        } else {
            format!("no longer allowed by {}", change.old.policies.join(", "))
        };
        groups.entry(key).or_default().push(change);
    }
    groups
}

/// Who did what to which resource, from the event's own fields.
fn summary(record: &Value) -> String {
    let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("");
    let resource = match (field("resource_type"), field("resource_id")) {
        ("", _) => "/".to_string(),
        (t, "") => t.to_string(),
        (t, id) => format!("{t}/{id}"),
    };
    format!(
        "{} {} ({}) by {} request {}",
        field("action"),
        resource,
        field("phase"),
        field("principal"),
        field("request_id")
    )
}
