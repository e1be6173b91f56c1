//! End-to-end attacks on `$viewdefinition-run`: a client allowed to run views must get rows only
//! from resources a search would show it, in every output format, and learn nothing of the
//! others: not their ids, not their count, not through an error a hidden resource would raise,
//! not through a `where` aimed at one, not through a stored view it may not read.
//!
//! Policies: `microsoft-roles` with the shipped example forbids (`tenant-isolation`,
//! `restricted`) and a `viewRunner` role that may read, search and run operations. The attacker
//! is a `viewRunner` of tenant `tA`; hidden are resources of tenant `tB` and resources labelled
//! restricted.

use base64::Engine as _;
use fhirgate_e2e::{Server, TestResult, backend, temp_dir};
use serde_json::{Value, json};

const RUN: &str = "$viewdefinition-run";

const VIEW_RUNNER: &str = r#"
@id("viewRunner")
permit (
  principal in Fhir::Role::"viewRunner",
  action in [Fhir::Action::"reads", Fhir::Action::"searches", Fhir::Action::"operation"],
  resource
);
"#;

fn server() -> TestResult<Server> {
    let dir = temp_dir("attacks-views")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    for file in ["tenant-isolation.cedar", "restricted.cedar"] {
        std::fs::copy(shipped.join(file), policies.join(file))?;
    }
    std::fs::write(policies.join("view-runner.cedar"), VIEW_RUNNER)?;
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

fn tenant(code: &str) -> Value {
    json!({"tag": [{"system": "urn:fhirgate:tenant", "code": code}]})
}

fn restricted() -> Value {
    json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]})
}

/// Seeds each resource as an admin of its tenant (`admin_a` for tenant `tA`, `seer` otherwise).
fn seed(s: &Server, seer: &str, admin_a: &str) -> TestResult {
    let view = json!({"resourceType": "ViewDefinition", "resource": "Patient",
                      "select": [{"column": [{"name": "id", "path": "id"}]}]});
    let resources = [
        json!({"resourceType": "Patient", "id": "vis-1", "meta": tenant("tA"), "name": [{"family": "A"}]}),
        json!({"resourceType": "Patient", "id": "vis-2", "name": [{"family": "B"}]}),
        json!({"resourceType": "Patient", "id": "hid-1", "meta": tenant("tB"), "name": [{"family": "C"}]}),
        json!({"resourceType": "Patient", "id": "hid-2", "meta": restricted(), "name": [{"family": "D"}]}),
        // Two names: a view reading `name.family` as one value fails on it, if it is ever run.
        json!({"resourceType": "Patient", "id": "hid-3", "meta": tenant("tB"),
               "name": [{"family": "E"}, {"family": "F"}]}),
        json!({"resourceType": "Binary", "id": "hid-view", "meta": tenant("tB"), "contentType": "application/json",
               "data": base64::engine::general_purpose::STANDARD.encode(view.to_string())}),
    ];
    for r in &resources {
        let path =
            format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default());
        let token = if r.pointer("/meta/tag/0/code").and_then(Value::as_str) == Some("tA") { admin_a } else { seer };
        let reply = s.send_as(Some(token), "PUT", &path, Some(r.to_string().as_bytes()), &[])?;
        if reply.status != 200 && reply.status != 201 {
            return Err(format!("seeding {path}: {} {}", reply.status, reply.body).into());
        }
    }
    Ok(())
}

fn run_with(view: Value, format: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "viewResource", "resource": view},
        {"name": "_format", "valueCode": format}
    ]})
}

fn ids_view() -> Value {
    json!({"resourceType": "ViewDefinition", "resource": "Patient",
           "select": [{"column": [{"name": "id", "path": "id", "type": "id"}]}]})
}

#[test]
fn views_show_nothing_a_search_hides() -> TestResult {
    if backend() == "remote" {
        println!("skipped: views run on the engine's own stores (FHIRGATE_E2E_STORE=remote)");
        return Ok(());
    }
    let s = server()?;
    let seer = s.mint(&["--role", "globalAdmin", "--role", "restrictedReader", "--tenant", "tB"])?;
    let admin_a = s.mint(&["--role", "globalAdmin", "--tenant", "tA"])?;
    seed(&s, &seer, &admin_a)?;
    let attacker = s.mint(&["--role", "viewRunner", "--tenant", "tA"])?;
    let post = |token: &str, body: &Value| s.send_as(Some(token), "POST", RUN, Some(body.to_string().as_bytes()), &[]);
    let mut broken = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        println!("[views] {} {what}", if ok { "held  " } else { "BROKEN" });
        if !ok {
            broken.push(format!("{what}: {detail}"));
        }
    };

    // The data is there: tenant tB's admin sees its three hidden patients and the untagged one.
    let r = post(&seer, &run_with(ids_view(), "ndjson"))?;
    let ok = r.status == 200 && r.body.lines().count() == 4 && r.body.contains("hid-3");
    check("the seer sees the hidden patients", ok, r.body.clone());

    // Every format gives the attacker its two patients and nothing of the others.
    for format in ["json", "ndjson", "csv", "parquet"] {
        let r = s.send_as(Some(&attacker), "POST", RUN, Some(run_with(ids_view(), format).to_string().as_bytes()), &[]);
        let (status, text) = match r {
            Ok(r) => (r.status, r.body),
            // Parquet is binary: the harness reads text, so fetch it as bytes.
            Err(_) => parquet_text(&s, &attacker, &run_with(ids_view(), format))?,
        };
        let ok = status == 200 && text.contains("vis-1") && text.contains("vis-2") && !text.contains("hid-");
        check(&format!("{format} rows only from visible patients"), ok, format!("{status} {text}"));
    }
    let r = post(&attacker, &run_with(ids_view(), "ndjson"))?;
    check("the row count is the visible count", r.body.lines().count() == 2, r.body.clone());

    // A column that fails on a hidden patient (two names) must not fail: it never runs there.
    let families = json!({"resourceType": "ViewDefinition", "resource": "Patient",
                          "select": [{"column": [{"name": "f", "path": "name.family"}]}]});
    let r = post(&attacker, &run_with(families, "ndjson"))?;
    check("no error raised by a hidden resource", r.status == 200 && r.body.lines().count() == 2, r.body.clone());

    // A `where` aimed at a hidden patient finds nothing.
    let aimed = json!({"resourceType": "ViewDefinition", "resource": "Patient", "where": [{"path": "id = 'hid-1'"}],
                       "select": [{"column": [{"name": "id", "path": "id"}]}]});
    let r = post(&attacker, &run_with(aimed, "ndjson"))?;
    check("a where aimed at a hidden patient gives no row", r.status == 200 && r.body.is_empty(), r.body.clone());

    // Narrowing to a hidden patient's compartment shows nothing of it.
    let r = s.send_as(
        Some(&attacker),
        "GET",
        &format!("{RUN}?viewReference=Binary/never&patient=Patient/hid-1"),
        None,
        &[],
    )?;
    check("patient= does not open a view by itself", r.status == 404, r.body.clone());
    let mut narrowed = run_with(ids_view(), "ndjson");
    if let Some(list) = narrowed["parameter"].as_array_mut() {
        list.push(json!({"name": "patient", "valueReference": {"reference": "Patient/hid-1"}}));
    }
    let r = post(&attacker, &narrowed)?;
    check("a hidden patient's compartment gives no row", r.status == 200 && r.body.is_empty(), r.body.clone());

    // A stored view the attacker may not read does not exist for it, however it is named.
    let r = s.send_as(Some(&attacker), "GET", &format!("Binary/hid-view/{RUN}"), None, &[])?;
    check("a hidden stored view is 404 by instance", r.status == 404 && !r.body.contains("hid-1"), r.body.clone());
    let r = s.send_as(Some(&attacker), "GET", &format!("{RUN}?viewReference=Binary/hid-view"), None, &[])?;
    check("a hidden stored view is 404 by reference", r.status == 404, r.body.clone());
    let r = s.send_as(Some(&attacker), "GET", &format!("{RUN}?viewReference=Binary/never"), None, &[])?;
    check("...as a missing one is", r.status == 404, r.body.clone());

    // A client without the operation gets nothing, whatever it may search.
    let reader = s.mint(&["--role", "globalReader", "--tenant", "tA"])?;
    let r = post(&reader, &run_with(ids_view(), "ndjson"))?;
    check(
        "a reader may not run views",
        r.status == 403 && !r.body.contains("vis-"),
        format!("{} {}", r.status, r.body),
    );

    check("the server still answers", s.get("health")?.status == 200, String::new());
    if broken.is_empty() {
        return Ok(());
    }
    Err(format!("{} view attacks worked:\n{}", broken.len(), broken.join("\n")).into())
}

/// A run answered as bytes, shown as (lossy) text so ids can be looked for.
fn parquet_text(s: &Server, token: &str, body: &Value) -> TestResult<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = agent
        .post(&s.url(RUN))
        .header("Content-Type", "application/fhir+json")
        .header("Authorization", &format!("Bearer {token}"))
        .send(body.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.into_body().read_to_vec()?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
