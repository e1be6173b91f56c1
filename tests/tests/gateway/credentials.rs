//! Credentials exactly as configured per target: `none` sends no `Authorization`, `bearer-file`
//! the file's token and never the caller's, `passthrough` the caller's token (with two
//! fhirgates trusting one identity provider, each deciding on it); a remote with authentication
//! off behind `none`.

use fhirgate_e2e::idp::{Idp, Key};
use fhirgate_e2e::topology::{self, Credentials, RemoteFhirgate, idp_token, local_target, remote_target, route};
use fhirgate_e2e::upstream::{Mode, Upstream};
use fhirgate_e2e::{TestResult, temp_dir};
use serde_json::json;

use super::{expect, expect_written, runs_here};

#[test]
fn each_target_gets_exactly_its_configured_credentials() -> TestResult {
    if !runs_here("credentials") {
        return Ok(());
    }
    let upstream = Upstream::start(Mode::Good)?;
    let dir = temp_dir("gw-creds")?;
    let secret = dir.join("upstream-token");
    std::fs::write(&secret, "static-upstream-token\n")?;
    let toml = [
        local_target("local", &dir),
        remote_target("none", &upstream.base(), &Credentials::None, ""),
        remote_target("bearer", &upstream.base(), &Credentials::BearerFile(secret), ""),
        remote_target("pass", &upstream.base(), &Credentials::Passthrough, ""),
        route("n", "n", &["none"], ""),
        route("b", "b", &["bearer"], ""),
        route("p", "p", &["pass"], ""),
        route("root", "", &["local"], ""),
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;
    let caller = s.token.clone().ok_or("a caller token")?;

    let mut carried_caller_token = Vec::new();
    for (prefix, expected) in
        [("n", None), ("b", Some("Bearer static-upstream-token".to_string())), ("p", Some(format!("Bearer {caller}")))]
    {
        let before = upstream.requests().len();
        let r = s.get(&format!("{prefix}/Patient/1"))?;
        expect(&format!("GET /{prefix}/Patient/1"), &r, 200)?;
        let seen: Vec<_> =
            upstream.requests().into_iter().skip(before).filter(|r| !r.path.starts_with("/metadata")).collect();
        assert!(!seen.is_empty(), "/{prefix}: the upstream was asked");
        for request in &seen {
            assert_eq!(request.authorization, expected, "/{prefix}: {} {}", request.method, request.path);
        }
        carried_caller_token.extend(
            upstream
                .requests()
                .into_iter()
                .skip(before)
                .filter(|r| r.authorization.as_deref().is_some_and(|a| a.contains(&caller)))
                .map(|r| (prefix, r)),
        );
    }
    // Nothing else (health checks included) ever carried the caller's token.
    for (prefix, request) in &carried_caller_token {
        assert!(
            *prefix == "p" && !request.path.starts_with("/metadata"),
            "the caller's token reached the upstream outside the passthrough request: /{prefix} {request:?}"
        );
    }
    Ok(())
}

#[test]
fn a_bearer_file_target_never_receives_the_callers_token() -> TestResult {
    if !runs_here("bearer-file") {
        return Ok(());
    }
    // The remote fhirgate accepts only its own issuer's token (the file's); the front's tokens
    // are unknown to it, so a forwarded caller token would fail there.
    let remote = RemoteFhirgate::start("gw-bearer-remote")?;
    let dir = temp_dir("gw-bearer")?;
    let toml = [remote_target("remote", &remote.base(), &remote.credentials(), ""), route("all", "", &["remote"], "")]
        .concat();
    let s = topology::start(&dir, &toml, &[])?;
    let front_token = s.token.clone().ok_or("a front token")?;
    let r = remote.server.send_as(Some(&front_token), "GET", "Patient?_count=1", None, &[])?;
    expect("the front's token is unknown to the remote", &r, 401)?;

    let r = s.put("Patient/b1", &json!({"resourceType": "Patient", "id": "b1"}))?;
    expect_written("a write through a bearer-file target", &r)?;
    expect("it reached the remote", &remote.server.get("Patient/b1")?, 200)?;
    // The front decides on its own token: a reader may not write, whatever the file's token may.
    let reader = s.mint(&["--role", "globalReader"])?;
    let body = json!({"resourceType": "Patient", "id": "b2"}).to_string();
    let r = s.send_as(Some(&reader), "PUT", "Patient/b2", Some(body.as_bytes()), &[])?;
    expect("a reader's write, refused at the front", &r, 403)?;
    expect("nothing written", &remote.server.get("Patient/b2")?, 404)?;
    expect("the reader reads", &s.send_as(Some(&reader), "GET", "Patient/b1", None, &[])?, 200)?;
    Ok(())
}

#[test]
fn passthrough_carries_the_callers_token_to_a_remote_trusting_the_same_issuer() -> TestResult {
    if !runs_here("passthrough") {
        return Ok(());
    }
    let key = Key::rsa("k1")?;
    let idp = Idp::start(&[&key])?;
    let remote = topology::start_trusting(&temp_dir("gw-pass-remote")?, &idp, "", &[])?;
    let dir = temp_dir("gw-pass")?;
    let toml =
        [remote_target("remote", &remote.base(), &Credentials::Passthrough, ""), route("all", "", &["remote"], "")]
            .concat();
    let s = topology::start_trusting(&dir, &idp, &toml, &[])?;
    let admin = idp_token(&idp, &key, &["globalAdmin"], json!({}))?;
    let reader = idp_token(&idp, &key, &["globalReader"], json!({"sub": "reader", "oid": "reader"}))?;

    let body = json!({"resourceType": "Patient", "id": "pp1"}).to_string();
    let r = s.send_as(Some(&admin), "PUT", "Patient/pp1", Some(body.as_bytes()), &[])?;
    expect_written("an admin's write through passthrough", &r)?;
    expect("on the remote", &remote.send_as(Some(&admin), "GET", "Patient/pp1", None, &[])?, 200)?;
    expect("a reader reads through", &s.send_as(Some(&reader), "GET", "Patient/pp1", None, &[])?, 200)?;
    let r = s.send_as(Some(&reader), "DELETE", "Patient/pp1", None, &[])?;
    expect("a reader's delete", &r, 403)?;
    expect("still there", &remote.send_as(Some(&admin), "GET", "Patient/pp1", None, &[])?, 200)?;
    let r = s.send_as(None, "GET", "Patient/pp1", None, &[])?;
    expect("no token at the front", &r, 401)?;
    Ok(())
}

#[test]
fn none_reaches_a_remote_with_authentication_off() -> TestResult {
    if !runs_here("none") {
        return Ok(());
    }
    let remote = topology::start(&temp_dir("gw-none-remote")?, "", &[("FHIRGATE_AUTH_ENABLED", "false")])?;
    let dir = temp_dir("gw-none")?;
    let toml =
        [remote_target("remote", &remote.base(), &Credentials::None, ""), route("all", "", &["remote"], "")].concat();
    let s = topology::start(&dir, &toml, &[])?;
    expect_written("a write", &s.put("Patient/n1", &json!({"resourceType": "Patient", "id": "n1"}))?)?;
    expect("on the remote", &remote.get("Patient/n1")?, 200)?;
    expect("read back", &s.get("Patient/n1")?, 200)?;
    let r = s.send_as(None, "GET", "Patient/n1", None, &[])?;
    expect("the front still wants a token", &r, 401)?;
    Ok(())
}
