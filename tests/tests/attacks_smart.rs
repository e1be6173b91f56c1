//! End-to-end attacks on the SMART authorization proxy: a wrong PKCE verifier, a replayed code,
//! a forged or replayed `state`, a patient chosen by the client (as a parameter, at the token
//! endpoint, as a forged launch, as a launch made without the launch role), a redirect URI that
//! is not registered, a foreign `aud`, a code redeemed by another client, a confidential client
//! without its secret, a sealed state, code, launch or picker session altered or presented as
//! another kind. None may end in a token, or in a token for another patient.

use fhirgate_e2e::smart::{self, APP, CONFIDENTIAL, CONFIDENTIAL_SECRET, REDIRECT};
use fhirgate_e2e::{Server, TestResult};
use serde_json::json;

const ORIGIN: &str = "http://app.example";

/// A code from a standalone launch by `client`, with its verifier.
fn code_for(s: &Server, seed: &str, client: &str) -> TestResult<(String, String)> {
    let (verifier, challenge) = smart::pkce(seed);
    let back = smart::follow(&smart::authorize_url(s, &challenge, &[("client_id", client)]))?;
    let code = back.get("code").ok_or_else(|| format!("no code: {back:?}"))?.clone();
    Ok((code, verifier))
}

fn redeem(s: &Server, code: &str, verifier: &str, extra: &[(&str, &str)]) -> TestResult<(u16, serde_json::Value)> {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", APP),
        ("code_verifier", verifier),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    smart::redeem(s, &pairs, None)
}

#[test]
fn codes_need_their_verifier_and_work_once() -> TestResult {
    let setup = smart::start("attack-smart-codes", ORIGIN)?;
    let s = &setup.server;
    // A wrong verifier fails, and burns the code: the right one no longer redeems it.
    let (code, verifier) = code_for(s, "wrong-verifier", APP)?;
    let (status, body) = redeem(s, &code, "not-the-verifier-0123456789abcdefghijklmnopqrstuvwxyz", &[])?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert!(body.get("access_token").is_none());
    assert_eq!(redeem(s, &code, &verifier, &[])?.0, 400, "a code is burnt by a failed attempt");
    // Without any verifier.
    let (code, _) = code_for(s, "no-verifier", APP)?;
    assert_eq!(redeem(s, &code, "", &[])?.0, 400);
    // A replayed code.
    let (code, verifier) = code_for(s, "replay", APP)?;
    assert_eq!(redeem(s, &code, &verifier, &[])?.0, 200);
    let (status, body) = redeem(s, &code, &verifier, &[])?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "replayed: {body}");
    // Another redirect URI, another client, a guessed code.
    let (code, verifier) = code_for(s, "redirect", APP)?;
    assert_eq!(redeem(s, &code, &verifier, &[("redirect_uri", "http://evil.example/cb")])?.0, 400);
    let (code, verifier) = code_for(s, "client", APP)?;
    assert_eq!(redeem(s, &code, &verifier, &[("client_id", CONFIDENTIAL)])?.0, 400, "issued to another client");
    assert_eq!(redeem(s, "made-up-code", &verifier, &[])?.0, 400);
    let (status, body) = redeem(s, &code, &verifier, &[("grant_type", "password")])?;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    Ok(())
}

#[test]
fn a_confidential_client_needs_its_secret() -> TestResult {
    let setup = smart::start("attack-smart-secret", ORIGIN)?;
    let s = &setup.server;
    let (code, verifier) = code_for(s, "confidential-none", CONFIDENTIAL)?;
    let (status, body) = redeem(s, &code, &verifier, &[("client_id", CONFIDENTIAL)])?;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    let (code, verifier) = code_for(s, "confidential-wrong", CONFIDENTIAL)?;
    let (status, _) = redeem(s, &code, &verifier, &[("client_id", CONFIDENTIAL), ("client_secret", "guess")])?;
    assert_eq!(status, 401);
    let (code, verifier) = code_for(s, "confidential-basic", CONFIDENTIAL)?;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = smart::redeem(s, &pairs, Some(&format!("{CONFIDENTIAL}:{CONFIDENTIAL_SECRET}")))?;
    assert_eq!(status, 200, "client_secret_basic: {body}");
    Ok(())
}

#[test]
fn a_forged_or_replayed_state_goes_nowhere() -> TestResult {
    let setup = smart::start("attack-smart-state", ORIGIN)?;
    let s = &setup.server;
    // The provider's answer with a state fhirgate never issued: refused here, sent to no app.
    let (status, location, _) = smart::visit(&s.url("auth/callback?code=upstream-code-1&state=forged"))?;
    assert_eq!((status, location), (400, None));
    // A real state is one-time: the callback replayed after the launch finished is refused.
    let (_, challenge) = smart::pkce("state");
    let (_, to_provider, _) = smart::visit(&smart::authorize_url(s, &challenge, &[]))?;
    let (_, to_callback, _) = smart::visit(&to_provider.ok_or("no redirect to the provider")?)?;
    let callback = to_callback.ok_or("no callback")?;
    let (status, first, _) = smart::visit(&callback)?;
    assert_eq!(status, 302);
    assert!(first.is_some_and(|l| l.starts_with(REDIRECT) && l.contains("state=app-state-1")), "the app's own state");
    let (status, again, _) = smart::visit(&callback)?;
    assert_eq!((status, again), (400, None), "replayed callback");
    // A launch without `state` is refused.
    let back = smart::follow(&smart::authorize_url(s, &challenge, &[("state", "")]))?;
    assert_eq!(back.get("error").map(String::as_str), Some("invalid_request"));
    Ok(())
}

#[test]
fn the_client_cannot_choose_the_patient() -> TestResult {
    let setup = smart::start("attack-smart-patient", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    let (verifier, challenge) = smart::pkce("patient");
    // As an authorization parameter.
    for param in ["patient", "encounter"] {
        let back = smart::follow(&smart::authorize_url(s, &challenge, &[(param, "p2")]))?;
        assert_eq!(back.get("error").map(String::as_str), Some("invalid_request"), "{param}: {back:?}");
        assert!(!back.contains_key("code"));
    }
    // As a launch the EHR never made.
    let back = smart::follow(&smart::authorize_url(s, &challenge, &[("launch", "made-up")]))?;
    assert_eq!(back.get("error").map(String::as_str), Some("invalid_request"));
    // As a launch made without the launch role (any user's token, or none).
    let user = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    for token in [Some(user.as_str()), None] {
        let r = smart::post_launch(s, token, &json!({"patient": "p2"}))?;
        assert!(matches!(r.status, 401 | 403), "{}: {}", r.status, r.body);
    }
    // At the token endpoint: ignored; the token is the launch's.
    let back = smart::follow(&smart::authorize_url(s, &challenge, &[]))?;
    let code = back.get("code").ok_or("code")?;
    let (status, token) = redeem(s, code, &verifier, &[("patient", "p2")])?;
    assert_eq!((status, token["patient"].as_str()), (200, Some("p1")), "{token}");
    let access = token["access_token"].as_str().ok_or("access_token")?;
    assert_eq!(s.send_as(Some(access), "GET", "Observation/o2", None, &[])?.status, 404);
    Ok(())
}

#[test]
fn the_picker_takes_only_a_patient_the_user_may_read_once() -> TestResult {
    let setup = smart::start("attack-smart-picker", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    // A user who is no patient and may read nothing: whatever they pick is refused.
    setup.oidc.set_user(json!({"fhirUser": "Practitioner/d1"}))?;
    let (_, challenge) = smart::pkce("picker-attack");
    let session_of = |picker: &str| {
        fhirgate_e2e::oidc::form(picker.split_once('?').map_or("", |(_, q)| q)).remove("session").unwrap_or_default()
    };
    let session = session_of(&smart::to_picker(&smart::authorize_url(s, &challenge, &[]))?);
    let (status, location) = smart::choose(s, &session, "p2")?;
    let location = location.unwrap_or_default();
    assert!(status == 302 && location.contains("error=access_denied") && !location.contains("code="), "{location}");
    // The session is one-time, and a made-up one opens nothing.
    assert_eq!(smart::choose(s, &session, "p2")?, (400, None), "replayed picker session");
    assert_eq!(smart::choose(s, "0123abcd", "p2")?, (400, None), "forged picker session");
    let (status, _, _) = smart::visit(&s.url("auth/pick?session=0123abcd"))?;
    assert_eq!(status, 400);
    // A reader may pick only what exists for them, and no id that is not one.
    setup.oidc.set_user(json!({"fhirUser": "Practitioner/d1", "roles": ["globalReader"]}))?;
    for patient in ["nobody", "p1/../p2", "p1?x=1"] {
        let session = session_of(&smart::to_picker(&smart::authorize_url(s, &challenge, &[]))?);
        let (_, location) = smart::choose(s, &session, patient)?;
        assert!(location.is_some_and(|l| l.contains("error=access_denied")), "{patient}");
    }
    Ok(())
}

#[test]
fn unregistered_redirects_and_foreign_audiences_are_refused() -> TestResult {
    let setup = smart::start("attack-smart-redirect", ORIGIN)?;
    let s = &setup.server;
    let (_, challenge) = smart::pkce("redirect");
    for (name, value) in [
        ("redirect_uri", "http://evil.example/callback"),
        ("redirect_uri", "http://app.example/callback/../evil"),
        ("redirect_uri", "http://app.example/callback?x=1"),
        ("client_id", "unknown-app"),
    ] {
        let (status, location, _) = smart::visit(&smart::authorize_url(s, &challenge, &[(name, value)]))?;
        assert_eq!((status, location), (400, None), "{name}={value}: never redirected");
    }
    for (name, value) in [
        ("aud", "http://other-fhir.example"),
        ("code_challenge_method", "plain"),
        ("code_challenge", ""),
        ("response_type", "token"),
    ] {
        let back = smart::follow(&smart::authorize_url(s, &challenge, &[(name, value)]))?;
        assert!(back.contains_key("error") && !back.contains_key("code"), "{name}={value}: {back:?}");
    }
    Ok(())
}

/// `value` with one character in its middle changed (still base64url).
fn tampered(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The value of `name` in the query of `url`.
fn query_value(url: &str, name: &str) -> String {
    fhirgate_e2e::oidc::form(url.split_once('?').map_or("", |(_, q)| q)).remove(name).unwrap_or_default()
}

#[test]
fn altered_or_misused_sealed_values_open_nothing() -> TestResult {
    let setup = smart::start("attack-smart-sealed", ORIGIN)?;
    let s = &setup.server;
    smart::seed(s)?;
    // A state altered on its way back from the provider, or another kind of value as a state.
    let (verifier, challenge) = smart::pkce("sealed");
    let (_, to_provider, _) = smart::visit(&smart::authorize_url(s, &challenge, &[]))?;
    let (_, to_callback, _) = smart::visit(&to_provider.ok_or("no redirect to the provider")?)?;
    let callback = to_callback.ok_or("no callback")?;
    let state = query_value(&callback, "state");
    assert!(state.len() > 64 && !state.contains("app-state-1"), "sealed, nothing readable: {state}");
    let altered = callback.replace(&state, &tampered(&state));
    assert_eq!(smart::visit(&altered)?.0, 400, "an altered state");
    // The real one still works (an altered value burns nothing), and its code is sealed too.
    let (status, back, _) = smart::visit(&callback)?;
    let back = back.ok_or_else(|| format!("{status} without Location"))?;
    let code = query_value(&back, "code");
    assert!(status == 302 && code.len() > 64, "{back}");
    let (status, body) = redeem(s, &tampered(&code), &verifier, &[])?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "an altered code: {body}");
    assert!(body.get("access_token").is_none());
    // A code as a state, a state as a code, a code as a launch or a picker session.
    assert_eq!(smart::visit(&s.url(&format!("auth/callback?code=c&state={code}")))?.0, 400, "a code as a state");
    assert_eq!(redeem(s, &state, &verifier, &[])?.0, 400, "a state as a code");
    let as_launch = smart::follow(&smart::authorize_url(s, &challenge, &[("launch", &code)]))?;
    assert_eq!(as_launch.get("error").map(String::as_str), Some("invalid_request"), "a code as a launch");
    assert_eq!(smart::choose(s, &code, "p2")?, (400, None), "a code as a picker session");
    assert_eq!(smart::visit(&s.url(&format!("auth/pick?session={code}")))?.0, 400);
    // The code itself was not burnt by any of that, and holds no readable token.
    let (status, token) = redeem(s, &code, &verifier, &[])?;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().ok_or("access_token")?;
    let payload = access.split('.').nth(1).ok_or("a JWT")?;
    assert!(!code.contains(payload), "the token is not readable in the code");
    // An EHR launch altered, or a picker session altered.
    let ehr = s.mint(&["--role", "ehr"])?;
    let made = smart::post_launch(s, Some(&ehr), &json!({"patient": "p2"}))?;
    let launch = made.json()?["launch"].as_str().ok_or("launch")?.to_string();
    let back = smart::follow(&smart::authorize_url(s, &challenge, &[("launch", &tampered(&launch))]))?;
    assert_eq!(back.get("error").map(String::as_str), Some("invalid_request"), "an altered launch: {back:?}");
    setup.oidc.set_user(json!({"fhirUser": "Practitioner/d1", "roles": ["globalReader"]}))?;
    let session = query_value(&smart::to_picker(&smart::authorize_url(s, &challenge, &[]))?, "session");
    assert_eq!(smart::choose(s, &tampered(&session), "p2")?, (400, None), "an altered picker session");
    assert_eq!(smart::visit(&s.url(&format!("auth/pick?session={}", tampered(&session))))?.0, 400);
    Ok(())
}
