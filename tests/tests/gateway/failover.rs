//! Several addresses for one remote target: two fhirgate processes on one data directory (one
//! SQLite file, one issuer) behind one target; when one dies, reads keep succeeding (an
//! idempotent request that failed before any answer is retried on the other address) and, once
//! the health checks have noticed, writes too. And a target listed with a dead address beside a
//! live one serves from the start.

use std::time::Duration;

use fhirgate_e2e::topology::{self, RemoteFhirgate, remote_target, route};
use fhirgate_e2e::{TestResult, free_port, temp_dir};
use serde_json::json;

use super::{expect, expect_written, no_upstream_address, runs_here};

/// The public base of the two replicas (never resolved: the target lists their addresses).
const REPLICAS: &str = "http://fhir-replicas.invalid";

fn addresses(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!("addresses = [{}]\nretries = 1\nhealth_interval_seconds = 1\nconnect_timeout_ms = 500", list.join(", "))
}

#[test]
fn reads_and_writes_survive_the_death_of_one_of_two_addresses() -> TestResult {
    if !runs_here("failover") {
        return Ok(());
    }
    // Two replicas as they are deployed: one data directory (one SQLite file, one issuer key)
    // and one public base URL (their issuer, and the base of their links), each on its address.
    let shared = temp_dir("gw-failover-remote")?;
    let public = [("FHIRGATE_SERVER_BASE_URL", REPLICAS)];
    let mut first = RemoteFhirgate::start_in(&shared, &public)?;
    let second = topology::start(&shared, "", &public)?;
    let ports = [first.server.port, second.port];
    let dir = temp_dir("gw-failover")?;
    let toml = [
        remote_target("remote", REPLICAS, &first.credentials(), &addresses(&ports)),
        route("all", "", &["remote"], ""),
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;

    expect_written("a write", &s.put("Patient/f1", &json!({"resourceType": "Patient", "id": "f1"}))?)?;
    for n in 0..6 {
        let r = s.get("Patient/f1")?;
        expect(&format!("read {n} with both addresses up"), &r, 200)?;
        no_upstream_address("a read", &r, &ports)?;
    }

    first.server.terminate()?;
    for n in 0..6 {
        let r = s.get("Patient/f1")?;
        expect(&format!("read {n} right after one address died"), &r, 200)?;
        no_upstream_address("a read after failover", &r, &ports)?;
    }
    std::thread::sleep(Duration::from_millis(2_500));
    for n in 0..3 {
        let r = s.post("Patient", &json!({"resourceType": "Patient", "name": [{"family": format!("After{n}")}]}))?;
        expect(&format!("create {n} once the health checks noticed"), &r, 201)?;
        no_upstream_address("a create after failover", &r, &ports)?;
        assert!(
            !r.body.contains(REPLICAS) && !r.header("Location").unwrap_or_default().contains(REPLICAS),
            "no upstream base"
        );
    }
    Ok(())
}

#[test]
fn a_dead_address_beside_a_live_one_does_not_fail_requests() -> TestResult {
    if !runs_here("dead address") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-dead-addr-remote")?;
    let dead = free_port()?;
    let dir = temp_dir("gw-dead-addr")?;
    let toml = [
        remote_target("remote", &remote.base(), &remote.credentials(), &addresses(&[dead, remote.server.port])),
        route("all", "", &["remote"], ""),
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;
    expect_written("a write", &s.put("Patient/d1", &json!({"resourceType": "Patient", "id": "d1"}))?)?;
    for n in 0..8 {
        let r = s.get("Patient/d1")?;
        expect(&format!("read {n}"), &r, 200)?;
        no_upstream_address("a read", &r, &[dead, remote.server.port])?;
    }
    Ok(())
}
