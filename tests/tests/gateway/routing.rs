//! Routes by path prefix, resource type and token claim; an unknown route is a 404
//! OperationOutcome; each route's CapabilityStatement; `fhirgate config` shows the table; a bad
//! table stops the start with a message naming the problem.

use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::json;

use super::{expect, expect_outcome, expect_written, no_upstream_address, runs_here};

/// A local target `local` and the remote fhirgate as target `lab`: `/lab/...` goes to the lab;
/// tokens of tenant `tB` go to the lab; `Patient` at the root goes to the local store; nothing
/// else has a route.
fn front(remote: &RemoteFhirgate) -> TestResult<Server> {
    let dir = temp_dir("gw-routes")?;
    let toml = [
        local_target("local", &dir),
        remote_target("lab", &remote.base(), &remote.credentials(), ""),
        route("lab", "lab", &["lab"], ""),
        route("tenant-b", "", &["lab"], "claim = \"tid\"\nclaim_value = \"tB\""),
        route("patients", "", &["local"], "types = [\"Patient\"]"),
    ]
    .concat();
    topology::start(&dir, &toml, &[])
}

#[test]
fn routes_choose_targets_by_prefix_type_and_claim() -> TestResult {
    if !runs_here("routes") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-routes-remote")?;
    let s = front(&remote)?;
    let ports = [remote.server.port];
    let patient = |id: &str| json!({"resourceType": "Patient", "id": id, "name": [{"family": "Routed"}]});

    // By prefix: the lab's store has it, the local one does not.
    let r = s.put("lab/Patient/lab1", &patient("lab1"))?;
    expect_written("PUT /lab/Patient/lab1", &r)?;
    no_upstream_address("PUT /lab/Patient/lab1", &r, &ports)?;
    if let Some(location) = r.header("Location") {
        assert!(location.starts_with(&s.url("lab/Patient/lab1")), "Location on the route's base: {location}");
    }
    expect("the remote has lab1", &remote.server.get("Patient/lab1")?, 200)?;
    let r = s.get("lab/Patient/lab1")?;
    expect("GET /lab/Patient/lab1", &r, 200)?;
    assert_eq!(r.json()?["id"], "lab1");
    no_upstream_address("GET /lab/Patient/lab1", &r, &ports)?;
    expect_outcome("lab1 is not on the local route", &s.get("Patient/lab1")?, 404)?;

    // By type: Patient at the root is the local store's.
    expect_written("PUT /Patient/loc1", &s.put("Patient/loc1", &patient("loc1"))?)?;
    expect("GET /Patient/loc1", &s.get("Patient/loc1")?, 200)?;
    expect("the remote does not have loc1", &remote.server.get("Patient/loc1")?, 404)?;
    expect_outcome("loc1 is not on the lab route", &s.get("lab/Patient/loc1")?, 404)?;

    // No route for Observation at the root (without the tenant claim), nor for an unknown prefix.
    let observation = json!({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}});
    expect_outcome("PUT /Observation/o1 has no route", &s.put("Observation/o1", &observation)?, 404)?;
    expect_outcome("GET /Observation has no route", &s.get("Observation?_count=1")?, 404)?;
    expect_outcome("an unknown prefix", &s.get("nowhere/Patient/loc1")?, 404)?;
    expect("nothing was written for the unrouted PUT", &remote.server.get("Observation/o1")?, 404)?;

    // By claim: a token of tenant tB goes to the lab, for every type.
    let tenant_b = s.mint(&["--role", "globalAdmin", "--tenant", "tB"])?;
    let r = s.send_as(Some(&tenant_b), "PUT", "Observation/o1", Some(observation.to_string().as_bytes()), &[])?;
    expect_written("PUT /Observation/o1 as tenant tB", &r)?;
    no_upstream_address("PUT /Observation/o1 as tenant tB", &r, &ports)?;
    expect("the remote has o1", &remote.server.get("Observation/o1")?, 200)?;
    let r = s.send_as(Some(&tenant_b), "GET", "Patient/lab1", None, &[])?;
    expect("tenant tB reads the lab's Patient at the root", &r, 200)?;
    let r = s.send_as(Some(&tenant_b), "GET", "Patient/loc1", None, &[])?;
    expect_outcome("tenant tB does not reach the local store", &r, 404)?;
    Ok(())
}

#[test]
fn each_route_has_its_capability_statement_and_the_table_is_printed() -> TestResult {
    if !runs_here("capabilities per route") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-routes-cs-remote")?;
    let s = front(&remote)?;
    let r = s.get("lab/metadata")?;
    expect("GET /lab/metadata", &r, 200)?;
    assert_eq!(r.json()?["resourceType"], "CapabilityStatement");
    // This server's security (SMART), before `resource`, as the specification orders `rest`.
    let rest = r.json()?["rest"][0].clone();
    assert_eq!(rest["security"]["service"][0]["coding"][0]["code"], "SMART-on-FHIR", "{}", rest["security"]);
    let keys: Vec<&String> = rest.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert!(keys.iter().position(|k| *k == "security") < keys.iter().position(|k| *k == "resource"), "{keys:?}");
    no_upstream_address("GET /lab/metadata", &r, &[remote.server.port])?;
    // Content negotiation holds for a route's statement too, fetched before or not.
    let r = s.get_with("lab/metadata", &[("Accept", "application/fhir+turtle")])?;
    expect_outcome("GET /lab/metadata as Turtle", &r, 406)?;
    let r = s.get_with("lab/metadata", &[("Accept", "application/fhir+xml")])?;
    expect("GET /lab/metadata as XML", &r, 200)?;
    assert!(r.body.contains("<CapabilityStatement xmlns=\"http://hl7.org/fhir\">"), "{}", r.body);

    // The root's route for this token serves Patient only: its statement names no other type.
    let r = s.get("metadata")?;
    expect("GET /metadata", &r, 200)?;
    let cs = r.json()?;
    let types: Vec<String> = cs["rest"][0]["resource"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["type"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    assert!(types.contains(&"Patient".to_string()), "the Patient route's statement has Patient: {types:?}");
    assert!(types.iter().all(|t| t == "Patient"), "limited to the route's types: {types:?}");

    let out = s.cli(&["config"])?;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fhirgate config: {}", String::from_utf8_lossy(&out.stderr));
    for id in ["lab", "tenant-b", "patients", "local"] {
        assert!(printed.contains(id), "`fhirgate config` shows `{id}`:\n{printed}");
    }
    Ok(())
}

#[test]
fn a_bad_routing_table_stops_the_start_with_a_precise_message() -> TestResult {
    if !runs_here("bad table") {
        return Ok(());
    }
    let dir = temp_dir("gw-bad-table")?;
    let toml = [local_target("local", &dir), route("r", "", &["no-such-target"], "")].concat();
    let error = match topology::start(&dir, &toml, &[]) {
        Ok(_) => return Err("a route naming an unknown target must stop the start".into()),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("no-such-target"), "the message names the unknown target: {error}");

    let dir = temp_dir("gw-bad-target")?;
    let both = format!("{}base_url = \"http://127.0.0.1:9\"\n", local_target("twice", &dir));
    let error = match topology::start(&dir, &both, &[]) {
        Ok(_) => return Err("a target with both `store` and `base_url` must stop the start".into()),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("twice"), "the message names the target: {error}");
    Ok(())
}
