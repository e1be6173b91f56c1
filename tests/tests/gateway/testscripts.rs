//! The TestScripts a client of a route can run, run on a route's base of a front gateway: a
//! prefixed route (`/gw`) over the remote fhirgate (`R-`, where writes go) and a local store
//! (`L-`). `should/gateway-routing.json` (ids round trip, unknown routes) and the MUST CRUD
//! script must pass there as they do on a plain server.

use fhirgate_conformance::report;
use fhirgate_conformance::run::result::Status;
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{TestResult, temp_dir};

use super::runs_here;

#[test]
fn routing_testscripts_pass_on_a_prefixed_route() -> TestResult {
    if !runs_here("routing testscripts") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-scripts-remote")?;
    let dir = temp_dir("gw-scripts")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route(
            "gw",
            "gw",
            &["remote", "local"],
            "write_target = \"remote\"\nid_prefixes = { remote = \"R-\", local = \"L-\" }",
        ),
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;
    let corpus = fhirgate_e2e::manifest_dir().join("../conformance/testscripts");
    let scripts = [corpus.join("should/gateway-routing.json"), corpus.join("must/crud.json")];
    let mut options = Options::new(&s.url("gw"));
    options.bearer = s.token.clone();
    let results = Runner::new(options).run_paths(&scripts)?;
    report::write_all(&s.data_dir.join("conformance-reports"), &results)?;
    let mut failed = Vec::new();
    for result in &results {
        let line = report::summary::line(result);
        println!("{line}");
        if result.status() != Status::Pass {
            failed.push(line);
        }
    }
    assert_eq!(results.len(), 2, "both scripts ran");
    assert!(
        failed.is_empty(),
        "scripts failed on the route's base (reports in {}):\n{}",
        dir.display(),
        failed.join("\n")
    );
    // The created Patients carry the write target's prefix on the remote, without it.
    let r = s.get("gw/Patient?_count=50")?;
    let bundle = r.json()?;
    let ids: Vec<String> =
        super::resources(&bundle).iter().filter_map(|p| p["id"].as_str().map(str::to_string)).collect();
    assert!(!ids.is_empty() && ids.iter().all(|id| id.starts_with("R-")), "created on the write target: {ids:?}");
    Ok(())
}
