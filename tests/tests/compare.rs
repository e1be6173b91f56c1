//! End-to-end: `fhirgate-conformance compare` runs the hand-written MUST scripts against two
//! fhirgate processes — one on the store under test, one a front gateway routing everything to
//! a remote fhirgate target — each with its own token, and writes one HTML matrix (script ×
//! server): every script passes on both, except the authorisation script whose reader token
//! only the first server's issuer signed, which the matrix shows as a difference with its reason.

use std::path::PathBuf;
use std::process::Command;

use fhirgate_e2e::{Server, TestResult, topology};

/// The `fhirgate-conformance` binary, built beside the test executable's target directory.
fn conformance_binary() -> TestResult<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "fhirgate-conformance", "--bin", "fhirgate-conformance"])
        .current_dir(fhirgate_e2e::manifest_dir().join(".."))
        .status()?;
    if !status.success() {
        return Err("building fhirgate-conformance failed".into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(std::path::Path::parent).ok_or("no target directory")?;
    Ok(dir.join("fhirgate-conformance"))
}

#[test]
fn compare_writes_a_matrix_of_scripts_by_server() -> TestResult {
    let local = Server::start("compare-local")?;
    let dir = fhirgate_e2e::temp_dir("compare-front")?;
    let (_remote, env) = topology::remote_backed(&dir, &[])?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let front = Server::start_with(&dir, &env)?;
    let page = dir.join("matrix.html");
    let must = fhirgate_e2e::manifest_dir().join("../conformance/testscripts/must");
    let reader = local.mint(&["--role", "globalReader"])?;
    let output = Command::new(conformance_binary()?)
        .args(["compare", "--base-url", &local.base(), "--base-url", &front.base()])
        .args([
            "--bearer",
            local.token.as_deref().ok_or("no token")?,
            "--bearer",
            front.token.as_deref().ok_or("no token")?,
        ])
        // The authorisation script's reader token is checked by the local server only; the
        // front's reader is another issuer's: that script is expected to differ, shown per cell.
        .args(["--var", &format!("readerToken={reader}"), "--out"])
        .arg(&page)
        .arg(&must)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let html = std::fs::read_to_string(&page)?;
    let scripts = std::fs::read_dir(&must)?.count();
    assert!(html.contains(&format!("{scripts} scripts on 2 servers")), "{html}");
    assert!(html.contains(&local.base()) && html.contains(&front.base()), "a column per server");
    for name in ["FhirgateCrud", "FhirgateSearch", "FhirgateHistory", "FhirgateBundles"] {
        let row = html.split("<tr>").find(|r| r.contains(&format!("<b>{name}</b>"))).ok_or(format!("no row {name}"))?;
        assert_eq!(row.matches("<td class=\"pass\"").count(), 2, "{name} passes on both: {row}");
    }
    let authorisation = html.split("<tr>").find(|r| r.contains("<b>FhirgateAuthorisation</b>")).ok_or("no row")?;
    assert!(
        authorisation.contains("<td class=\"pass\"") && authorisation.contains("<td class=\"fail\""),
        "the local server takes its own reader token, the front does not (another issuer): {authorisation}"
    );
    assert!(authorisation.contains("expected status equal to"), "a failed cell says why: {authorisation}");
    Ok(())
}
