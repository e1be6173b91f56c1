//! Every example resource of the official R4 package (`hl7.fhir.r4.examples@4.0.1`) read through
//! a federated route and written back: `Rewrite::to_client` then `Rewrite::to_target` gives
//! the resource the target stored, byte for byte as JSON, and the client never sees the
//! target's base. The target's base is `http://hl7.org/fhir`, which the examples are full of
//! (canonicals, systems, narratives, absolute references), so every kind of rewrite runs.

#![expect(clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::path::PathBuf;

use fhirgate_engine::federation::Rewrite;
use fhirgate_engine::interaction::{Method, Request, Response};
use serde_json::Value;

const TARGET: &str = "http://hl7.org/fhir";
const CLIENT: &str = "https://gw.example/r4";

/// Whether `text` still holds the target's base as a base (not `http://hl7.org/fhirpath`).
fn shows_target_base(text: &str) -> bool {
    text.match_indices(TARGET).any(|(at, _)| {
        let next = text[at + TARGET.len()..].chars().next();
        next.is_none_or(|c| !(c.is_ascii_alphanumeric() || "-._~:@%".contains(c)))
    })
}

#[test]
fn every_example_read_and_written_back_through_a_prefixed_route_is_unchanged() {
    let rewrite = Rewrite { id_prefix: "EX-".into(), target_base: TARGET.into(), client_base: CLIENT.into() };
    let dir = common::package_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // The definition Bundles (tens of MB) repeat resources that are files of their own.
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 2 * 1024 * 1024))
        .collect();
    files.sort();
    let mut checked = 0;
    let mut changed = 0;
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {name}: {e}"));
        let Ok(stored) = serde_json::from_slice::<Value>(&text) else { continue };
        let Some(resource_type) = stored.get("resourceType").and_then(Value::as_str) else { continue };
        checked += 1;

        let response =
            Response::rendered(200, "application/fhir+json", serde_json::to_vec(&stored).unwrap_or_default());
        let seen = rewrite.to_client(response);
        if seen.status != 200 {
            failures.push(format!("{name}: to_client answered {}", seen.status));
            continue;
        }
        if shows_target_base(&String::from_utf8_lossy(&seen.body)) {
            failures.push(format!("{name}: the client sees the target's base"));
        }
        let client: Value = serde_json::from_slice(&seen.body).expect("to_client renders JSON");
        changed += usize::from(client != stored);
        let (method, path) = match client.get("id").and_then(Value::as_str) {
            // OperationOutcomes keep their ids (only their URLs change): written as creates.
            Some(id) if !matches!(resource_type, "Bundle" | "OperationOutcome") => {
                (Method::Put, format!("{resource_type}/{id}"))
            }
            _ => (Method::Post, resource_type.to_owned()),
        };
        let mut request = Request::new(method, &path, CLIENT);
        request.headers.content_type = Some("application/fhir+json".into());
        request.body = serde_json::to_vec(&client).unwrap_or_default();
        match rewrite.to_target(&request) {
            Ok(Some(back)) => {
                let back: Value = serde_json::from_slice(&back.body).expect("to_target writes JSON");
                if back != stored {
                    failures.push(format!("{name}: written back differently"));
                }
            }
            Ok(None) => failures.push(format!("{name}: not for this target")),
            Err(e) => failures.push(format!("{name}: refused: {e}")),
        }
    }
    assert!(checked > 500, "only {checked} examples found in {}", dir.display());
    assert!(changed * 2 > checked, "only {changed} of {checked} examples were rewritten at all");
    assert!(failures.is_empty(), "{} of {checked} examples:\n{}", failures.len(), failures.join("\n"));
}
