//! A remote target's CapabilityStatement in its route's `metadata`: kept for the target's
//! `capabilities_ttl_seconds`, then fetched again; while the remote cannot give a new one the
//! last one is served (stale while in error); with none kept yet the failure shows.

use std::time::Duration;

use fhirgate_e2e::topology::{self, Credentials, remote_target, route};
use fhirgate_e2e::upstream::{Mode, Upstream};
use fhirgate_e2e::{Server, TestResult, temp_dir};

use super::{expect, expect_outcome, runs_here};

/// A front with one route `lab` to `upstream`, statements kept one second; the health checks
/// probe another path, so every `/metadata` the upstream sees is a statement fetched.
fn front(name: &str, upstream: &Upstream) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let extra = "capabilities_ttl_seconds = 1\nhealth_path = \"probe\"";
    let toml =
        [remote_target("lab", &upstream.base(), &Credentials::None, extra), route("lab", "lab", &["lab"], "")].concat();
    topology::start(&dir, &toml, &[])
}

fn fetched(upstream: &Upstream) -> usize {
    upstream.requests().iter().filter(|r| r.path.starts_with("/metadata")).count()
}

#[test]
fn a_remote_statement_is_refreshed_after_its_ttl_and_served_stale_while_the_remote_fails() -> TestResult {
    if !runs_here("capabilities ttl") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::Good)?;
    let s = front("gw-caps", &upstream)?;
    expect("the first metadata", &s.get("lab/metadata")?, 200)?;
    assert_eq!(fetched(&upstream), 1);
    expect("metadata again", &s.get("lab/metadata")?, 200)?;
    assert_eq!(fetched(&upstream), 1, "kept while younger than its ttl");
    std::thread::sleep(Duration::from_millis(1200));
    expect("metadata after the ttl", &s.get("lab/metadata")?, 200)?;
    assert_eq!(fetched(&upstream), 2, "fetched again after its ttl");

    upstream.set_mode(Mode::Refuse);
    std::thread::sleep(Duration::from_millis(1200));
    let r = s.get("lab/metadata")?;
    expect("metadata while the remote refuses", &r, 200)?;
    let statement = r.json()?;
    assert_eq!(statement["resourceType"], "CapabilityStatement", "the last statement: {statement}");
    assert_eq!(statement["implementation"]["url"], s.url("lab"), "on the route's base");

    // A front that never had one shows the failure.
    let cold = front("gw-caps-cold", &upstream)?;
    let r = cold.get("lab/metadata")?;
    assert!(r.status >= 500, "no statement to serve: {} {}", r.status, r.body);
    expect_outcome("metadata of a refusing remote, none kept", &r, r.status)?;
    Ok(())
}
