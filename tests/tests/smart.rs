//! End-to-end: SMART apps against fhirgate. Discovery (`/.well-known/smart-configuration` and the
//! CapabilityStatement's `rest.security`) without a token; CORS for an allowed and a disallowed
//! origin, preflights answered without authentication and errors readable by the app; and a
//! standalone launch with PKCE through the SMART proxy against a real OIDC provider (RS256),
//! ending in requests the SMART policies decide on the launch's patient, and an EHR launch
//! whose patient the EHR fixed.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fhirgate_e2e::smart::{self, APP, REDIRECT};
use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

const ORIGIN: &str = "http://app.example";

/// The claims of an ES256 `id_token` whose signature the key at the proxy's published
/// `jwks_uri` (found through its OpenID Connect discovery) verifies.
fn verified_id_token(s: &Server, token: &str) -> TestResult<Value> {
    let discovery = s.send_as(None, "GET", "auth/.well-known/openid-configuration", None, &[])?.json()?;
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or("jwks_uri")?;
    let path = jwks_uri.strip_prefix(&s.base()).ok_or("a jwks_uri of this server")?;
    let jwk = s.send_as(None, "GET", path, None, &[])?.json()?["keys"][0].clone();
    let mut point = vec![4u8];
    for c in ["x", "y"] {
        point.extend(URL_SAFE_NO_PAD.decode(jwk[c].as_str().ok_or("coordinate")?)?);
    }
    let (input, signature) = token.rsplit_once('.').ok_or("no signature")?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature)?)
        .map_err(|_| "the id_token's signature does not verify")?;
    let payload = input.split('.').nth(1).ok_or("no payload")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}
const OTHER: &str = "http://evil.example";

#[test]
fn discovery_without_the_proxy_names_no_launch() -> TestResult {
    let s = Server::start("smart-discovery-plain")?;
    let r = s.send_as(None, "GET", ".well-known/smart-configuration", None, &[])?;
    assert_eq!(r.status, 200, "public: {}", r.body);
    let doc = r.json()?;
    let capabilities: Vec<&str> =
        doc["capabilities"].as_array().ok_or("capabilities")?.iter().filter_map(Value::as_str).collect();
    assert!(capabilities.contains(&"permission-v2") && capabilities.contains(&"permission-patient"), "{doc}");
    assert!(!capabilities.contains(&"launch-standalone"), "no authorization endpoint, no launch: {doc}");
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    let metadata = s.send_as(None, "GET", "metadata", None, &[])?.json()?;
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR", "{security}");
    assert_eq!(security["cors"], false);
    Ok(())
}

#[test]
fn discovery_without_the_proxy_names_the_issuers_endpoints() -> TestResult {
    // An issuer whose OIDC discovery names its endpoints (as Entra's does).
    let oidc = smart::provider()?;
    let dir = fhirgate_e2e::temp_dir("smart-discovery-issuer-direct")?;
    let config = dir.join("fhirgate.toml");
    let base = &oidc.base;
    std::fs::write(&config, format!("[[auth.issuers]]\nissuer = \"{base}\"\naudiences = [\"api://fhirgate\"]\n"))?;
    let s = Server::start_with(&dir, &[("FHIRGATE_CONFIG", config.to_str().ok_or("path")?)])?;
    let doc = s.send_as(None, "GET", ".well-known/smart-configuration", None, &[])?.json()?;
    assert_eq!(doc["issuer"], base.as_str());
    assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"), "{doc}");
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    let metadata = s.send_as(None, "GET", "metadata", None, &[])?.json()?;
    let uris = &metadata["rest"][0]["security"]["extension"][0]["extension"];
    assert_eq!(uris[0]["valueUri"], format!("{base}/authorize"), "{uris}");
    Ok(())
}

#[test]
fn discovery_with_the_proxy_and_cors() -> TestResult {
    let setup = smart::start("smart-discovery", ORIGIN)?;
    let s = &setup.server;
    let doc = s.send_as(None, "GET", ".well-known/smart-configuration", None, &[("Origin", ORIGIN)])?;
    assert_eq!(doc.header("Access-Control-Allow-Origin"), Some(ORIGIN), "an app reads discovery from the browser");
    let doc = doc.json()?;
    assert_eq!(doc["authorization_endpoint"], format!("{}/auth/authorize", s.base()));
    assert_eq!(doc["token_endpoint"], format!("{}/auth/token", s.base()));
    assert_eq!(doc["jwks_uri"], format!("{}/auth/jwks.json", s.base()));
    let capabilities = doc["capabilities"].to_string();
    for c in [
        "launch-standalone",
        "launch-ehr",
        "context-standalone-patient",
        "context-ehr-patient",
        "client-public",
        "sso-openid-connect",
    ] {
        assert!(capabilities.contains(c), "{c}: {capabilities}");
    }
    let metadata = s.send_as(None, "GET", "metadata", None, &[])?.json()?;
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["cors"], true);
    let uris = &security["extension"][0];
    assert_eq!(uris["url"], "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    assert_eq!(uris["extension"][0], json!({"url": "authorize", "valueUri": format!("{}/auth/authorize", s.base())}));
    assert_eq!(uris["extension"][1], json!({"url": "token", "valueUri": format!("{}/auth/token", s.base())}));
    Ok(())
}

#[test]
fn cors_preflight_and_requests_for_allowed_and_disallowed_origins() -> TestResult {
    let setup = smart::start("smart-cors", ORIGIN)?;
    let s = &setup.server;
    let preflight = |origin: &str, method: &str, headers: &str| {
        s.send_as(
            None,
            "OPTIONS",
            "Patient",
            None,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", headers),
            ],
        )
    };
    let ok = preflight(ORIGIN, "POST", "authorization, content-type")?;
    assert_eq!(ok.status, 204, "no token needed: {}", ok.body);
    assert_eq!(ok.header("Access-Control-Allow-Origin"), Some(ORIGIN));
    assert!(ok.header("Access-Control-Allow-Methods").is_some_and(|m| m.contains("POST")));
    assert!(ok.header("Access-Control-Allow-Headers").is_some_and(|h| h.to_lowercase().contains("authorization")));
    assert_eq!(ok.header("Access-Control-Max-Age"), Some("600"));
    assert_eq!(ok.header("Access-Control-Allow-Credentials"), None, "not configured");
    let evil = preflight(OTHER, "POST", "authorization")?;
    assert_eq!((evil.status, evil.header("Access-Control-Allow-Origin")), (204, None));
    assert_eq!(preflight(ORIGIN, "TRACE", "")?.header("Access-Control-Allow-Origin"), None, "a method not allowed");

    // Actual requests: the answer and the headers the app needs are readable, errors included.
    let body = json!({"resourceType": "Patient", "name": [{"family": "Cors"}]});
    let created = s.send("POST", "Patient", Some(body.to_string().as_bytes()), &[("Origin", ORIGIN)])?;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("Access-Control-Allow-Origin"), Some(ORIGIN));
    let exposed = created.header("Access-Control-Expose-Headers").unwrap_or_default().to_string();
    for h in ["Location", "ETag", "Content-Location", "Last-Modified"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    assert!(created.header("Vary").is_some_and(|v| v.contains("Origin")));
    let unauthenticated = s.send_as(None, "GET", "Patient", None, &[("Origin", ORIGIN)])?;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.header("Access-Control-Allow-Origin"), Some(ORIGIN), "the 401 is readable");
    unauthenticated.outcome_issues()?;
    let missing = s.get_with("Patient/nobody-here", &[("Origin", ORIGIN)])?;
    assert_eq!((missing.status, missing.header("Access-Control-Allow-Origin")), (404, Some(ORIGIN)));
    let elsewhere = s.get_with("Patient", &[("Origin", OTHER)])?;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.header("Access-Control-Allow-Origin"), None, "a disallowed origin gets no CORS headers");
    assert_eq!(elsewhere.header("Access-Control-Expose-Headers"), None);
    Ok(())
}

#[test]
fn a_wildcard_origin_with_credentials_does_not_start() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("smart-cors-wildcard")?;
    let out = std::process::Command::new(fhirgate_e2e::binary()?)
        .args(["config"])
        .env("FHIRGATE_DATA_DIR", &dir)
        .env("FHIRGATE_CORS_ALLOWED_ORIGINS", "*")
        .env("FHIRGATE_CORS_ALLOW_CREDENTIALS", "true")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("allow_credentials"), "{stderr}");
    Ok(())
}

#[test]
fn a_standalone_launch_with_pkce_ends_in_patient_scoped_decisions() -> TestResult {
    let setup = smart::start("smart-standalone", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    let token = smart::launch(s, "standalone")?;
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["patient"], "p1", "the signed-in patient's own record: {token}");
    assert_eq!(token["fhirUser"], "Patient/p1");
    let scope = token["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("patient/Observation.rs") && scope.contains("launch/patient"), "{scope}");
    assert!(!scope.contains("patient/Encounter.rs"), "not consented upstream, not granted: {scope}");
    // Who signed in, for the app: an id_token the proxy's published keys verify.
    let id = verified_id_token(s, token["id_token"].as_str().ok_or("id_token")?)?;
    assert_eq!((id["aud"].as_str(), id["fhirUser"].as_str()), (Some(APP), Some("Patient/p1")), "{id}");
    assert_eq!(id["iss"], format!("{}/auth", s.base()));
    let access = token["access_token"].as_str().ok_or("access_token")?;
    let read = |path: &str| s.send_as(Some(access), "GET", path, None, &[]);
    assert_eq!(read("Observation/o1")?.status, 200, "own observation");
    assert_eq!(read("Patient/p1")?.status, 200, "own record");
    assert_eq!(read("Observation/o2")?.status, 404, "another patient's observation is hidden");
    assert_eq!(read("Patient/p2")?.status, 404);
    let search = read("Observation")?.json()?;
    let ids: Vec<&str> =
        search["entry"].as_array().ok_or("entries")?.iter().filter_map(|e| e["resource"]["id"].as_str()).collect();
    assert_eq!(ids, ["o1"], "a search sees the patient's compartment only");
    assert_eq!(read("Encounter")?.status, 403, "a scope not granted");
    let write = s.send_as(Some(access), "PUT", "Observation/o1", Some(b"{}"), &[])?;
    assert_eq!(write.status, 403, "read scopes do not write");
    Ok(())
}

#[test]
fn an_ehr_launch_carries_the_ehrs_patient_and_encounter() -> TestResult {
    let setup = smart::start("smart-ehr", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    setup.oidc.set_user(json!({"fhirUser": "Practitioner/d1", "name": "Dr Example"}))?;
    // The EHR (a token with the launch role) fixes the context and hands the app the launch id.
    let ehr = s.mint(&["--role", "ehr"])?;
    let launch = smart::post_launch(s, Some(&ehr), &json!({"patient": "p2", "encounter": "e9"}))?;
    assert_eq!(launch.status, 201, "{}", launch.body);
    let id = launch.json()?["launch"].as_str().ok_or("launch")?.to_string();
    let (verifier, challenge) = smart::pkce("ehr");
    let url = smart::authorize_url(
        s,
        &challenge,
        &[("launch", &id), ("scope", "launch openid fhirUser patient/Observation.rs"), ("nonce", "n-123")],
    );
    let back = smart::follow(&url)?;
    let code = back.get("code").ok_or_else(|| format!("{back:?}"))?;
    assert_eq!(back.get("state").map(String::as_str), Some("app-state-1"), "the app's state comes back");
    let (status, token) = smart::redeem_code(s, code, &verifier)?;
    assert_eq!(status, 200, "{token}");
    assert_eq!((token["patient"].as_str(), token["encounter"].as_str()), (Some("p2"), Some("e9")));
    let signed_in = verified_id_token(s, token["id_token"].as_str().ok_or("id_token")?)?;
    let nonce_and_user = (signed_in["nonce"].as_str(), signed_in["fhirUser"].as_str());
    assert_eq!(nonce_and_user, (Some("n-123"), Some("Practitioner/d1")), "{signed_in}");
    let access = token["access_token"].as_str().ok_or("access_token")?;
    assert_eq!(s.send_as(Some(access), "GET", "Observation/o2", None, &[])?.status, 200, "the EHR's patient");
    assert_eq!(s.send_as(Some(access), "GET", "Observation/o1", None, &[])?.status, 404, "not the user's own");
    // The launch id is one-time.
    let again = smart::follow(&smart::authorize_url(s, &challenge, &[("launch", &id)]))?;
    assert_eq!(again.get("error").map(String::as_str), Some("invalid_request"), "{again:?}");
    Ok(())
}

#[test]
fn a_practitioner_picks_a_patient_they_may_read() -> TestResult {
    let setup = smart::start("smart-picker", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    // A practitioner whose Entra app role lets them read every record.
    setup.oidc.set_user(json!({"fhirUser": "Practitioner/d1", "roles": ["globalReader"]}))?;
    let (verifier, challenge) = smart::pkce("picker");
    let picker = smart::to_picker(&smart::authorize_url(s, &challenge, &[]))?;
    assert!(picker.starts_with(&s.url("auth/pick?session=")), "fhirgate's own page: {picker}");
    let (status, _, html) = smart::visit(&picker)?;
    assert!(status == 200 && html.contains("<form") && html.contains("name=\"patient\""), "{status}: {html}");
    let session = fhirgate_e2e::oidc::form(picker.split_once('?').map_or("", |(_, q)| q))
        .remove("session")
        .ok_or("no session")?;
    let (status, location) = smart::choose(s, &session, "p2")?;
    let back = location.ok_or_else(|| format!("{status} without Location"))?;
    let back = fhirgate_e2e::oidc::form(back.strip_prefix(&format!("{REDIRECT}?")).ok_or("not the app")?);
    let code = back.get("code").ok_or_else(|| format!("{back:?}"))?;
    let (status, token) = smart::redeem_code(s, code, &verifier)?;
    assert_eq!((status, token["patient"].as_str()), (200, Some("p2")), "{token}");
    let access = token["access_token"].as_str().ok_or("access_token")?;
    assert_eq!(s.send_as(Some(access), "GET", "Observation/o2", None, &[])?.status, 200, "the picked patient");
    assert_eq!(
        s.send_as(Some(access), "GET", "Observation/o1", None, &[])?.status,
        404,
        "the app's token is confined to the picked patient, whatever the user's role"
    );
    Ok(())
}
