//! `credentials = "azure"` end to end: the front gateway gets its own token from an Entra-like
//! token endpoint over HTTPS (a test CA the front trusts through `SSL_CERT_FILE`, which
//! azure_identity's HTTP client reads: rustls-platform-verifier → rustls-native-certs), with the
//! client-credentials grant `ClientSecretCredential` sends to
//! `{azure_authority}/{tenant}/oauth2/v2.0/token`; the remote target receives exactly
//! `Authorization: Bearer <that token>` (never the caller's), the token is cached while valid and
//! fetched again when it is about to expire; an authority the front does not trust, or one that
//! never answers (bounded by the target's `total_timeout_ms`), gives no token (503), and the
//! target is never asked.

use fhirgate_e2e::entra::TokenEndpoint;
use fhirgate_e2e::topology::{self, Credentials, remote_target, route};
use fhirgate_e2e::upstream::{Mode, Upstream};
use std::path::Path;

use fhirgate_e2e::{Server, TestResult, temp_dir};

use super::{expect, expect_outcome, runs_here};

/// Seconds a token lives: the gateway renews 120 s before expiry, so this one is cached for
/// about 5 s.
const LIFETIME: u64 = 125;

/// A front whose only route goes to `upstream` with azure credentials from `authority`,
/// trusting the CA in `anchors`; `extra` is more TOML of the target.
fn front(
    dir: &std::path::Path,
    upstream: &Upstream,
    authority: String,
    anchors: &Path,
    extra: &str,
) -> TestResult<Server> {
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, "s3cret value\n")?;
    let credentials = Credentials::Azure {
        authority,
        tenant: "test-tenant".into(),
        client_id: "gateway-app".into(),
        secret_file,
        scope: "https://lab-fhir.example.org/.default".into(),
    };
    let toml = [remote_target("lab", &upstream.base(), &credentials, extra), route("all", "", &["lab"], "")].concat();
    let anchors = anchors.display().to_string();
    topology::start(dir, &toml, &[("SSL_CERT_FILE", anchors.as_str())])
}

/// The `Authorization` of the data requests the upstream received since `before`.
fn sent(upstream: &Upstream, before: usize) -> Vec<Option<String>> {
    upstream.data_requests().into_iter().skip(before).map(|r| r.authorization).collect()
}

#[test]
fn the_target_receives_the_gateways_entra_token_cached_and_renewed() -> TestResult {
    if !runs_here("azure credentials") {
        return Ok(());
    }
    let dir = temp_dir("gw-azure")?;
    let upstream = Upstream::start(Mode::Good)?;
    let entra = TokenEndpoint::start(&dir, LIFETIME)?;
    let s = front(&dir, &upstream, entra.authority(), &entra.ca_file, "")?;

    let r = s.get("Patient/1")?;
    expect("GET Patient/1 through the azure target", &r, 200)?;
    assert_eq!(sent(&upstream, 0), [Some("Bearer tok-1".to_string())], "the endpoint's token, not the caller's");
    let asked = entra.requests();
    assert_eq!(asked.len(), 1, "one token request: {asked:?}");
    let form = &asked[0].form;
    assert_eq!(asked[0].path, "/test-tenant/oauth2/v2.0/token");
    assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
    assert_eq!(form.get("client_id").map(String::as_str), Some("gateway-app"));
    assert_eq!(form.get("client_secret").map(String::as_str), Some("s3cret value"), "the file's secret, trimmed");
    assert_eq!(form.get("scope").map(String::as_str), Some("https://lab-fhir.example.org/.default"));

    // Cached while valid.
    let before = upstream.data_requests().len();
    expect("a second read", &s.get("Patient/1")?, 200)?;
    expect("a search", &s.get("Patient?name=x")?, 200)?;
    let reused = sent(&upstream, before);
    assert!(!reused.is_empty() && reused.iter().all(|a| a.as_deref() == Some("Bearer tok-1")), "{reused:?}");
    assert_eq!(entra.requests().len(), 1, "no new token while the first is valid");

    // Renewed shortly before it expires.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let before = upstream.data_requests().len();
    expect("a read after the renewal point", &s.get("Patient/1")?, 200)?;
    assert_eq!(sent(&upstream, before), [Some("Bearer tok-2".to_string())], "a fresh token");
    assert_eq!(entra.requests().len(), 2);
    assert!(!s.log_text().contains("s3cret"), "the secret is never logged");
    Ok(())
}

#[test]
fn an_untrusted_authority_gives_no_token_and_the_target_is_not_asked() -> TestResult {
    if !runs_here("azure untrusted authority") {
        return Ok(());
    }
    let dir = temp_dir("gw-azure-untrusted")?;
    let upstream = Upstream::start(Mode::Good)?;
    let entra = TokenEndpoint::start(&dir, LIFETIME)?;
    // The front trusts another test CA than the endpoint's.
    let unrelated = TokenEndpoint::start(&temp_dir("gw-azure-other-ca")?, LIFETIME)?;
    let s = front(&dir, &upstream, entra.authority(), &unrelated.ca_file, "")?;
    let r = s.get("Patient/1")?;
    expect_outcome("GET with no token to be had", &r, 503)?;
    assert!(!r.body.contains("127.0.0.1"), "no authority address in the answer: {}", r.body);
    assert!(upstream.data_requests().is_empty(), "nothing sent without credentials");
    assert!(entra.requests().is_empty(), "the TLS handshake failed before any request");
    Ok(())
}

#[test]
fn a_token_endpoint_that_never_answers_is_bounded_by_the_total_timeout() -> TestResult {
    if !runs_here("azure hanging authority") {
        return Ok(());
    }
    let dir = temp_dir("gw-azure-hang")?;
    let upstream = Upstream::start(Mode::Good)?;
    let entra = TokenEndpoint::start(&dir, LIFETIME)?;
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let authority = format!("https://127.0.0.1:{}", silent.local_addr()?.port());
    let s = front(&dir, &upstream, authority, &entra.ca_file, "total_timeout_ms = 1500")?;
    let started = std::time::Instant::now();
    let r = s.get("Patient/1")?;
    expect_outcome("GET while the token endpoint hangs", &r, 503)?;
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "bounded: {:?}", started.elapsed());
    assert!(upstream.data_requests().is_empty(), "nothing sent without credentials");
    drop(silent);
    Ok(())
}
